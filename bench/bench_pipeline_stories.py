"""Story clustering in the pipeline, per article, with 50,000 recent articles in the window.

Run: .venv/bin/python bench/bench_pipeline_stories.py   (SQLite in a temporary file; set
VEILLE_BENCH_DATABASE_URL=postgresql+asyncpg://... for PostgreSQL: a database of its own is created
on that server, and dropped at the end.)

Prints, per article:
- pure: normalising title + text, the 128-bit SimHash and the index lookup and add (goal ≤ 2 ms);
- total: the same plus what the poller does in the database for it (store the article with its
  fingerprint, create or join the story and recount it, look for sent alerts to edit, commit), for
  articles half of which join a story that was already alerted;
- baseline, measured in the same run: storing the same articles without stories (insert + commit).
Also the time to rebuild the index from the database at start.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, text

from bot.core.stories import fingerprint, fingerprint_to_bytes
from bot.core.text import normalize_words
from bot.db import repo
from bot.db import stories as story_db
from bot.db.engine import create_engine, create_session_factory
from bot.db.migrate import upgrade
from bot.db.models import Article, Chat, Delivery, Story
from bot.services.stories import StoryClusterer

WINDOW_ARTICLES = 50_000
PROBES = 400
SAMPLE = Path(__file__).resolve().parent.parent / "tests" / "data" / "eureporter-fr-otan-azerbaidjan.txt"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def texts(rng: random.Random, words: list[str], count: int) -> list[tuple[str, str]]:
    return [(" ".join(rng.choice(words) for _ in range(8)), " ".join(rng.choice(words) for _ in range(150)))
            for _ in range(count)]


def variant(rng: random.Random, title: str, body: str) -> tuple[str, str]:
    """The same dispatch from another outlet: a prefix and a few words edited."""
    words = body.split()
    for _ in range(4):
        words[rng.randrange(len(words))] = "modifié"
    return title, "(AFP) - " + " ".join(words)


async def seed(session_factory, rng: random.Random) -> tuple[int, int]:  # noqa: ANN001
    async with session_factory() as session, session.begin():
        a, _ = await repo.upsert_source(session, url="https://a.example/rss", name="A", language="fr",
                                        category=None, now=NOW)
        b, _ = await repo.upsert_source(session, url="https://b.example/rss", name="B", language="fr",
                                        category=None, now=NOW)
        session.add(Chat(id=1, type="private", language="fr", timezone="Europe/Paris", link_preview=True,
                         active=True, created_at=NOW, updated_at=NOW))
        source_a, source_b = a.id, b.id
    began = time.perf_counter()
    for start in range(0, WINDOW_ARTICLES, 5000):
        async with session_factory() as session, session.begin():
            ids = list(range(start + 1, min(start + 5000, WINDOW_ARTICLES) + 1))
            await session.execute(insert(Story), [
                {"id": i, "first_article_id": i, "article_count": 1, "source_count": 1,
                 "created_at": NOW, "updated_at": NOW} for i in ids])
            await session.execute(insert(Article), [
                {"id": i, "source_id": source_a, "key": f"seed-{i}", "title": "t", "summary": "",
                 "fingerprint": fingerprint_to_bytes(rng.getrandbits(128)), "story_id": i,
                 "published_at": NOW - timedelta(seconds=rng.randrange(47 * 3600)),
                 "first_seen_at": NOW - timedelta(hours=1)} for i in ids])
    print(f"seeded {WINDOW_ARTICLES:,} articles in {time.perf_counter() - began:.1f} s")
    return source_a, source_b


async def store(session_factory, clusterer: StoryClusterer | None, source_id: int, key: str,  # noqa: ANN001
                title: str, body: str, *, alert: bool = False) -> tuple[float, float, bool]:
    """One article through the poller's steps; returns (pure ms, total ms, joined a story)."""
    began = time.perf_counter()
    fp = fingerprint(normalize_words(f"{title} {body}"))
    pure = time.perf_counter() - began
    joined = False
    async with session_factory() as session, session.begin():
        article = await repo.add_article(session, Article(
            source_id=source_id, key=key, title=title, summary=body[:300], first_seen_at=NOW, published_at=NOW,
            fingerprint=fingerprint_to_bytes(fp),
        ))
        if clusterer is not None:
            began_pure = time.perf_counter()
            story_id = clusterer.index.find_story(fp, NOW)
            pure += time.perf_counter() - began_pure
            assignment = await clusterer.assign(session, article, fp, now=NOW)
            joined = assignment.joined
            if alert:
                await story_db.enqueue_story_deliveries(session, [story_db.StoryDelivery(
                    chat_id=1, kind="alert", dedup_key=f"story:{assignment.story_id}", article_id=article.id,
                    story_id=assignment.story_id)], now=NOW)
            if assignment.joined and assignment.new_source:
                await session.flush()
                edits = await clusterer.plan_edits(session, story_ids=[assignment.story_id], now=NOW)
                await story_db.enqueue_story_deliveries(session, edits, now=NOW)
            del story_id
    return pure * 1000, (time.perf_counter() - began) * 1000, joined


async def run(url: str) -> None:
    await asyncio.to_thread(upgrade, url)
    engine = create_engine(url)
    sessions = create_session_factory(engine)
    rng = random.Random(5)
    words = re.findall(r"\w+", SAMPLE.read_text(encoding="utf-8").lower())
    source_a, source_b = await seed(sessions, rng)
    if url.startswith("postgresql"):
        async with engine.begin() as connection:
            for table in ("stories", "articles"):
                await connection.execute(text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"))

    clusterer = StoryClusterer(sessions, lambda: NOW)
    began = time.perf_counter()
    loaded = await clusterer.load()
    print(f"index rebuilt from the database: {loaded:,} articles in {(time.perf_counter() - began) * 1000:.0f} ms")

    originals = texts(rng, words, PROBES // 2)
    for n, (title, body) in enumerate(originals):  # already stored and alerted, then sent
        await store(sessions, clusterer, source_a, f"orig-{n}", title, body, alert=True)
    async with sessions() as session, session.begin():
        await session.execute(Delivery.__table__.update().values(status="sent", message_id=Delivery.id,
                                                                 sent_at=NOW))
    probes = [variant(rng, *o) for o in originals] + texts(rng, words, PROBES // 2)
    rng.shuffle(probes)
    pure, total, total_joined, total_new = [], [], [], []
    for n, (title, body) in enumerate(probes):
        p, t, joined = await store(sessions, clusterer, source_b, f"probe-{n}", title, body)
        pure.append(p)
        total.append(t)
        (total_joined if joined else total_new).append(t)
    baseline = []
    for n, (title, body) in enumerate(probes):
        baseline.append((await store(sessions, None, source_b, f"base-{n}", title, body))[1])
    async with sessions() as session:
        edits = (await session.execute(text("SELECT count(*) FROM deliveries WHERE kind = 'edit'"))).scalar_one()
    await engine.dispose()

    def line(name: str, values: list[float]) -> str:
        ordered = sorted(values)
        return (f"{name:<42} mean {statistics.fmean(values):6.2f} ms   median {statistics.median(values):6.2f} ms"
                f"   p95 {ordered[int(len(ordered) * 0.95)]:6.2f} ms")

    backend = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    print(f"{backend}, {len(probes)} articles ({PROBES // 2} joining an alerted story: {edits} edits queued)")
    print(line("pure (normalise + SimHash + find)", pure) + "   goal ≤ 2 ms")
    print(line("total (with the database, stories, edits)", total))
    print(line("  of which: new story", total_new))
    print(line("  of which: joins an alerted story (edit)", total_joined))
    print(line("baseline: store without stories", baseline))


async def run_on_own_postgres_database(base_url: str) -> None:
    import asyncpg
    from sqlalchemy.engine import make_url

    base = make_url(base_url)
    name = f"veille_bench_stories_{uuid.uuid4().hex[:8]}"
    connect = {"host": base.host or "127.0.0.1", "port": base.port or 5432, "user": base.username or "postgres",
               "password": base.password, "database": base.database or "postgres"}
    connection = await asyncpg.connect(**connect)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    try:
        await run(base.set(database=name).render_as_string(hide_password=False))
    finally:
        connection = await asyncpg.connect(**connect)
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await connection.close()


def main() -> None:
    url = os.environ.get("VEILLE_BENCH_DATABASE_URL", "").strip()
    if url:
        asyncio.run(run_on_own_postgres_database(url))
        return
    with tempfile.TemporaryDirectory() as directory:
        asyncio.run(run(f"sqlite+aiosqlite:///{directory}/bench.db"))


if __name__ == "__main__":
    main()

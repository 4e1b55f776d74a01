"""Scale-out benchmark (issue #9): poll-cycle throughput and delivery with 1, 2 and 3 processes.

Each round starts N real `veille run --role poller,sender` processes on a fresh PostgreSQL database,
with Redis sharing the rate limit, against the feed server and the fake Bot API (no server-side limits,
and `send_rate` set far above what the machine can do, so the limiter is never the bottleneck):

- poll cycle: `--sources` feeds, all due at start; time from the processes' first claim to the last
  source's first successful poll → sources polled per second;
- delivery: then `--articles` new items, each matching `chats / articles` chats' alerts; time from the
  feeds changing to the last message received → messages per second.

The baseline is the 1-process round of the same run. Usage (needs PostgreSQL and Redis):

    .venv/bin/python bench/bench_scaleout.py --sources 300 --chats 3000 --articles 30
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from tempfile import TemporaryDirectory

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from bot.db import repo  # noqa: E402
from bot.db.engine import create_engine, create_session_factory  # noqa: E402
from bot.db.migrate import upgrade  # noqa: E402
from bot.db.models import Source  # noqa: E402
from tests.fakes.feed_server import FeedServer  # noqa: E402
from tests.fakes.telegram_api import FakeTelegram  # noqa: E402


async def admin(base_url: str, sql: str) -> None:
    import asyncpg

    url = make_url(base_url)
    connection = await asyncpg.connect(host=url.host or "127.0.0.1", port=url.port or 5432,
                                       user=url.username or "postgres", password=url.password,
                                       database=url.database or "postgres")
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def word(n: int) -> str:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return "mot" + letters[n // 26 % 26] + letters[n % 26]


def items(source: int, articles: int, *, new: bool) -> list[dict]:
    out = [{"title": f"Ancien article {source}", "link": f"https://example.org/{source}/old", "guid": f"{source}-old",
            "description": "Rien de neuf."}]
    if new and source < articles:
        out.insert(0, {"title": f"Rapport {word(source)} du jour", "link": f"https://example.org/{source}/new",
                       "guid": f"{source}-new", "description": f"Le dossier {word(source)} avance."})
    return out


async def one_round(processes: int, args: argparse.Namespace) -> tuple[float, float, int]:
    name = f"veille_bench_{uuid.uuid4().hex[:8]}"
    await admin(args.database_url, f'CREATE DATABASE "{name}"')
    url = make_url(args.database_url).set(database=name).render_as_string(hide_password=False)
    try:
        await asyncio.to_thread(upgrade, url)
        engine = create_engine(url)
        session_factory = create_session_factory(engine)
        now = datetime.now(UTC)
        async with session_factory() as session, session.begin():
            for chat_id in range(1, args.chats + 1):
                await repo.upsert_chat(session, chat_id=chat_id, chat_type="private", title=None, username=None,
                                       language="fr", timezone="Europe/Paris", now=now)
                await repo.add_subscription(session, chat_id=chat_id, query=word(chat_id % args.articles),
                                            created_by=chat_id, message_thread_id=None, now=now)
        async with FakeTelegram() as fake, FeedServer() as feeds:
            fake.validate_html = None
            with TemporaryDirectory() as tmp:
                lines = []
                for source in range(args.sources):
                    feeds.set_rss(f"/feed/{source}.xml", items(source, args.articles, new=False))
                    lines.append(f'[[source]]\nname = "S{source}"\nurl = "{feeds.url(f"/feed/{source}.xml")}"\n')
                sources_file = Path(tmp) / "sources.toml"
                sources_file.write_text("\n".join(lines), encoding="utf-8")
                env = {k: v for k, v in os.environ.items() if not k.startswith("VEILLE_")}
                env.update({
                    "PYTHONPATH": str(ROOT), "VEILLE_CONFIG_FILE": str(Path(tmp) / "none.toml"),
                    "VEILLE_BOT_TOKEN": fake.token, "VEILLE_TELEGRAM_API_URL": fake.base_url,
                    "VEILLE_DATABASE_URL": url, "VEILLE_REDIS_URL": args.redis_url,
                    "VEILLE_SOURCES_FILE": str(sources_file), "VEILLE_ALLOW_PRIVATE_NETWORKS": "true",
                    "VEILLE_POLL_INTERVAL": "60", "VEILLE_POLL_TICK": "0.1", "VEILLE_DELIVERY_TICK": "0.1",
                    "VEILLE_SEND_RATE": "100000", "VEILLE_PRIVATE_CHAT_RATE": "1000",
                    "VEILLE_FETCH_FULL_TEXT": "false", "VEILLE_FETCH_PER_HOST": "100",
                    "VEILLE_ALERTS_PER_HOUR": "0", "VEILLE_LOG_LEVEL": "WARNING",
                })
                children = []
                try:
                    for _ in range(processes):
                        children.append(await asyncio.create_subprocess_exec(
                            sys.executable, "-m", "bot", "run", "--role", "poller,sender", cwd=tmp, env=env,
                            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL))
                    # The clock starts at the first successful poll (process start-up is not the subject).
                    started = None
                    for _ in range(100_000):
                        async with session_factory() as session:
                            done = await session.scalar(select(func.count()).select_from(Source)
                                                        .where(Source.last_success_at.is_not(None)))
                        if done and started is None:
                            started = time.perf_counter()
                        if done == args.sources:
                            break
                        await asyncio.sleep(0.02)
                    poll_seconds = time.perf_counter() - (started or time.perf_counter())
                    # Everything polled once; make the next poll due now and publish the new items.
                    for source in range(args.articles):
                        feeds.set_rss(f"/feed/{source}.xml", items(source, args.articles, new=True))
                    async with session_factory() as session, session.begin():
                        for source in (await session.execute(select(Source))).scalars():
                            source.next_check_at = datetime.now(UTC)
                    t0 = time.perf_counter()
                    await fake.wait_for_messages(args.chats, timeout=600)
                    delivery_seconds = time.perf_counter() - t0
                finally:
                    for child in children:
                        child.terminate()
                    for child in children:
                        await child.wait()
        await engine.dispose()
        return poll_seconds, delivery_seconds, len(fake.sent())
    finally:
        await admin(args.database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get(
        "VEILLE_TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--redis-url", default=os.environ.get("VEILLE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--sources", type=int, default=300)
    parser.add_argument("--chats", type=int, default=3000)
    parser.add_argument("--articles", type=int, default=30)
    parser.add_argument("--processes", default="1,2,3")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs; {args.sources} sources, {args.chats} chats, {args.articles} new articles "
          f"(one alert per chat); load average {os.getloadavg()[0]:.1f}")
    print(f"{'processes':>9} {'poll s':>8} {'sources/s':>10} {'deliver s':>10} {'messages/s':>11} {'vs 1':>6}")
    baseline = None
    for n in (int(p) for p in args.processes.split(",")):
        poll_s, deliver_s, sent = await one_round(n, args)
        rate = sent / deliver_s
        baseline = baseline or rate
        print(f"{n:>9} {poll_s:>8.2f} {args.sources / poll_s:>10.0f} {deliver_s:>10.2f} {rate:>11.0f} "
              f"{rate / baseline:>5.2f}x", flush=True)


if __name__ == "__main__":
    asyncio.run(main())

"""SIGKILL at random points of polling, matching and fan-out, restarted each time (issue #10, "Faults").

Veille runs as a real process (`veille run`, forked from a zygote that paid aiogram's import once) against
the fake Bot API and a feed server. Three chats follow the same query; every round publishes new items
in three feeds, starts Veille and SIGKILLs it after a random delay (0 to 1.5 s after its scheduler
started: inside a poll, a match, an outbox write or a send). Then one last process runs to the end.

What must hold: every published item is stored (no article missed); every chat received every alert
(no alert lost); duplicates — the same alert in two messages to one chat — stay within the delivery
design's bound: per kill, at most the sends in flight (`Deliverer.max_in_flight`). The count of
duplicates is recorded for docs/reliability.md.

CI runs `VEILLE_TEST_KILLS` = 2 rounds; bench/reliability.py runs 50.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

from bot.db.engine import create_engine, create_session_factory
from bot.db.models import Article, Delivery, Source
from bot.services.delivery import Deliverer
from tests.fakes.fault_tools import ForkedVeille, Zygote, env_int, record_figure, veille_env
from tests.fakes.feed_server import FeedServer
from tests.fakes.telegram_api import FakeTelegram

CHATS = (7101, 7102, 7103)
FEEDS = ("/a.xml", "/b.xml", "/c.xml")
ITEMS_PER_FEED_PER_ROUND = 2
TOKEN = re.compile(r"kv\d{5}x")
WORDS = ("ministre", "budget", "tempête", "élection", "satellite", "vaccin", "frontière", "récolte", "grève",
         "tribunal", "volcan", "musée", "banque", "réacteur", "marathon", "glacier", "pipeline", "traité",
         "hôpital", "orchestre", "lagune", "cyclone", "brevet", "caserne", "vignoble", "sommet", "douane")


def make_item(rng: random.Random, number: int, feed: str) -> dict:
    token = f"kv{number:05d}x"
    words = rng.sample(WORDS, 6)
    return {
        "title": f"Zorglub {token} {' '.join(words[:3])}",
        "link": f"https://news.example.org{feed[:-4]}/{token}",
        "guid": f"{feed}-{token}",
        "description": f"Le {words[3]} et la {words[4]} face au {words[5]}, selon Zorglub ({token}).",
        "pub_date": datetime.now(UTC),
    }


def settings_env(tmp_path: Path, fake: FakeTelegram, feeds: FeedServer, database_url: str) -> dict[str, str]:
    sources = tmp_path / "sources.toml"
    sources.write_text("".join(
        f'[[source]]\nname = "Feed {path[1]}"\nurl = "{feeds.url(path)}"\nlanguage = "fr"\n' for path in FEEDS
    ), encoding="utf-8")
    return veille_env(
        bot_token=fake.token, telegram_api_url=fake.base_url, database_url=database_url, sources_file=sources,
        config_file=tmp_path / "none.toml", poll_interval=1, poll_max_interval=2, poll_tick=0.2,
        delivery_tick=0.2, allow_private_networks=True, fetch_full_text=False, alerts_per_hour=0,
        private_chat_rate=50, send_rate=100, poll_lease=2, delivery_lease=3, log_level="INFO",
    )


def delivered(fake: FakeTelegram) -> Counter[tuple[int, str]]:
    """How many messages carried each (chat, item token): 1 = delivered once, 2 = one duplicate."""
    counts: Counter[tuple[int, str]] = Counter()
    for message in fake.sent():
        for token in set(TOKEN.findall(message.text or "")):
            counts[(message.chat_id, token)] += 1
    return counts


async def unfinished_deliveries(session_factory) -> int:  # noqa: ANN001
    async with session_factory() as session:
        return await session.scalar(
            select(func.count()).select_from(Delivery).where(Delivery.status.in_(("pending", "sending"))))


async def phase_at_kill(session_factory, fake: FakeTelegram) -> dict[str, int]:  # noqa: ANN001
    """Where the kill landed: articles stored so far, outbox rows waiting / leased, messages sent."""
    async with session_factory() as session:
        articles = await session.scalar(select(func.count()).select_from(Article))
        rows = Counter((await session.scalars(select(Delivery.status))).all())
    return {"articles": articles or 0, "pending": rows["pending"], "sending": rows["sending"],
            "sent_messages": len(fake.sent())}


async def test_sigkill_at_random_points_loses_no_article_and_no_alert(
    tmp_path: Path, database_url: str
) -> None:
    kills = env_int("VEILLE_TEST_KILLS", 2)
    rng = random.Random(20240610)
    engine = create_engine(database_url)
    session_factory = create_session_factory(engine)
    zygote = await Zygote().start()
    log = tmp_path / "veille.log"
    published: dict[str, list[dict]] = {path: [] for path in FEEDS}
    number = 0
    started = time.monotonic()
    try:
        async with FakeTelegram() as fake, FeedServer() as feeds:
            fake.delay("sendMessage", 0.02)  # a send takes a little while, as over a real network
            for path in FEEDS:
                feeds.set_rss(path, [])
            env = settings_env(tmp_path, fake, feeds, database_url)

            # Warm-up: subscribe the chats and let every source have its first (backfill) poll.
            warm = await ForkedVeille(zygote, tmp_path, env, log).start()
            await warm.wait_for_log("long polling started")
            for chat in CHATS:
                fake.push_message(chat, "/subscribe Zorglub", language_code="fr")
            for chat in CHATS:
                await fake.wait_for_messages(1, chat_id=chat, timeout=30)

            async def all_sources_polled() -> bool:
                async with session_factory() as session:
                    waiting = await session.scalar(
                        select(func.count()).select_from(Source).where(Source.last_success_at.is_(None)))
                return waiting == 0

            deadline = time.monotonic() + 60
            while not await all_sources_polled():
                assert time.monotonic() < deadline, "the sources' first polls never finished"
                await asyncio.sleep(0.1)
            await warm.kill()

            delays: list[float] = []
            phases: list[dict[str, int]] = []
            for _ in range(kills):
                for path in FEEDS:
                    for _ in range(ITEMS_PER_FEED_PER_ROUND):
                        number += 1
                        published[path].append(make_item(rng, number, path))
                    feeds.set_rss(path, published[path][-40:])
                process = await ForkedVeille(zygote, tmp_path, env, log).start()
                await process.wait_for_log("scheduler started")
                delay = rng.uniform(0, 1.5)
                delays.append(delay)
                await asyncio.sleep(delay)
                await process.kill()
                phases.append(await phase_at_kill(session_factory, fake))

            final = await ForkedVeille(zygote, tmp_path, env, log).start()
            tokens = {TOKEN.search(item["title"]).group() for items in published.values() for item in items}
            expected = {(chat, token) for chat in CHATS for token in tokens}
            try:
                await fake.wait_until(lambda: expected <= set(delivered(fake)), timeout=120,
                                      what="every alert delivered after the last restart")
            except TimeoutError:
                missing = sorted(expected - set(delivered(fake)))
                raise AssertionError(f"{len(missing)} alerts never arrived, e.g. {missing[:5]}\n"
                                     + final.log[-3000:]) from None
            # Rows a killed process left `sending` are sent again once their lease expires: wait for that
            # too, so the duplicates it makes are counted.
            deadline = time.monotonic() + 60
            while await unfinished_deliveries(session_factory):
                assert time.monotonic() < deadline, "outbox rows never finished:\n" + final.log[-3000:]
                await asyncio.sleep(0.2)
            assert await final.terminate(), "the last process did not stop on SIGTERM"

        async with session_factory() as session:
            stored = set((await session.scalars(select(Article.url))).all())
            statuses = Counter((await session.scalars(select(Delivery.status))).all())
        links = {item["link"] for items in published.values() for item in items}
        assert links <= stored, f"articles missed: {sorted(links - stored)[:5]}"
        assert set(statuses) <= {"sent"}, statuses

        counts = delivered(fake)
        duplicates = sum(count - 1 for count in counts.values())
        bound = kills * Deliverer.max_in_flight
        assert duplicates <= bound, f"{duplicates} duplicates for {kills} kills (bound {bound})"
        record_figure(
            "sigkill", kills=kills, items=len(tokens), alerts_expected=len(expected),
            alerts_delivered=len(set(counts) & expected), duplicates=duplicates,
            kills_per_duplicate_bound=Deliverer.max_in_flight, delays_s=[round(d, 2) for d in delays],
            kills_with_sends_in_flight=sum(1 for p in phases if p["sending"]),
            kills_mid_fanout=sum(1 for p in phases if p["pending"] and p["sent_messages"]),
            seconds=round(time.monotonic() - started, 1), phases=phases,
        )
    finally:
        await zygote.close()
        await engine.dispose()

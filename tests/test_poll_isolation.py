"""One bad source never delays the others: the scheduler tick hands every due source its own task."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy import select

from bot.core.polling import PollPolicy
from bot.db import repo
from bot.db.models import Source
from bot.fetcher.http import Fetcher, FetcherConfig
from bot.services.matcher import Matcher
from bot.services.poller import Poller, PollerConfig
from tests.fakes.feed_server import FeedServer

RSS = ("<?xml version='1.0'?><rss version='2.0'><channel><title>t</title><item><title>Un</title>"
       "<link>https://ex.org/1</link><guid>1</guid></item></channel></rss>")


async def test_a_hanging_source_does_not_hold_back_the_others(session_factory) -> None:  # noqa: ANN001
    now = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
    async with FeedServer() as feeds:
        feeds.set("/slow.xml", RSS, delay=30)  # answers long after everything else is done
        feeds.drip("/drip.xml", RSS, interval=1.0)  # one byte a second
        for n in range(5):
            feeds.set(f"/ok{n}.xml", RSS)
        async with session_factory() as session, session.begin():
            for path in ["/slow.xml", "/drip.xml", *(f"/ok{n}.xml" for n in range(5))]:
                await repo.upsert_source(session, url=feeds.url(path), name=path, language="fr", category=None,
                                         now=now)
        fetcher = Fetcher(FetcherConfig(user_agent="t", allow_private_networks=True, total_timeout=60))
        await fetcher.start()
        poller = Poller(session_factory=session_factory, fetcher=fetcher, matcher=Matcher(),
                        config=PollerConfig(policy=PollPolicy(default_interval=60, min_interval=60)),
                        clock=lambda: now)
        try:
            assert await poller.tick() == 7
            for _ in range(400):  # bounded: at most 20 s
                async with session_factory() as session:
                    sources = {s.url: s for s in (await session.execute(select(Source))).scalars()}
                if all(sources[feeds.url(f"/ok{n}.xml")].last_success_at for n in range(5)):
                    break
                await asyncio.sleep(0.05)
            fine = [sources[feeds.url(f"/ok{n}.xml")] for n in range(5)]
            assert all(s.last_success_at is not None for s in fine), "healthy sources waited for the slow ones"
            for path in ("/slow.xml", "/drip.xml"):
                stuck = sources[feeds.url(path)]
                assert stuck.last_checked_at is None and stuck.lease_owner is not None  # still in flight
            assert await poller.tick() == 0  # leased sources are not claimed twice
        finally:
            await poller.drain(timeout=0.5)
            await fetcher.close()

"""Index changes reach the other processes: through Redis pub/sub, and by the periodic full reload."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from bot.core.matching import Document
from bot.core.query import parse_query
from bot.db.repo import ActiveSubscription
from bot.services.index_sync import IndexSync, SyncedMatcher
from tests.conftest import TEST_REDIS_URL

needs_redis = pytest.mark.skipif(not TEST_REDIS_URL, reason="VEILLE_TEST_REDIS_URL is not set (no Redis to test)")

DOC = Document(title="Sommet de l'OTAN à Bakou", text="L'Azerbaïdjan accueille", source_name="x", source_url="x")


class _Process:
    """One process's matcher and sync; `database` stands for the shared subscriptions table."""

    def __init__(self, name: str, redis, database: list[ActiveSubscription], channel: str, **options) -> None:  # noqa: ANN001, ANN003
        self.matcher = SyncedMatcher()
        self.database = database

        async def reload() -> None:
            self.matcher.load(list(self.database))

        self.sync = IndexSync(redis, self.matcher, reload, origin=name, channel=channel, debounce=0.05, **options)
        self.task: asyncio.Task | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(self.sync.run())
        await self.sync.wait_subscribed()

    async def stop(self) -> None:
        await self.sync.stop()
        if self.task is not None:
            await asyncio.wait_for(self.task, 5)


async def until(predicate, what: str, timeout: float = 5.0) -> None:  # noqa: ANN001, ASYNC109
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise TimeoutError(f"timed out waiting for {what}")


@needs_redis
async def test_an_alert_added_in_one_process_fires_in_the_other_within_seconds() -> None:
    from redis.asyncio import Redis

    channel = f"veille-test:{uuid.uuid4().hex}"
    database: list[ActiveSubscription] = []
    clients = [Redis.from_url(TEST_REDIS_URL), Redis.from_url(TEST_REDIS_URL)]
    bot = _Process("bot", clients[0], database, channel)
    poller = _Process("poller", clients[1], database, channel)
    await bot.start()
    await poller.start()
    try:
        subscription = ActiveSubscription(1, 42, "Azerbaïdjan", None)
        database.append(subscription)  # committed first, then the index is patched
        bot.matcher.add(subscription, parse_query("Azerbaïdjan"))
        await until(lambda: poller.matcher.match(DOC), "the poller to know the new alert")
        assert poller.sync.reloads >= 1
        assert bot.sync.received == 0, "a process ignores its own announcements"

        database.clear()
        bot.matcher.remove(1)
        await until(lambda: not poller.matcher.match(DOC), "the poller to drop the alert")
    finally:
        await bot.stop()
        await poller.stop()
        for c in clients:
            await c.aclose()


@needs_redis
async def test_a_pause_in_one_process_silences_the_alert_in_the_other() -> None:
    from redis.asyncio import Redis

    channel = f"veille-test:{uuid.uuid4().hex}"
    database = [ActiveSubscription(1, 42, "Azerbaïdjan", None)]
    clients = [Redis.from_url(TEST_REDIS_URL), Redis.from_url(TEST_REDIS_URL)]
    # No periodic reload within the test: only the announcement can carry the change.
    bot = _Process("bot", clients[0], database, channel, full_reload_every=3600)
    poller = _Process("poller", clients[1], database, channel, full_reload_every=3600)
    bot.matcher.load(database)
    poller.matcher.load(database)
    await bot.start()
    await poller.start()
    try:
        assert poller.matcher.match(DOC)
        database[0] = ActiveSubscription(1, 42, "Azerbaïdjan", None, paused=True)  # committed first
        assert bot.matcher.update_filters(1, paused=True)
        await until(lambda: not poller.matcher.match(DOC), "the poller to see the pause")
        database[0] = ActiveSubscription(1, 42, "Azerbaïdjan", None)
        assert bot.matcher.update_filters(1, paused=False)
        await until(lambda: poller.matcher.match(DOC), "the poller to see the resume")
    finally:
        await bot.stop()
        await poller.stop()
        for c in clients:
            await c.aclose()


def test_malformed_events_are_ignored() -> None:
    matcher = SyncedMatcher()
    sync = IndexSync(None, matcher, _no_reload, origin="a")
    sync.handle(b"not json")
    sync.handle(b'{"no_op": 1}')
    assert sync.received == 0


async def _no_reload() -> None:
    return None


async def test_without_redis_the_periodic_full_reload_catches_up() -> None:
    database: list[ActiveSubscription] = []
    other = _Process("other", None, database, "unused", full_reload_every=0.1)
    await other.start()
    try:
        database.append(ActiveSubscription(1, 42, "OTAN", None))  # written by another process
        await until(lambda: other.matcher.match(DOC), "the periodic reload")
    finally:
        await other.stop()


async def test_remote_removal_is_applied_without_a_reload_and_not_announced_again() -> None:
    announced: list[tuple[str, int]] = []
    matcher = SyncedMatcher()
    matcher.load([ActiveSubscription(3, 42, "OTAN", None)])
    sync = IndexSync(None, matcher, _no_reload, origin="me")
    matcher.on_change = lambda op, sid: announced.append((op, sid))
    sync.handle(b'{"op": "remove", "id": 3, "origin": "someone-else"}')
    assert not matcher.match(DOC)
    assert announced == [] and sync.received == 1
    matcher.add(ActiveSubscription(4, 42, "OTAN", None), parse_query("OTAN"))
    assert announced == [("add", 4)]

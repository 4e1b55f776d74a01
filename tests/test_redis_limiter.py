"""The Telegram rate limit shared through Redis: one Lua script, atomic across any number of clients.

Needs Redis: set VEILLE_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/0). Every test uses its own key
prefix, so tests never see each other's buckets. Grant times are Redis's own clock (returned by the
script), so the rate checks do not depend on how fast this machine runs the test.
"""

from __future__ import annotations

import asyncio
import math
import uuid

import pytest

from bot.core.ratelimit import ChatPacer, PacingSettings, RateLimiter
from bot.services.redis_limiter import MeteredLimiter, RedisRateLimiter, SharedRateLimiter
from tests.conftest import TEST_REDIS_URL

needs_redis = pytest.mark.skipif(not TEST_REDIS_URL, reason="VEILLE_TEST_REDIS_URL is not set (no Redis to test)")


@pytest.fixture
async def redis_client():
    from redis.asyncio import Redis

    client = Redis.from_url(TEST_REDIS_URL)
    yield client
    await client.aclose()


@pytest.fixture
def prefix() -> str:
    return f"veille-test:{uuid.uuid4().hex}:"


def max_in_window(times: list[float], window: float) -> int:
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - window:
            start += 1
        best = max(best, end - start + 1)
    return best


@needs_redis
async def test_grants_never_exceed_the_rate_across_concurrent_clients(prefix: str) -> None:
    from redis.asyncio import Redis

    rate, clients, wanted = 100.0, 8, 160
    connections = [Redis.from_url(TEST_REDIS_URL) for _ in range(clients)]
    limiters = [RedisRateLimiter(c, global_per_second=rate, prefix=prefix,
                                 pacing=PacingSettings(private_per_second=1000, private_burst=1000))
                for c in connections]
    grants: list[float] = []

    async def client(number: int, limiter: RedisRateLimiter) -> None:
        for attempt in range(10_000):
            if len(grants) >= wanted:
                return
            grant = await limiter.acquire(f"{number}-{attempt}", "private")
            if grant.wait == 0:
                grants.append(grant.at)
            else:
                await asyncio.sleep(grant.wait)

    try:
        await asyncio.gather(*(client(n, lim) for n, lim in enumerate(limiters)))
    finally:
        for c in connections:
            await c.aclose()
    grants.sort()
    assert len(grants) >= wanted
    # burst 1: consecutive grants are at least 1/rate apart (the script prints 6 decimals).
    gaps = [b - a for a, b in zip(grants, grants[1:], strict=False)]
    assert min(gaps) >= 1 / rate - 2e-6, f"two grants {min(gaps):.6f}s apart at {rate}/s"
    assert max_in_window(grants, 1.0) <= math.ceil(rate * 1.0)


@needs_redis
async def test_private_chat_gets_a_burst_of_three_then_one_per_second(redis_client, prefix: str) -> None:
    limiter = RedisRateLimiter(redis_client, global_per_second=1000, global_burst=100, prefix=prefix)
    first = [await limiter.acquire(7, "private") for _ in range(3)]
    assert [g.wait for g in first] == [0.0, 0.0, 0.0]
    fourth = await limiter.acquire(7, "private")
    assert 0.5 < fourth.wait <= 1.0 and fourth.chat_bound
    assert (await limiter.acquire(8, "private")).wait == 0.0, "another chat is not held back"


@needs_redis
async def test_group_chat_is_paced_at_twenty_per_minute(redis_client, prefix: str) -> None:
    limiter = RedisRateLimiter(redis_client, global_per_second=1000, global_burst=100, prefix=prefix)
    assert (await limiter.acquire(-100, "supergroup")).wait == 0.0
    second = await limiter.acquire(-100, "supergroup")
    assert 2.5 < second.wait <= 3.0
    with pytest.raises(ValueError):
        await limiter.acquire(-100, "bogus")


@needs_redis
async def test_global_refusal_is_not_blamed_on_the_chat(redis_client, prefix: str) -> None:
    limiter = RedisRateLimiter(redis_client, global_per_second=1, prefix=prefix)
    assert (await limiter.acquire(1, "private")).wait == 0.0
    refused = await limiter.acquire(2, "private")
    assert refused.wait > 0.5 and not refused.chat_bound


@needs_redis
async def test_hold_chat_blocks_that_chat_for_every_process(redis_client, prefix: str) -> None:
    from redis.asyncio import Redis

    other_process = Redis.from_url(TEST_REDIS_URL)
    try:
        a = RedisRateLimiter(redis_client, global_per_second=1000, global_burst=100, prefix=prefix)
        b = RedisRateLimiter(other_process, global_per_second=1000, global_burst=100, prefix=prefix)
        await a.hold_chat(5, 30.0)
        held = await b.acquire(5, "private")
        assert 29.0 < held.wait <= 30.0 and held.chat_bound
        assert (await b.acquire(6, "private")).wait == 0.0
        await a.hold_chat(5, 1.0)  # a shorter hold never shortens a longer one
        assert (await b.acquire(5, "private")).wait > 29.0
        await b.hold_all(20.0)
        assert 19.0 < (await a.acquire(6, "private")).wait <= 20.0
    finally:
        await other_process.aclose()


@needs_redis
async def test_buckets_expire_once_they_would_be_full_again(redis_client, prefix: str) -> None:
    limiter = RedisRateLimiter(redis_client, global_per_second=30, prefix=prefix)
    await limiter.acquire(9, "private")
    ttl_ms = await redis_client.pttl(f"{prefix}chat:9")
    assert 0 < ttl_ms <= (3 / 1 + 1) * 1000
    global_ttl = await redis_client.pttl(f"{prefix}global")
    # The key lives until the bucket is full again: one token's worth, plus the next grant's spacing
    # (the acquire above reserved it), plus a second of margin — never indefinitely.
    assert 0 < global_ttl <= (2 / 30 + 1) * 1000


@needs_redis
async def test_shared_limiter_adapts_the_async_bucket_to_the_deliverers_interface(redis_client, prefix: str) -> None:
    waits: list[float] = []
    remote = RedisRateLimiter(redis_client, global_per_second=1000, global_burst=100, prefix=prefix)
    shared = SharedRateLimiter(remote, on_wait=waits.append)
    now = 100.0
    answers = []
    for _ in range(200):  # bounded: the Redis round trip completes within a few polls
        wait = shared.reserve(11, "private", now)
        answers.append(wait)
        if wait == 0.0:
            break
        await asyncio.sleep(wait)
        now += wait
    assert answers[0] == shared.poll_interval and answers[-1] == 0.0
    assert len(waits) == 1 and waits[0] >= shared.poll_interval * 0.999  # float sums of the polls
    # The grant is mirrored in the local pacer: after the burst of 3, the chat must wait locally too.
    for _ in range(2):
        shared.pacer.record_sent(11, "private", now)
    assert shared.pacer.delay_for(11, "private", now) > 0


@needs_redis
async def test_chat_bound_wait_is_mirrored_in_the_local_pacer(redis_client, prefix: str) -> None:
    remote = RedisRateLimiter(redis_client, global_per_second=1000, global_burst=100, prefix=prefix)
    await remote.hold_chat(12, 10.0)  # another process got a 429 for this chat
    shared = SharedRateLimiter(remote)
    wait = shared.poll_interval
    for _ in range(200):
        wait = shared.reserve(12, "private", 50.0)
        if wait != shared.poll_interval:
            break
        await asyncio.sleep(wait)
    assert wait > 9.0
    assert shared.pacer.delay_for(12, "private", 50.0) > 9.0


async def test_shared_limiter_falls_back_to_this_process_when_redis_is_down() -> None:
    from redis.asyncio import Redis

    dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    try:
        local = RateLimiter(global_per_second=1, pacer=ChatPacer())
        shared = SharedRateLimiter(RedisRateLimiter(dead, global_per_second=1), fallback=local)
        answers = []
        for _ in range(2_000):
            wait = shared.reserve(1, "private", 10.0)
            answers.append(wait)
            if wait != shared.poll_interval:
                break
            await asyncio.sleep(wait)
        assert answers[-1] == 0.0 and shared.redis_failures == 1
        # The local limiter took the token: the next chat waits for the global bucket (1/s).
        for _ in range(2_000):
            wait = shared.reserve(2, "private", 10.0)
            if wait != shared.poll_interval:
                break
            await asyncio.sleep(wait)
        assert wait == pytest.approx(1.0)
    finally:
        await dead.aclose()


def test_metered_limiter_reports_the_whole_wait_of_each_granted_send() -> None:
    waits: list[float] = []
    limiter = MeteredLimiter(RateLimiter(global_per_second=2), waits.append)
    assert limiter.reserve(1, "private", 0.0) == 0.0
    assert limiter.reserve(2, "private", 0.0) == pytest.approx(0.5)
    assert limiter.reserve(2, "private", 0.25) == pytest.approx(0.25)
    assert limiter.reserve(2, "private", 0.5) == 0.0
    assert waits == [0.0, 0.5]
    assert limiter.pacer is limiter.inner.pacer

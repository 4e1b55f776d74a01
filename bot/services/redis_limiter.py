"""The Telegram rate limit shared by every process, as token buckets kept in Redis (issue #9).

Rules (the same as `bot.core.ratelimit`, which is the in-process version):

- One global bucket (`send_rate` per second, burst 1 by default) and one bucket per chat (private:
  1/s with a burst of 3; groups and channels: 20/min, burst 1). A send takes a token from the global
  bucket and from its chat's bucket together, or from neither.
- Every decision is one Lua script, which Redis runs atomically: read both buckets, refill them from
  Redis's own clock (`TIME`, so the processes' clocks never matter), and either take one token from
  each or answer how long to wait. Hence across any number of processes the grants obey the bucket
  bound: at most ``burst - 1 + ceil(rate * T)`` in any window of ``T`` seconds.
- A 429 holds a bucket (`hold_chat`, `hold_all`): nothing passes before ``now + retry_after``; at that
  instant one send passes and pacing resumes from an empty bucket.
- Buckets expire from Redis once they would be full again (plus any hold), so memory is bounded by the
  chats active in the last few seconds.

`RedisRateLimiter` is async. The Deliverer asks its limiter synchronously (`reserve(chat_id, kind,
now) -> seconds to wait`), so `SharedRateLimiter` adapts one to the other: the first `reserve` for a
chat starts the Redis call and answers "wait a couple of milliseconds"; the next `reserve` after the
call finished returns its answer. If Redis fails, the in-process limiter decides meanwhile (logged).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.core.ratelimit import GROUP_KINDS, PRIVATE, ChatPacer, PacingSettings, RateLimiter

log = logging.getLogger(__name__)

# Redis's TIME in seconds since this origin keeps 6 decimals inside a double's 14 printed digits.
_ORIGIN = 1_700_000_000

_PREAMBLE = """
local t = redis.call('TIME')
local now = (tonumber(t[1]) - ORIGIN) + tonumber(t[2]) / 1000000
local function fmt(x) return string.format('%.6f', x) end
local function level(key, rate, burst)
  local v = redis.call('HMGET', key, 'tokens', 'stamp', 'hold')
  local tokens, stamp, hold = tonumber(v[1]), tonumber(v[2]), tonumber(v[3]) or -1
  if tokens == nil then tokens = burst; stamp = now end
  if now > stamp then
    tokens = math.min(burst, tokens + (now - stamp) * rate)
    stamp = now
  end
  local wait = 0
  if now < hold then
    wait = hold - now
  elseif tokens < 1 - 1e-9 then
    wait = (1 - tokens) / rate
  end
  return tokens, stamp, wait, hold
end
""".replace("ORIGIN", str(_ORIGIN))

# KEYS: global bucket, chat bucket. ARGV: global rate, global burst, chat rate, chat burst.
# Returns {wait, now, cause}: wait "0.000000" means granted (a token taken from both buckets); else
# cause says which bucket refused ("chat" when the chat's own bucket is the longer wait).
_RESERVE = _PREAMBLE + """
local gr, gb, cr, cb = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local gt, gs, gw, gh = level(KEYS[1], gr, gb)
local ct, cs, cw, ch = level(KEYS[2], cr, cb)
local wait = math.max(gw, cw)
if wait > 0 then
  local cause = 'global'
  if cw >= gw then cause = 'chat' end
  return {fmt(wait), fmt(now), cause}
end
redis.call('HSET', KEYS[1], 'tokens', fmt(gt - 1), 'stamp', fmt(gs))
redis.call('HSET', KEYS[2], 'tokens', fmt(ct - 1), 'stamp', fmt(cs))
redis.call('PEXPIRE', KEYS[1], math.ceil((gb / gr + math.max(0, gh - now) + 1) * 1000))
redis.call('PEXPIRE', KEYS[2], math.ceil((cb / cr + math.max(0, ch - now) + 1) * 1000))
return {fmt(0), fmt(now), ''}
"""

# KEYS: one bucket. ARGV: seconds to hold, the bucket's refill time (burst / rate).
_HOLD = _PREAMBLE + """
local untl = now + tonumber(ARGV[1])
local hold = tonumber(redis.call('HGET', KEYS[1], 'hold')) or -1
if untl > hold then
  redis.call('HSET', KEYS[1], 'hold', fmt(untl), 'tokens', '1', 'stamp', fmt(untl))
  redis.call('PEXPIRE', KEYS[1], math.ceil((untl - now + tonumber(ARGV[2]) + 1) * 1000))
end
return fmt(now)
"""


@dataclass(frozen=True, slots=True)
class Grant:
    """One answer of the shared limiter: `wait` 0.0 means granted at Redis time `at` (seconds);
    otherwise `chat_bound` says the chat's own bucket (not the global one) is what refused."""

    wait: float
    at: float
    chat_bound: bool = False


class RedisRateLimiter:
    """The shared buckets. `redis` is a `redis.asyncio.Redis`; keys start with `prefix`."""

    def __init__(
        self,
        redis: Any,
        *,
        global_per_second: float = 30.0,
        global_burst: float = 1.0,
        pacing: PacingSettings | None = None,
        prefix: str = "veille:ratelimit:",
    ) -> None:
        if global_per_second <= 0 or global_burst < 1:
            raise ValueError("need global_per_second > 0 and global_burst >= 1")
        self.redis = redis
        self.global_per_second = global_per_second
        self.global_burst = global_burst
        self.pacing = pacing or PacingSettings()
        self.prefix = prefix
        self._reserve = redis.register_script(_RESERVE)
        self._hold = redis.register_script(_HOLD)

    def _chat_limits(self, chat_kind: str) -> tuple[float, float]:
        if chat_kind == PRIVATE:
            return self.pacing.private_per_second, self.pacing.private_burst
        if chat_kind in GROUP_KINDS:
            return self.pacing.group_per_minute / 60.0, self.pacing.group_burst
        raise ValueError(f"unknown chat kind {chat_kind!r}")

    def _global_key(self) -> str:
        return f"{self.prefix}global"

    def _chat_key(self, chat_id: int | str) -> str:
        return f"{self.prefix}chat:{chat_id}"

    async def acquire(self, chat_id: int | str, chat_kind: str) -> Grant:
        """Takes a token from the global and the chat's bucket, or says how long to wait."""
        rate, burst = self._chat_limits(chat_kind)
        wait, at, cause = await self._reserve(
            keys=[self._global_key(), self._chat_key(chat_id)],
            args=[repr(self.global_per_second), repr(self.global_burst), repr(rate), repr(burst)],
        )
        return Grant(wait=float(wait), at=float(at), chat_bound=cause in (b"chat", "chat"))

    async def reserve(self, chat_id: int | str, chat_kind: str, now: float | None = None) -> float:
        """The async twin of `RateLimiter.reserve`: 0.0 = send now; `now` is ignored (Redis's clock)."""
        return (await self.acquire(chat_id, chat_kind)).wait

    async def hold_chat(self, chat_id: int | str, seconds: float, chat_kind: str = PRIVATE) -> None:
        rate, burst = self._chat_limits(chat_kind)
        await self._hold(keys=[self._chat_key(chat_id)], args=[repr(max(0.0, seconds)), repr(burst / rate)])

    async def hold_all(self, seconds: float) -> None:
        await self._hold(
            keys=[self._global_key()],
            args=[repr(max(0.0, seconds)), repr(self.global_burst / self.global_per_second)],
        )


class SharedRateLimiter:
    """`RateLimiter`'s synchronous interface over `RedisRateLimiter` (see the module docstring).

    `fallback` decides while Redis is unreachable; `on_wait(seconds)` hears how long each granted
    send waited in all (the metrics' limiter-wait histogram). `pacer` is the fallback's per-chat pacer,
    kept in step with Redis's answers for this process's chats: a grant is recorded there, and a chat
    that Redis says must wait is held there, so a caller that asks `pacer.delay_for` first (the
    Deliverer does, to wait for a chat outside its global queue) sees the chat's wait.
    """

    def __init__(
        self,
        remote: RedisRateLimiter,
        *,
        fallback: RateLimiter | None = None,
        poll_interval: float = 0.002,
        on_wait: Callable[[float], None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.remote = remote
        self.fallback = fallback or RateLimiter(
            global_per_second=remote.global_per_second, global_burst=remote.global_burst
        )
        self.poll_interval = poll_interval
        self.on_wait = on_wait
        self.monotonic = monotonic
        self.redis_failures = 0
        self._requests: dict[int | str, asyncio.Task[Grant]] = {}
        self._asked_at: dict[int | str, float] = {}
        self._background: set[asyncio.Task[Any]] = set()

    def reserve(self, chat_id: int | str, chat_kind: str, now: float) -> float:
        """0.0 = send now (reserved in Redis); otherwise seconds to wait before asking again."""
        request = self._requests.get(chat_id)
        if request is None:
            self._asked_at.setdefault(chat_id, now)
            self._requests[chat_id] = asyncio.get_running_loop().create_task(
                self.remote.acquire(chat_id, chat_kind)
            )
            return self.poll_interval
        if not request.done():
            return self.poll_interval
        del self._requests[chat_id]
        try:
            grant = request.result()
        except Exception as exc:  # noqa: BLE001 — any Redis/connection error: degrade, don't stop sending
            self.redis_failures += 1
            if self.redis_failures == 1 or self.redis_failures % 100 == 0:
                log.warning("redis rate limiter unavailable; limiting in this process only",
                            extra={"error": repr(exc), "failures": self.redis_failures})
            wait = self.fallback.reserve(chat_id, chat_kind, now)
        else:
            wait = grant.wait
            if wait <= 0:
                self.fallback.pacer.record_sent(chat_id, chat_kind, now)
            elif grant.chat_bound:
                self.fallback.pacer.hold(chat_id, now + wait)
        if wait > 0:
            return wait
        asked = self._asked_at.pop(chat_id, now)
        if self.on_wait is not None:
            self.on_wait(max(0.0, now - asked))
        return 0.0

    @property
    def pacer(self) -> ChatPacer:
        return self.fallback.pacer

    @property
    def global_per_second(self) -> float:
        return self.remote.global_per_second

    def hold_chat(self, chat_id: int | str, until: float, chat_kind: str = PRIVATE) -> None:
        """A 429 for one chat, `until` on this process's monotonic clock; every process will wait."""
        self.fallback.hold_chat(chat_id, until)
        self._spawn(self.remote.hold_chat(chat_id, until - self.monotonic(), chat_kind))

    def hold_all(self, until: float) -> None:
        self.fallback.hold_all(until)
        self._spawn(self.remote.hold_all(until - self.monotonic()))

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("redis hold failed", extra={"error": repr(task.exception())})


class MeteredLimiter:
    """Wraps the in-process `RateLimiter` to report how long each granted send waited."""

    def __init__(self, inner: RateLimiter, on_wait: Callable[[float], None]) -> None:
        self.inner = inner
        self.on_wait = on_wait
        self._asked_at: dict[int | str, float] = {}

    def reserve(self, chat_id: int | str, chat_kind: str, now: float) -> float:
        wait = self.inner.reserve(chat_id, chat_kind, now)
        if wait > 0:
            self._asked_at.setdefault(chat_id, now)
            return wait
        self.on_wait(max(0.0, now - self._asked_at.pop(chat_id, now)))
        return 0.0

    @property
    def pacer(self) -> ChatPacer:
        return self.inner.pacer

    @property
    def global_per_second(self) -> float:
        return self.inner.global_per_second

    def hold_chat(self, chat_id: int | str, until: float) -> None:
        self.inner.hold_chat(chat_id, until)

    def hold_all(self, until: float) -> None:
        self.inner.hold_all(until)

"""Pacing outgoing Telegram messages so that the Bot API never has to answer 429.

Telegram's limits (https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this):
about 30 messages per second overall, about 1 per second in one private chat (short bursts
tolerated), at most 20 per minute in one group or channel. A 429 answer carries ``retry_after``:
nothing may be sent to that chat before it has elapsed.

Rules:

* Every limit is a token bucket (`TokenBucket`): it holds at most `burst` tokens, refills at `rate`
  tokens per second, one message takes one token. A bucket that refuses does not consume.
* A token bucket with rate ``r`` and burst ``b`` lets through at most ``b - 1 + ceil(r * T)`` sends in
  any window of ``T`` seconds. Telegram counts in sliding windows (30 per second, 20 per minute), so
  the global bucket and the group buckets default to ``burst=1``: even spacing, never over.
  Private chats default to a burst of 3 (Telegram tolerates short bursts there; a user who asks for
  several things at once gets them at once).
* A 429 blocks a bucket until ``now + retry_after`` exactly (`penalize` / `hold`); at that instant
  one send is allowed again and pacing resumes from an empty bucket.
* `ChatPacer` keeps one bucket per chat but forgets a chat as soon as its bucket is full again and
  not held: such a bucket behaves exactly like a fresh one, so forgetting changes nothing and memory
  is bounded by the chats active in the last few seconds.
* `RateLimiter.reserve` takes from the global bucket and the chat's bucket together or from neither.

No clock inside: every call takes `now` (seconds, any monotonic origin). Time that appears to go
backwards is treated as no time passing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Float sums of rate * elapsed land a hair under 1.0 when the caller waited exactly the delay we
# returned; without this slack it would be told to wait another 1e-16 s.
_EPSILON = 1e-9

PRIVATE = "private"
GROUP_KINDS = frozenset({"group", "supergroup", "channel"})


class TokenBucket:
    """`rate` tokens per second, at most `burst` stored; starts full."""

    __slots__ = ("rate", "burst", "_tokens", "_stamp", "_blocked_until")

    def __init__(self, rate: float, burst: float) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"need rate > 0 and burst >= 1, got rate={rate} burst={burst}")
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._stamp: float | None = None
        self._blocked_until = float("-inf")

    def _refill(self, now: float) -> None:
        if self._stamp is None:
            self._stamp = now
            return
        if now > self._stamp:
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now

    def wait_time(self, now: float) -> float:
        """Seconds until one token is available (0.0 = now), without taking it."""
        if now < self._blocked_until:
            return self._blocked_until - now
        self._refill(now)
        missing = 1.0 - self._tokens
        if missing <= _EPSILON:
            return 0.0
        return missing / self.rate

    def take(self, now: float) -> None:
        """Consume one token unconditionally (a send that happened anyway may leave a debt)."""
        self._refill(now)
        self._tokens -= 1.0

    def try_take(self, now: float) -> float:
        """Take a token and return 0.0, or return the seconds to wait and take nothing."""
        wait = self.wait_time(now)
        if wait == 0.0:
            self.take(now)
        return wait

    def penalize(self, until: float) -> None:
        """Nothing passes before `until` (a 429's ``now + retry_after``); one send passes at `until`."""
        if until <= self._blocked_until:
            return
        self._blocked_until = until
        self._tokens = 1.0
        self._stamp = until

    def is_idle(self, now: float) -> bool:
        """Full and not blocked: indistinguishable from a fresh bucket."""
        if now < self._blocked_until:
            return False
        if self._stamp is None:
            return True
        elapsed = max(0.0, now - self._stamp)
        return self._tokens + elapsed * self.rate >= self.burst - _EPSILON


def _check_kind(chat_kind: str) -> None:
    if chat_kind != PRIVATE and chat_kind not in GROUP_KINDS:
        raise ValueError(f"unknown chat kind {chat_kind!r}; expected 'private' or one of {sorted(GROUP_KINDS)}")


@dataclass(frozen=True, slots=True)
class PacingSettings:
    """Per-chat limits; defaults follow Telegram's FAQ (see module docstring)."""

    private_per_second: float = 1.0
    private_burst: float = 3.0
    group_per_minute: float = 20.0
    group_burst: float = 1.0


class ChatPacer:
    """One token bucket per chat, chosen by the chat's kind (Telegram's ``chat.type``)."""

    def __init__(self, settings: PacingSettings | None = None, *, sweep_min: int = 1024) -> None:
        self.settings = settings or PacingSettings()
        self._buckets: dict[int | str, TokenBucket] = {}
        self._holds: dict[int | str, float] = {}
        self._sweep_min = sweep_min
        self._sweep_at = sweep_min

    def __len__(self) -> int:
        """Chats currently remembered (for checking that memory stays bounded)."""
        return len(self._buckets) + len(self._holds)

    def _new_bucket(self, chat_kind: str) -> TokenBucket:
        s = self.settings
        if chat_kind == PRIVATE:
            return TokenBucket(s.private_per_second, s.private_burst)
        _check_kind(chat_kind)
        return TokenBucket(s.group_per_minute / 60.0, s.group_burst)

    def _bucket(self, chat_id: int | str, chat_kind: str, now: float) -> TokenBucket:
        bucket = self._buckets.get(chat_id)
        if bucket is None:
            bucket = self._new_bucket(chat_kind)
            held_until = self._holds.pop(chat_id, None)
            if held_until is not None and held_until >= now:
                bucket.penalize(held_until)
            self._buckets[chat_id] = bucket
            self._maybe_sweep(now)
        return bucket

    def delay_for(self, chat_id: int | str, chat_kind: str, now: float) -> float:
        """Seconds before this chat may receive a message (0.0 = now)."""
        _check_kind(chat_kind)
        bucket = self._buckets.get(chat_id)
        if bucket is None:
            held_until = self._holds.get(chat_id, now)
            return max(0.0, held_until - now)
        return bucket.wait_time(now)

    def record_sent(self, chat_id: int | str, chat_kind: str, now: float) -> None:
        self._bucket(chat_id, chat_kind, now).take(now)

    def hold(self, chat_id: int | str, until: float) -> None:
        """Send nothing to this chat before `until` (a 429's retry_after)."""
        bucket = self._buckets.get(chat_id)
        if bucket is not None:
            bucket.penalize(until)
        else:
            self._holds[chat_id] = max(until, self._holds.get(chat_id, until))

    def _maybe_sweep(self, now: float) -> None:
        # Sweeping when the table doubles keeps the cost amortised O(1) per new chat.
        if len(self._buckets) < self._sweep_at:
            return
        self.forget_idle(now)
        self._sweep_at = max(self._sweep_min, 2 * len(self._buckets))

    def forget_idle(self, now: float) -> None:
        """Drop chats whose state equals a fresh chat's; behaviour is unchanged."""
        self._buckets = {cid: b for cid, b in self._buckets.items() if not b.is_idle(now)}
        self._holds = {cid: until for cid, until in self._holds.items() if until > now}


@dataclass
class RateLimiter:
    """The global bucket (30 messages/s by default) and the per-chat pacer, reserved together."""

    global_per_second: float = 30.0
    global_burst: float = 1.0
    pacer: ChatPacer = field(default_factory=ChatPacer)

    def __post_init__(self) -> None:
        self._global = TokenBucket(self.global_per_second, self.global_burst)

    def reserve(self, chat_id: int | str, chat_kind: str, now: float) -> float:
        """0.0 = send now (both limits reserved); otherwise seconds to wait, nothing reserved."""
        wait = max(self._global.wait_time(now), self.pacer.delay_for(chat_id, chat_kind, now))
        if wait > 0.0:
            return wait
        self._global.take(now)
        self.pacer.record_sent(chat_id, chat_kind, now)
        return 0.0

    def hold_chat(self, chat_id: int | str, until: float) -> None:
        """A 429 for one chat: that chat waits, others continue."""
        self.pacer.hold(chat_id, until)

    def hold_all(self, until: float) -> None:
        """A 429 that means the whole bot is over the limit: everything waits."""
        self._global.penalize(until)

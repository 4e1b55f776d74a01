"""When to poll a source next: pure decisions from what the last poll saw.

Rules (issue #3, "Scheduling"):

- Every interval is bounded by ``PollPolicy.min_interval`` and ``PollPolicy.max_interval``,
  error backoff included. Only a server's own ``Retry-After`` may push a source past the maximum
  (it is never shortened, and never cut below the minimum).
- After an error: ``Retry-After`` when the server sent one; otherwise exponential backoff
  ``default_interval × 2^(streak-1)``, capped at ``min(max_error_backoff, max_interval)``.
- After a success (new content or 304): the *publishing interval* is the mean gap between the
  recent publication times, counted up to ``now`` (``(now - oldest) / count``), so a source that
  stops publishing drifts towards the maximum by itself. Poll twice per gap
  (``publishing interval / 2``); with no publication times, ``default_interval``.
  Server hints are floors: RSS ``<ttl>``, ``Cache-Control: max-age`` and ``Expires`` may lengthen
  the interval, never shorten it (but the maximum still caps them).
- Jitter spreads 5,000 sources over time: the interval is multiplied by a factor in
  ``[1 - jitter_fraction, 1]`` (early, so the maximum still holds) derived from a hash of the
  source id and ``now``: deterministic, no global random state. ``Retry-After`` is jittered the
  other way (``[1, 1 + jitter_fraction]``) so it is never undercut.
- ``initial_check_at`` spreads the first poll of new sources over one ``default_interval``.
- A source is disabled after ``disable_after_errors`` consecutive failures.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Literal

PollOutcome = Literal["ok", "not_modified", "error"]


@dataclass(frozen=True)
class PollPolicy:
    default_interval: float = 300.0
    min_interval: float = 60.0
    max_interval: float = 21_600.0
    max_error_backoff: float = 21_600.0
    jitter_fraction: float = 0.1
    disable_after_errors: int = 20
    # How many of the most recent publication times the adaptive interval looks at.
    publishing_window: int = 20

    def __post_init__(self) -> None:
        if not 0 < self.min_interval <= self.max_interval:
            raise ValueError("PollPolicy needs 0 < min_interval <= max_interval")
        if not 0 <= self.jitter_fraction < 1:
            raise ValueError("PollPolicy.jitter_fraction must be in [0, 1)")

    def clamp(self, seconds: float) -> float:
        return min(max(seconds, self.min_interval), self.max_interval)


def next_check_at(
    now: datetime,
    *,
    policy: PollPolicy,
    outcome: PollOutcome,
    error_streak: int = 0,
    ttl_seconds: float | None = None,
    cache_max_age: float | None = None,
    expires: datetime | None = None,
    retry_after_seconds: float | None = None,
    recent_publish_times: Sequence[datetime] = (),
    source_id: int,
) -> datetime:
    """The time of the next poll of ``source_id`` (see the module docstring for the rules)."""
    return now + timedelta(
        seconds=poll_interval(
            now,
            policy=policy,
            outcome=outcome,
            error_streak=error_streak,
            ttl_seconds=ttl_seconds,
            cache_max_age=cache_max_age,
            expires=expires,
            retry_after_seconds=retry_after_seconds,
            recent_publish_times=recent_publish_times,
            source_id=source_id,
        )
    )


def poll_interval(
    now: datetime,
    *,
    policy: PollPolicy,
    outcome: PollOutcome,
    error_streak: int = 0,
    ttl_seconds: float | None = None,
    cache_max_age: float | None = None,
    expires: datetime | None = None,
    retry_after_seconds: float | None = None,
    recent_publish_times: Sequence[datetime] = (),
    source_id: int,
) -> float:
    """Seconds until the next poll (``next_check_at`` minus ``now``)."""
    if retry_after_seconds is not None and retry_after_seconds > 0:
        # The server said when to come back: never earlier, even past max_interval.
        wait = max(retry_after_seconds, policy.min_interval)
        return wait * (1 + policy.jitter_fraction * _unit_hash(source_id, now))
    if outcome == "error":
        interval = error_backoff(error_streak, policy)
    else:
        interval = adaptive_interval(now, recent_publish_times, policy)
        hints = [ttl_seconds, cache_max_age]
        if expires is not None:
            hints.append((expires - now).total_seconds())
        floor = max((h for h in hints if h is not None and h > 0), default=0.0)
        interval = max(interval, floor)
    interval = policy.clamp(interval)
    return max(policy.min_interval, interval * (1 - policy.jitter_fraction * _unit_hash(source_id, now)))


def error_backoff(error_streak: int, policy: PollPolicy) -> float:
    """``default_interval × 2^(streak-1)``, capped by ``max_error_backoff`` and ``max_interval``."""
    streak = max(1, error_streak)
    cap = min(policy.max_error_backoff, policy.max_interval)
    # Exponent capped so 2**n cannot overflow a float for a source failing for months.
    return policy.clamp(min(policy.default_interval * 2 ** min(streak - 1, 40), cap))


def adaptive_interval(now: datetime, recent_publish_times: Sequence[datetime], policy: PollPolicy) -> float:
    """Half the mean gap between recent publications (counted up to ``now``), clamped."""
    past = sorted((t for t in recent_publish_times if t <= now), reverse=True)[: policy.publishing_window]
    if not past:
        return policy.clamp(policy.default_interval)
    span = (now - past[-1]).total_seconds()
    mean_gap = span / len(past)
    return policy.clamp(mean_gap / 2)


def initial_check_at(now: datetime, *, policy: PollPolicy, source_id: int) -> datetime:
    """First poll of a new source: somewhere in the next ``default_interval``, by its id."""
    return now + timedelta(seconds=policy.default_interval * _unit_hash(source_id, None))


def should_disable(error_streak: int, policy: PollPolicy) -> bool:
    return policy.disable_after_errors > 0 and error_streak >= policy.disable_after_errors


def _unit_hash(source_id: int, now: datetime | None) -> float:
    """A number in [0, 1) fixed by the source id (and the poll time): jitter without ``random``."""
    stamp = "" if now is None else str(int(now.timestamp()))
    digest = hashlib.blake2b(f"{source_id}:{stamp}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


# --------------------------------------------------------------------------------------------
# HTTP caching headers (RFC 9111 §5.2 Cache-Control, §5.3 Expires; RFC 9110 §10.2.3 Retry-After)


def parse_cache_headers(
    headers: Mapping[str, str], now: datetime
) -> tuple[float | None, datetime | None, float | None]:
    """(max_age seconds, Expires as UTC datetime, Retry-After seconds) from response headers."""
    lowered = {key.lower(): value for key, value in headers.items()}
    max_age = _max_age(lowered.get("cache-control"), lowered.get("age"))
    expires = None if max_age is not None else _http_date(lowered.get("expires"))
    retry_after = parse_retry_after(lowered.get("retry-after"), now)
    return max_age, expires, retry_after


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delay-seconds or an HTTP date); None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(int(value[:9]))
    when = _http_date(value)
    if when is None:
        return None
    return max(0.0, (when - now).total_seconds())


def _max_age(cache_control: str | None, age: str | None) -> float | None:
    if not cache_control:
        return None
    directives = {}
    for part in cache_control.split(","):
        name, _, value = part.strip().partition("=")
        directives[name.strip().lower()] = value.strip().strip('"')
    if "no-store" in directives or "no-cache" in directives:
        return None
    raw = directives.get("max-age")
    if raw is None or not raw.isdigit():
        return None
    seconds = float(int(raw[:9]))
    if age and age.strip().isdigit():
        seconds = max(0.0, seconds - int(age.strip()[:9]))
    return seconds


def _http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None  # "Expires: 0" and friends mean "already expired": no hint
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)

"""When an alert goes out: instantly, in a digest, or after quiet hours — pure decisions, no clock.

Rules (issue #7):
- Times of day ("08:00", quiet hours "22:00"–"07:00") are wall-clock times in the chat's IANA time
  zone. A quiet period whose start is after its end spans midnight; equal start and end means no
  quiet hours. The start is inside the period, the end is not.
- Across DST changes a wall time that does not exist (02:30 on the spring-forward night in Paris)
  maps to the instant an unchanged clock would show it (03:30 summer time); a wall time that occurs
  twice (02:30 on the fall-back night) means its first occurrence. Either way each digest happens
  once per day, never twice and never skipped.
- `hold_until` decides, for one instant alert, when it may be sent: None = now. Precedence: an alert in
  daily/weekly mode waits for its next digest time (the user chose that time, so quiet hours do not
  move it); a throttled alert (noise guard) waits for the next full local hour; then quiet hours hold
  whatever would go out during them until they end.
- Noise guard: a chat that has received `limit` instant alerts in the last hour gets its next ones as
  an hourly digest (`over_noise_limit`); `limit` 0 turns the guard off.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

INSTANT = "instant"
DAILY = "daily"
WEEKLY = "weekly"
MODES = (INSTANT, DAILY, WEEKLY)
DEFAULT_DIGEST_TIME = "08:00"
# How long the noise guard keeps an alert on hourly digests before trying instant delivery again.
NOISE_GUARD_DURATION = timedelta(hours=24)


def parse_hhmm(value: str) -> time:
    """ "08:00" → time(8, 0); raises ValueError on anything else ("8h", "24:00", "")."""
    hours, sep, minutes = value.strip().partition(":")
    if not sep or not hours.isdigit() or not minutes.isdigit() or len(minutes) != 2 or len(hours) > 2:
        raise ValueError(f"expected HH:MM, got {value!r}")
    return time(int(hours), int(minutes))


def zone(name: str | None) -> ZoneInfo:
    """The chat's zone; an unknown or empty name falls back to UTC rather than failing a delivery."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _at(day: date, at: time, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)


def next_local_time(after: datetime, at: time, tz: ZoneInfo, *, weekday: int | None = None) -> datetime:
    """The first instant strictly after `after` whose local wall time is `at` (on `weekday`, 0=Monday)."""
    local_day = after.astimezone(tz).date() - timedelta(days=1)  # a DST gap can map "today" before `after`
    for offset in range(16):  # two weeks and a bit: always enough for a weekly slot
        day = local_day + timedelta(days=offset)
        if weekday is not None and day.weekday() != weekday:
            continue
        candidate = _at(day, at, tz)
        if candidate > after:
            return candidate
    raise AssertionError("unreachable: a matching day exists within 8 days")


def in_quiet_hours(now: datetime, tz: ZoneInfo, start: str | None, end: str | None) -> bool:
    if not start or not end:
        return False
    begin, finish = parse_hhmm(start), parse_hhmm(end)
    if begin == finish:
        return False
    local = now.astimezone(tz).time().replace(tzinfo=None)
    if begin < finish:
        return begin <= local < finish
    return local >= begin or local < finish


def quiet_hours_end(now: datetime, tz: ZoneInfo, start: str | None, end: str | None) -> datetime | None:
    """When the quiet period containing `now` ends, or None if `now` is not in quiet hours."""
    if not in_quiet_hours(now, tz, start, end):
        return None
    assert end is not None
    return next_local_time(now, parse_hhmm(end), tz)


def next_digest_at(
    now: datetime, mode: str, tz: ZoneInfo, digest_time: str | None, weekday: int | None
) -> datetime | None:
    """The next digest of a daily/weekly alert after `now`; None for instant alerts."""
    if mode not in (DAILY, WEEKLY):
        return None
    at = parse_hhmm(digest_time or DEFAULT_DIGEST_TIME)
    return next_local_time(now, at, tz, weekday=(weekday or 0) % 7 if mode == WEEKLY else None)


def next_local_hour(now: datetime, tz: ZoneInfo) -> datetime:
    """The next full hour of local wall time (zones with :30 offsets included)."""
    local = now.astimezone(tz)
    top = local.replace(minute=0, second=0, microsecond=0)
    candidate = (top + timedelta(hours=1)).astimezone(UTC)
    # Adding an hour to an aware local time is wall-clock arithmetic; across a DST change it can land
    # on or before `now`, so step on until it is in the future.
    for _ in range(4):
        if candidate > now:
            return candidate
        candidate += timedelta(hours=1)
    return candidate


@dataclass(frozen=True, slots=True)
class AlertTiming:
    """What `hold_until` needs to know about one alert and its chat."""

    mode: str = INSTANT
    digest_time: str | None = None
    digest_weekday: int | None = None
    throttled_until: datetime | None = None
    timezone: str | None = "Europe/Paris"
    quiet_start: str | None = None
    quiet_end: str | None = None


def is_throttled(now: datetime, throttled_until: datetime | None) -> bool:
    return throttled_until is not None and throttled_until > now


def hold_until(now: datetime, timing: AlertTiming) -> datetime | None:
    """None = send now; otherwise the instant from which the alert goes out in a digest."""
    tz = zone(timing.timezone)
    digest = next_digest_at(now, timing.mode, tz, timing.digest_time, timing.digest_weekday)
    if digest is not None:
        return digest
    release: datetime | None = None
    if is_throttled(now, timing.throttled_until):
        release = next_local_hour(now, tz)
    start = release or now
    quiet_end = quiet_hours_end(start, tz, timing.quiet_start, timing.quiet_end)
    return quiet_end or release


def over_noise_limit(sent_last_hour: int, limit: int) -> bool:
    """True when one more instant alert would exceed `limit` an hour (0 = guard off)."""
    return limit > 0 and sent_last_hour >= limit

"""When alerts go out: quiet hours, digest times, throttling — across time zones and DST changes."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from bot.core.schedule import (
    AlertTiming,
    hold_until,
    in_quiet_hours,
    next_digest_at,
    next_local_hour,
    over_noise_limit,
    parse_hhmm,
    quiet_hours_end,
    zone,
)

PARIS = zone("Europe/Paris")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "start", "end", "expected"),
    [
        (utc(2026, 1, 10, 21, 30), "22:00", "07:00", True),  # 22:30 Paris (UTC+1)
        (utc(2026, 1, 10, 20, 59), "22:00", "07:00", False),  # 21:59 Paris
        (utc(2026, 1, 10, 21, 0), "22:00", "07:00", True),  # start is inside
        (utc(2026, 1, 11, 6, 0), "22:00", "07:00", False),  # 07:00 Paris: end is outside
        (utc(2026, 1, 11, 5, 59), "22:00", "07:00", True),
        (utc(2026, 7, 10, 13, 0), "13:00", "15:00", False),  # 15:00 Paris (summer, UTC+2)
        (utc(2026, 7, 10, 11, 30), "13:00", "15:00", True),  # 13:30 Paris summer
        (utc(2026, 1, 10, 12, 0), "08:00", "08:00", False),  # equal: no quiet hours
        (utc(2026, 1, 10, 23, 0), None, "07:00", False),
    ],
)
def test_quiet_hours_follow_the_chats_wall_clock(now: datetime, start: str, end: str, expected: bool) -> None:
    assert in_quiet_hours(now, PARIS, start, end) is expected


@pytest.mark.parametrize(
    ("now", "expected_end"),
    [
        (utc(2026, 1, 10, 22, 0), utc(2026, 1, 11, 6, 0)),  # 23:00 Paris → 07:00 Paris next day
        (utc(2026, 1, 11, 2, 0), utc(2026, 1, 11, 6, 0)),  # 03:00 Paris → 07:00 same day
        # Spring forward (29 March 2026, 02:00 → 03:00): the night is one hour shorter, 07:00 is UTC+2.
        (utc(2026, 3, 28, 22, 0), utc(2026, 3, 29, 5, 0)),
        # Fall back (25 October 2026, 03:00 → 02:00): 07:00 is UTC+1 again.
        (utc(2026, 10, 24, 21, 0), utc(2026, 10, 25, 6, 0)),
    ],
)
def test_quiet_hours_end_at_the_local_end_time_across_dst(now: datetime, expected_end: datetime) -> None:
    assert quiet_hours_end(now, PARIS, "22:00", "07:00") == expected_end


def test_outside_quiet_hours_there_is_no_end() -> None:
    assert quiet_hours_end(utc(2026, 1, 10, 12, 0), PARIS, "22:00", "07:00") is None


@pytest.mark.parametrize(
    ("now", "mode", "time", "weekday", "expected"),
    [
        (utc(2026, 1, 10, 6, 0), "daily", "08:00", None, utc(2026, 1, 10, 7, 0)),
        (utc(2026, 1, 10, 7, 0), "daily", "08:00", None, utc(2026, 1, 11, 7, 0)),  # strictly after
        (utc(2026, 7, 10, 6, 30), "daily", "08:00", None, utc(2026, 7, 11, 6, 0)),  # summer: 08:00 = 06:00Z
        (utc(2026, 3, 28, 12, 0), "daily", "08:00", None, utc(2026, 3, 29, 6, 0)),  # over spring forward
        (utc(2026, 10, 24, 12, 0), "daily", "08:00", None, utc(2026, 10, 25, 7, 0)),  # over fall back
        # 02:30 does not exist on 29 March in Paris: it means 03:30 summer time, once.
        (utc(2026, 3, 28, 12, 0), "daily", "02:30", None, utc(2026, 3, 29, 1, 30)),
        # 02:30 happens twice on 25 October: the first one (summer time, 00:30Z).
        (utc(2026, 10, 24, 12, 0), "daily", "02:30", None, utc(2026, 10, 25, 0, 30)),
        # Weekly on Monday (0): Saturday 10 January 2026 → Monday 12 January 08:00 Paris.
        (utc(2026, 1, 10, 12, 0), "weekly", "08:00", 0, utc(2026, 1, 12, 7, 0)),
        (utc(2026, 1, 12, 7, 0), "weekly", "08:00", 0, utc(2026, 1, 19, 7, 0)),
        (utc(2026, 1, 10, 12, 0), "weekly", None, None, utc(2026, 1, 12, 7, 0)),  # defaults: Monday 08:00
        (utc(2026, 1, 10, 12, 0), "instant", "08:00", None, None),
    ],
)
def test_next_digest_time(
    now: datetime, mode: str, time: str | None, weekday: int | None, expected: datetime | None
) -> None:
    assert next_digest_at(now, mode, PARIS, time, weekday) == expected


def test_a_daily_digest_happens_once_a_day_across_a_dst_change() -> None:
    now = utc(2026, 3, 25, 12, 0)
    times = []
    for _ in range(10):
        now = next_digest_at(now, "daily", PARIS, "02:30", None)
        times.append(now)
    local_days = [t.astimezone(PARIS).date() for t in times]
    assert len(set(local_days)) == 10 and all(b - a >= timedelta(hours=23) for a, b in itertools.pairwise(times))


@pytest.mark.parametrize(
    ("tz", "now", "expected"),
    [
        ("Europe/Paris", utc(2026, 1, 10, 12, 10), utc(2026, 1, 10, 13, 0)),
        ("Asia/Kolkata", utc(2026, 1, 10, 12, 10), utc(2026, 1, 10, 12, 30)),  # UTC+5:30
        ("Europe/Paris", utc(2026, 3, 29, 0, 30), utc(2026, 3, 29, 1, 0)),  # 01:30 → 03:00 (summer)
    ],
)
def test_next_local_hour(tz: str, now: datetime, expected: datetime) -> None:
    assert next_local_hour(now, zone(tz)) == expected


@pytest.mark.parametrize(
    ("timing", "expected"),
    [
        (AlertTiming(), None),
        (AlertTiming(mode="daily", digest_time="08:00"), utc(2026, 1, 11, 7, 0)),
        # A digest time is kept even inside quiet hours: the user chose it.
        (AlertTiming(mode="daily", digest_time="23:30", quiet_start="22:00", quiet_end="07:00"),
         utc(2026, 1, 10, 22, 30)),
        (AlertTiming(throttled_until=utc(2026, 1, 11, 0, 0)), utc(2026, 1, 10, 13, 0)),
        (AlertTiming(throttled_until=utc(2026, 1, 10, 11, 0)), None),  # expired
        (AlertTiming(quiet_start="12:00", quiet_end="14:00"), utc(2026, 1, 10, 13, 0)),
        # Throttled into quiet hours: wait for their end rather than the hour.
        (AlertTiming(throttled_until=utc(2026, 1, 11, 0, 0), quiet_start="14:00", quiet_end="18:00"),
         utc(2026, 1, 10, 17, 0)),
    ],
)
def test_hold_until(timing: AlertTiming, expected: datetime | None) -> None:
    assert hold_until(utc(2026, 1, 10, 12, 10), timing) == expected  # 13:10 Paris


@pytest.mark.parametrize(("sent", "limit", "expected"), [(29, 30, False), (30, 30, True), (500, 0, False)])
def test_noise_limit(sent: int, limit: int, expected: bool) -> None:
    assert over_noise_limit(sent, limit) is expected


@pytest.mark.parametrize("bad", ["8h", "24:00", "", "12:5", "ab:cd"])
def test_bad_times_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_hhmm(bad)


def test_an_unknown_zone_falls_back_to_utc() -> None:
    assert zone("Mars/Olympus") == zone("UTC")

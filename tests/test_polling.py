"""Scheduling decisions (bot.core.polling): pure, clock and seed passed in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.core.polling import (
    PollPolicy,
    adaptive_interval,
    error_backoff,
    initial_check_at,
    next_check_at,
    parse_cache_headers,
    parse_retry_after,
    poll_interval,
    should_disable,
)

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
POLICY = PollPolicy(default_interval=300, min_interval=60, max_interval=21_600, jitter_fraction=0.1)
NO_JITTER = PollPolicy(default_interval=300, min_interval=60, max_interval=21_600, jitter_fraction=0.0)


def _interval(policy=NO_JITTER, **kwargs) -> float:
    kwargs.setdefault("outcome", "ok")
    kwargs.setdefault("source_id", 1)
    return poll_interval(NOW, policy=policy, **kwargs)


@pytest.mark.parametrize(
    ("streak", "expected"),
    [(1, 300), (2, 600), (3, 1200), (5, 4800), (7, 19_200), (8, 21_600), (500, 21_600)],
)
def test_error_backoff_doubles_and_is_capped_by_max_interval(streak, expected):
    assert error_backoff(streak, NO_JITTER) == expected
    assert _interval(outcome="error", error_streak=streak) == expected


def test_error_backoff_respects_a_lower_max_error_backoff():
    policy = PollPolicy(max_error_backoff=3600, jitter_fraction=0)
    assert error_backoff(10, policy) == 3600


def test_max_error_backoff_above_max_interval_is_still_capped():
    policy = PollPolicy(max_interval=1800, max_error_backoff=86_400, jitter_fraction=0)
    assert error_backoff(30, policy) == 1800


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [(120, 120), (10, 60), (86_400, 86_400)],  # only Retry-After may exceed max_interval
)
def test_retry_after_is_obeyed_never_shortened_and_may_exceed_the_maximum(retry_after, expected):
    assert _interval(outcome="error", error_streak=3, retry_after_seconds=retry_after) == expected


@pytest.mark.parametrize(
    ("gaps_minutes", "expected"),
    [
        ([], 300),  # nothing known: the starting interval
        ([2, 4, 6, 8, 10], 60),  # an item every 2 min: half-gap 60 s, at the floor
        ([20, 40, 60, 80], 600),  # an item every 20 min: poll every 10 min
        ([60 * 24, 60 * 48], 21_600),  # daily: capped at the maximum
        ([60 * 24 * 30], 21_600),  # one item a month ago: maximum
    ],
)
def test_interval_adapts_to_how_often_the_source_publishes(gaps_minutes, expected):
    times = [NOW - timedelta(minutes=m) for m in gaps_minutes]
    assert adaptive_interval(NOW, times, NO_JITTER) == expected
    assert _interval(recent_publish_times=times) == expected


def test_future_publication_dates_are_ignored():
    times = [NOW + timedelta(days=1), NOW - timedelta(minutes=20), NOW - timedelta(minutes=40)]
    assert adaptive_interval(NOW, times, NO_JITTER) == 600


@pytest.mark.parametrize(
    ("hints", "expected"),
    [
        ({"ttl_seconds": 3600}, 3600),
        ({"cache_max_age": 1800}, 1800),
        ({"expires": NOW + timedelta(minutes=45)}, 2700),
        ({"ttl_seconds": 10}, 300),  # a hint never makes polling more frequent
        ({"expires": NOW - timedelta(hours=1)}, 300),
        ({"ttl_seconds": 86_400}, 21_600),  # the maximum caps server hints
        ({"ttl_seconds": 600, "cache_max_age": 1200}, 1200),
    ],
)
def test_server_hints_lengthen_the_interval_within_bounds(hints, expected):
    assert _interval(**hints) == expected


@pytest.mark.parametrize("outcome", ["ok", "not_modified", "error"])
@pytest.mark.parametrize("source_id", range(40))
def test_every_interval_stays_within_bounds_with_jitter(outcome, source_id):
    for streak in (0, 1, 4, 20):
        seconds = poll_interval(NOW, policy=POLICY, outcome=outcome, error_streak=streak, source_id=source_id,
                                ttl_seconds=10**7)
        assert POLICY.min_interval <= seconds <= POLICY.max_interval


def test_jitter_spreads_sources_and_is_deterministic():
    times = {next_check_at(NOW, policy=POLICY, outcome="ok", source_id=i) for i in range(200)}
    assert len(times) > 150  # 200 sources polled at the same moment do not come back together
    first = next_check_at(NOW, policy=POLICY, outcome="ok", source_id=7)
    assert first == next_check_at(NOW, policy=POLICY, outcome="ok", source_id=7)
    assert NOW + timedelta(seconds=270) <= first <= NOW + timedelta(seconds=300)


def test_retry_after_jitter_never_comes_back_early():
    for source_id in range(50):
        seconds = poll_interval(NOW, policy=POLICY, outcome="error", retry_after_seconds=600, source_id=source_id)
        assert 600 <= seconds <= 660


def test_initial_check_spreads_new_sources_over_one_interval():
    firsts = [initial_check_at(NOW, policy=POLICY, source_id=i) for i in range(500)]
    assert all(NOW <= t < NOW + timedelta(seconds=300) for t in firsts)
    buckets = {int((t - NOW).total_seconds() // 30) for t in firsts}
    assert buckets == set(range(10))


@pytest.mark.parametrize(("streak", "expected"), [(0, False), (19, False), (20, True), (99, True)])
def test_source_is_disabled_after_the_configured_error_streak(streak, expected):
    assert should_disable(streak, POLICY) is expected


def test_policy_rejects_inverted_bounds():
    with pytest.raises(ValueError):
        PollPolicy(min_interval=600, max_interval=60)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, (None, None, None)),
        ({"Cache-Control": "public, max-age=600"}, (600.0, None, None)),
        ({"cache-control": "max-age=600", "Age": "100"}, (500.0, None, None)),
        ({"Cache-Control": "no-cache, max-age=600"}, (None, None, None)),
        ({"Cache-Control": "max-age=abc"}, (None, None, None)),
        ({"Expires": "Sat, 01 Jun 2024 13:00:00 GMT"}, (None, datetime(2024, 6, 1, 13, tzinfo=UTC), None)),
        ({"Expires": "0"}, (None, None, None)),
        # RFC 9111 §5.3: max-age wins over Expires
        ({"Cache-Control": "max-age=60", "Expires": "Sat, 01 Jun 2024 13:00:00 GMT"}, (60.0, None, None)),
        ({"Retry-After": "120"}, (None, None, 120.0)),
        ({"Retry-After": "Sat, 01 Jun 2024 12:30:00 GMT"}, (None, None, 1800.0)),
        ({"Retry-After": "Sat, 01 Jun 2024 11:00:00 GMT"}, (None, None, 0.0)),
        ({"Retry-After": "soon"}, (None, None, None)),
    ],
)
def test_parse_cache_headers(headers, expected):
    assert parse_cache_headers(headers, NOW) == expected


def test_parse_retry_after_caps_absurd_numbers():
    assert parse_retry_after("9" * 40, NOW) == 999_999_999.0

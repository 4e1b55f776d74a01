"""Token buckets, per-chat pacing and the combined limiter, driven with an explicit clock."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.ratelimit import ChatPacer, PacingSettings, RateLimiter, TokenBucket


def max_in_window(times: list[float], window: float) -> int:
    """Most events inside any half-open window (t - window, t] (events sorted)."""
    best, left = 0, 0
    for right, t in enumerate(times):
        while times[left] <= t - window + 1e-7:
            left += 1
        best = max(best, right - left + 1)
    return best


@pytest.mark.parametrize(
    ("rate", "burst", "calls"),
    [
        # (now, expected wait) in order; 0.0 means the token was taken.
        (1.0, 1, [(0.0, 0.0), (0.0, 1.0), (0.5, 0.5), (1.0, 0.0), (1.0, 1.0)]),
        (1.0, 3, [(0.0, 0.0), (0.0, 0.0), (0.0, 0.0), (0.0, 1.0), (0.25, 0.75), (1.0, 0.0), (1.0, 1.0)]),
        (2.0, 2, [(10.0, 0.0), (10.0, 0.0), (10.0, 0.5), (10.5, 0.0), (20.0, 0.0), (20.0, 0.0), (20.0, 0.5)]),
        (20 / 60, 1, [(0.0, 0.0), (1.0, 2.0), (3.0, 0.0), (3.0, 3.0)]),
        (30.0, 1, [(0.0, 0.0), (0.0, 1 / 30), (1 / 30, 0.0)]),
        # time going backwards counts as no time passing
        (1.0, 1, [(5.0, 0.0), (4.0, 1.0), (5.5, 0.5)]),
    ],
)
def test_token_bucket_answers(rate, burst, calls):
    bucket = TokenBucket(rate, burst)
    for now, expected in calls:
        assert bucket.try_take(now) == pytest.approx(expected), now


def test_refusing_does_not_consume():
    bucket = TokenBucket(1.0, 1)
    assert bucket.try_take(0.0) == 0.0
    for _ in range(50):
        assert bucket.try_take(0.5) == pytest.approx(0.5)
    assert bucket.try_take(1.0) == 0.0


def test_waiting_exactly_the_returned_delay_is_enough():
    bucket = TokenBucket(30.0, 1)
    now = 0.0
    for _ in range(1000):
        wait = bucket.try_take(now)
        if wait:
            now += wait
            assert bucket.try_take(now) == 0.0


@pytest.mark.parametrize("retry_after", [1, 5, 37])
def test_retry_after_is_honoured_exactly(retry_after):
    bucket = TokenBucket(1.0, 3)
    bucket.try_take(100.0)
    bucket.penalize(100.0 + retry_after)
    assert bucket.try_take(100.0) == pytest.approx(retry_after)
    assert bucket.try_take(100.0 + retry_after - 0.001) == pytest.approx(0.001)
    assert bucket.try_take(100.0 + retry_after) == 0.0
    # one send at the deadline, then pacing resumes from an empty bucket (no burst release)
    assert bucket.try_take(100.0 + retry_after) == pytest.approx(1.0)


def test_an_earlier_penalty_does_not_shorten_a_later_one():
    bucket = TokenBucket(1.0, 1)
    bucket.penalize(10.0)
    bucket.penalize(5.0)
    assert bucket.try_take(6.0) == pytest.approx(4.0)


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (1, 0.5)])
def test_nonsense_buckets_are_refused(rate, burst):
    with pytest.raises(ValueError):
        TokenBucket(rate, burst)


@settings(max_examples=200, deadline=None)
@given(
    rate=st.sampled_from([1.0, 30.0, 20 / 60, 2.5]),
    burst=st.integers(min_value=1, max_value=5),
    gaps=st.lists(st.floats(min_value=0.0, max_value=2.0), min_size=1, max_size=200),
)
def test_bucket_never_exceeds_its_rate_in_any_window(rate, burst, gaps):
    bucket, now, sent = TokenBucket(rate, burst), 0.0, []
    for gap in gaps:
        now += gap / rate
        if bucket.try_take(now) == 0.0:
            sent.append(now)
    for periods in (1, 2, 10):
        window = periods / rate
        assert max_in_window(sent, window) <= burst - 1 + math.ceil(rate * window - 1e-9)


def drain(limiter: RateLimiter, queue: list[tuple[int, str]], *, start: float = 0.0):
    """Send every (chat, kind) in order as early as the limiter allows; returns send times per chat."""
    now, times, bounded = start, {}, 0
    for chat_id, kind in queue:
        while (wait := limiter.reserve(chat_id, kind, now)) > 0.0:
            now += wait
            bounded += 1
            assert bounded < 10 * len(queue) + 100
        times.setdefault(chat_id, []).append(now)
    return now, times


def test_two_thousand_chats_never_exceed_thirty_per_second():
    limiter = RateLimiter()
    queue = [(chat, "private") for _ in range(5) for chat in range(2000)]
    end, times = drain(limiter, queue)
    everything = sorted(t for chat_times in times.values() for t in chat_times)
    assert len(everything) == 10_000
    assert max_in_window(everything, 1.0) <= 30
    assert max_in_window(everything, 10.0) <= 300
    assert end == pytest.approx(9999 / 30)  # the global limit is the only thing slowing us down


def test_one_private_chat_gets_a_burst_then_one_per_second():
    limiter = RateLimiter(pacer=ChatPacer(PacingSettings(private_burst=3)))
    _, times = drain(limiter, [(42, "private")] * 10)
    sent = times[42]
    assert sent[:3] == pytest.approx([0.0, 1 / 30, 2 / 30])
    assert max_in_window(sent, 1.0) <= 3
    assert max_in_window(sent, 10.0) <= 3 - 1 + 10
    assert [b - a for a, b in zip(sent[3:], sent[4:], strict=False)] == pytest.approx([1.0] * 6)


@pytest.mark.parametrize("kind", ["group", "supergroup", "channel"])
def test_groups_and_channels_get_twenty_per_minute(kind):
    _, times = drain(RateLimiter(), [(-100, kind)] * 45)
    sent = times[-100]
    assert max_in_window(sent, 60.0) <= 20
    assert sent[-1] == pytest.approx(44 * 3.0)


def test_a_slow_chat_does_not_reserve_global_capacity():
    limiter = RateLimiter()
    assert limiter.reserve(1, "group", 0.0) == 0.0
    assert limiter.reserve(2, "private", 1.0) == 0.0
    # chat 1 must wait for its group slot: refused, and the global token stays for chat 3
    assert limiter.reserve(1, "group", 1.5) == pytest.approx(1.5)
    assert limiter.reserve(3, "private", 1.5) == 0.0


def test_when_global_capacity_is_gone_the_chat_is_not_charged():
    limiter = RateLimiter(pacer=ChatPacer(PacingSettings(private_burst=1)))
    assert limiter.reserve(1, "private", 0.0) == 0.0
    assert limiter.reserve(2, "private", 0.0) == pytest.approx(1 / 30)
    assert limiter.reserve(2, "private", 1 / 30) == 0.0  # chat 2's own bucket was untouched


def test_a_held_chat_waits_exactly_retry_after_and_others_continue():
    limiter = RateLimiter()
    assert limiter.reserve(7, "private", 0.0) == 0.0
    limiter.hold_chat(7, 0.5 + 12)
    assert limiter.reserve(7, "private", 0.5) == pytest.approx(12)
    assert limiter.reserve(8, "private", 0.5) == 0.0
    assert limiter.reserve(7, "private", 12.5) == 0.0


def test_a_hold_on_an_unknown_chat_applies_when_it_first_sends():
    pacer = ChatPacer()
    pacer.hold(99, 20.0)
    assert pacer.delay_for(99, "private", 5.0) == pytest.approx(15.0)
    pacer.record_sent(99, "private", 20.0)
    assert pacer.delay_for(99, "private", 20.0) == pytest.approx(1.0)


def test_hold_all_stops_every_chat():
    limiter = RateLimiter()
    limiter.hold_all(30.0)
    assert limiter.reserve(1, "private", 10.0) == pytest.approx(20.0)
    assert limiter.reserve(2, "channel", 29.0) == pytest.approx(1.0)


def test_idle_chats_are_forgotten_and_decisions_do_not_change():
    small, big = ChatPacer(sweep_min=16), ChatPacer(sweep_min=10**9)
    now = 0.0
    for step in range(5000):
        chat, kind = step % 700, ("private" if step % 3 else "group")
        now += 0.01
        assert small.delay_for(chat, kind, now) == pytest.approx(big.delay_for(chat, kind, now))
        if small.delay_for(chat, kind, now) == 0.0:
            small.record_sent(chat, kind, now)
            big.record_sent(chat, kind, now)
    assert len(big) == 700
    small.forget_idle(now + 10.0)
    assert len(small) == 0
    for chat in range(2000, 2000 + 10_000):
        now += 1.0
        small.record_sent(chat, "private", now)
    assert len(small) <= 2 * 16 + 16


@pytest.mark.parametrize("kind", ["bot", "", "Private"])
def test_unknown_chat_kinds_are_refused(kind):
    with pytest.raises(ValueError):
        RateLimiter().reserve(1, kind, 0.0)

"""Metrics: an isolated registry per app, the counters services report, the exposition format."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.core.backoff import RetryDecision, RetryKind
from bot.metrics import POLL_OUTCOMES, SEND_OUTCOMES, MeteredSender, Metrics, watch_event_loop
from bot.services.delivery import OutgoingMessage, SendFailed


def test_two_metrics_objects_never_share_a_counter() -> None:
    a, b = Metrics(), Metrics()
    a.observe_poll("ok", elapsed_s=0.2, new_articles=3, alerts=5)
    assert a.value("veille_polls_total", {"outcome": "ok"}) == 1
    assert b.value("veille_polls_total", {"outcome": "ok"}) == 0


def test_poll_outcomes_articles_and_matches_are_counted() -> None:
    m = Metrics()
    m.observe_poll("ok", elapsed_s=0.2, new_articles=3, alerts=5)
    m.observe_poll("error", elapsed_s=1.5, new_articles=0, alerts=0)
    m.observe_poll("not_modified", elapsed_s=0.01, new_articles=0, alerts=0)
    assert m.value("veille_polls_total", {"outcome": "error"}) == 1
    assert m.value("veille_articles_total") == 3
    assert m.value("veille_matches_total") == 5
    assert m.value("veille_poll_seconds_count") == 3
    assert m.value("veille_poll_seconds_bucket", {"le": "0.25"}) == 2


def test_every_issue_metric_is_exposed_in_prometheus_text_format() -> None:
    m = Metrics(role="poller")
    m.set_outbox(12, 30.5)
    m.observe_loop_lag(0.003)
    m.observe_limiter_wait(0.04)
    body, content_type = m.render()
    assert content_type.startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    for name in ("veille_polls", "veille_fetch_seconds", "veille_poll_seconds", "veille_articles",
                 "veille_matches", "veille_outbox_depth", "veille_outbox_oldest_age_seconds", "veille_messages",
                 "veille_telegram_429", "veille_ratelimit_wait_seconds", "veille_event_loop_lag_seconds",
                 "veille_process_info"):
        assert name in families, name
    outcomes = {s.labels["outcome"] for s in families["veille_polls"].samples if "outcome" in s.labels}
    assert outcomes == set(POLL_OUTCOMES), "series exist at 0 before the first event"
    sent = {s.labels["outcome"] for s in families["veille_messages"].samples if "outcome" in s.labels}
    assert sent == set(SEND_OUTCOMES)
    assert m.value("veille_outbox_depth") == 12
    assert m.value("veille_process_info", {"role": "poller"}) == 1


class _ScriptedSender:
    def __init__(self, outcomes: list[RetryKind | None]) -> None:
        self.outcomes = outcomes

    async def send(self, message: OutgoingMessage) -> int:
        kind = self.outcomes.pop(0)
        if kind is None:
            return 99
        raise SendFailed(RetryDecision(kind=kind, reason="scripted",
                                       retry_after=3.0 if kind == RetryKind.RETRY_AFTER else None))


async def test_metered_sender_counts_outcomes_and_429s_and_keeps_the_error() -> None:
    m = Metrics()
    sender = MeteredSender(
        _ScriptedSender([None, RetryKind.RETRY_AFTER, RetryKind.BLOCKED, None]), m
    )
    message = OutgoingMessage(chat_id=1, text="x")
    assert await sender.send(message) == 99
    with pytest.raises(SendFailed):
        await sender.send(message)
    with pytest.raises(SendFailed):
        await sender.send(message)
    await sender.send(message)
    assert m.value("veille_messages_total", {"outcome": "sent"}) == 2
    assert m.value("veille_messages_total", {"outcome": "retry_after"}) == 1
    assert m.value("veille_messages_total", {"outcome": "blocked"}) == 1
    assert m.value("veille_telegram_429_total") == 1


async def test_event_loop_lag_is_how_late_the_sleep_woke_up() -> None:
    m = Metrics()
    stop = asyncio.Event()
    ticks = iter([0.0, 0.3, 1.0, 1.25])  # first sleep woke 0.05 s late, the second on time

    def fake_monotonic() -> float:
        value = next(ticks, None)
        if value is None:
            stop.set()
            return 1.25
        return value

    await asyncio.wait_for(watch_event_loop(m, interval=0.01, monotonic=fake_monotonic, stop=stop), 5)
    assert m.value("veille_event_loop_lag_histogram_seconds_count") >= 2
    assert m.value("veille_event_loop_lag_histogram_seconds_sum") == pytest.approx(0.29 + 0.24, abs=1e-9)

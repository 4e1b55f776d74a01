"""Prometheus metrics (issue #9): one `Metrics` object per process, on a registry of its own.

The composition root builds it and hands it to whatever reports (poll outcomes, sends, limiter
waits); `/metrics` renders its registry. Nothing here is module-level state, so two apps in one test
process (or two tests) never share a counter.

Names follow Prometheus conventions (`_total` counters, `_seconds` units):

- `veille_polls_total{outcome}`: ok | not_modified | unchanged | error
- `veille_fetch_seconds`: HTTP fetch latency; `veille_poll_seconds`: one whole poll (histograms)
- `veille_articles_total`, `veille_matches_total`: new articles stored, alerts queued
- `veille_outbox_depth`, `veille_outbox_oldest_age_seconds`: pending outbox rows and the age of the
  oldest (refreshed by a periodic job from the database, so every process reports the shared queue)
- `veille_messages_total{outcome}`: sent | retry_after | transient | blocked | migrate | permanent
- `veille_telegram_429_total`: 429 answers (also counted in messages_total as retry_after)
- `veille_ratelimit_wait_seconds`: how long a send waited for the rate limiter (histogram)
- `veille_event_loop_lag_seconds`: how late a 0.25 s sleep woke up, last value and histogram
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

log = logging.getLogger(__name__)

POLL_OUTCOMES = ("ok", "not_modified", "unchanged", "error")
SEND_OUTCOMES = ("sent", "retry_after", "transient", "blocked", "migrate", "permanent")
_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_WAIT_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None, *, role: str = "all") -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self.polls = Counter("veille_polls", "Source polls by outcome.", ["outcome"], registry=r)
        self.fetch_seconds = Histogram(
            "veille_fetch_seconds", "HTTP fetch latency (feeds and article pages).", buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.poll_seconds = Histogram(
            "veille_poll_seconds", "Time to poll one source (fetch, parse, store, match).",
            buckets=_LATENCY_BUCKETS, registry=r,
        )
        self.articles = Counter("veille_articles", "New articles stored.", registry=r)
        self.matches = Counter("veille_matches", "Alerts queued (outbox rows written by matching).", registry=r)
        self.outbox_depth = Gauge("veille_outbox_depth", "Outbox rows waiting to be sent.", registry=r)
        self.outbox_age = Gauge(
            "veille_outbox_oldest_age_seconds", "Age of the oldest outbox row still waiting.", registry=r
        )
        self.messages = Counter("veille_messages", "Telegram sends by outcome.", ["outcome"], registry=r)
        self.too_many_requests = Counter("veille_telegram_429", "429 answers from the Bot API.", registry=r)
        self.ratelimit_wait = Histogram(
            "veille_ratelimit_wait_seconds", "Time a send waited for the rate limiter.", buckets=_WAIT_BUCKETS,
            registry=r,
        )
        self.loop_lag = Gauge("veille_event_loop_lag_seconds", "Last measured event-loop lag.", registry=r)
        self.loop_lag_histogram = Histogram(
            "veille_event_loop_lag_histogram_seconds", "Event-loop lag samples.", buckets=_LAG_BUCKETS,
            registry=r,
        )
        self.info = Gauge("veille_process_info", "This process's role (value 1).", ["role"], registry=r)
        self.info.labels(role=role).set(1)
        # Labelled series appear at 0 from the start, so rate() works before the first event.
        for outcome in POLL_OUTCOMES:
            self.polls.labels(outcome=outcome)
        for outcome in SEND_OUTCOMES:
            self.messages.labels(outcome=outcome)

    # --- reporting -------------------------------------------------------------------------------

    def observe_poll(self, outcome: str, *, elapsed_s: float, new_articles: int, alerts: int) -> None:
        self.polls.labels(outcome=outcome).inc()
        self.poll_seconds.observe(max(0.0, elapsed_s))
        if new_articles:
            self.articles.inc(new_articles)
        if alerts:
            self.matches.inc(alerts)

    def observe_send(self, outcome: str) -> None:
        self.messages.labels(outcome=outcome).inc()
        if outcome == "retry_after":
            self.too_many_requests.inc()

    def observe_limiter_wait(self, seconds: float) -> None:
        self.ratelimit_wait.observe(max(0.0, seconds))

    def set_outbox(self, depth: int, oldest_age_s: float) -> None:
        self.outbox_depth.set(depth)
        self.outbox_age.set(max(0.0, oldest_age_s))

    def observe_loop_lag(self, seconds: float) -> None:
        self.loop_lag.set(seconds)
        self.loop_lag_histogram.observe(max(0.0, seconds))

    # --- exposition ------------------------------------------------------------------------------

    def render(self) -> tuple[bytes, str]:
        """The text exposition format and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def value(self, name: str, labels: dict[str, str] | None = None) -> float:
        """A sample's current value (0.0 when absent); for tests and the benchmark."""
        found = self.registry.get_sample_value(name, labels or {})
        return float(found) if found is not None else 0.0


async def watch_event_loop(
    metrics: Metrics,
    *,
    interval: float = 0.25,
    monotonic: Callable[[], float] = time.monotonic,
    stop: asyncio.Event | None = None,
) -> None:
    """Sleeps `interval` over and over and records how late each wake-up was (until `stop` is set)."""
    stop = stop or asyncio.Event()
    while not stop.is_set():
        started = monotonic()
        try:
            await asyncio.wait_for(stop.wait(), interval)
            return
        except TimeoutError:
            pass
        metrics.observe_loop_lag(max(0.0, monotonic() - started - interval))


class MeteredSender:
    """Wraps a `Sender` (bot.services.delivery): counts each send by outcome, 429s apart."""

    def __init__(self, inner: Any, metrics: Metrics) -> None:
        self.inner = inner
        self.metrics = metrics

    async def send(self, message: Any) -> int:
        from bot.services.delivery import SendFailed

        try:
            message_id = await self.inner.send(message)
        except SendFailed as exc:
            self.metrics.observe_send(str(exc.decision.kind))
            raise
        self.metrics.observe_send("sent")
        return message_id

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

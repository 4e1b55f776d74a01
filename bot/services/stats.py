"""Statistics and source health for the admins (issue #8): `/stats`, `/health`, `veille stats`,
`veille sources health`.

Rules:
- Users: "active" = seen in the last 30 days, not banned, and their private chat (if any) not blocked;
  "blocked" = their private chat is inactive because the bot was blocked (not because of a ban).
- Sources: "disabled" = not enabled; "failing" = enabled with an error streak; "ok" = the rest.
- "Today" and the per-day series are UTC calendar days (the database stores UTC).
- The chart is drawn with matplotlib's Agg backend (no display needed) in a worker thread, because
  drawing takes tens of milliseconds of CPU the event loop must not lose.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db import admin as db
from bot.db.admin import UserCounts
from bot.db.models import Source

CHART_DAYS = 30


@dataclass(frozen=True, slots=True)
class SourceHealth:
    id: int
    name: str
    url: str
    state: str  # ok | failing | disabled
    last_success_at: datetime | None
    error_streak: int
    last_error: str | None
    interval_seconds: float | None
    not_modified_ratio: float | None  # share of polls answered 304 Not Modified
    polls: int
    next_check_at: datetime | None
    disabled_reason: str | None


def source_health(source: Source) -> SourceHealth:
    if not source.enabled:
        state = "disabled"
    elif source.error_streak:
        state = "failing"
    else:
        state = "ok"
    error = None
    if source.last_error_message or source.last_error_kind:
        status = f" {source.last_error_status}" if source.last_error_status else ""
        error = f"{source.last_error_kind or 'error'}{status}: {source.last_error_message or ''}".strip(": ")
    return SourceHealth(
        id=source.id, name=source.name, url=source.url, state=state, last_success_at=source.last_success_at,
        error_streak=source.error_streak, last_error=error, interval_seconds=source.interval_seconds,
        not_modified_ratio=(source.not_modified_polls / source.polls) if source.polls else None,
        polls=source.polls, next_check_at=source.next_check_at if source.enabled else None,
        disabled_reason=source.disabled_reason,
    )


def health_order(health: SourceHealth) -> tuple[int, int, int]:
    """Failing first (longest streak first), then disabled, then ok."""
    rank = {"failing": 0, "disabled": 1, "ok": 2}[health.state]
    return rank, -health.error_streak, health.id


@dataclass(frozen=True, slots=True)
class StatsSnapshot:
    at: datetime
    users: UserCounts
    chats: dict[str, tuple[int, int]]  # type → (active, inactive)
    alerts: int
    alerts_paused: int
    sources: dict[str, int]  # ok / failing / disabled
    articles_today: int
    alerts_today: int
    alerts_per_day: list[tuple[date, int]]  # the last CHART_DAYS days, oldest first, zeros included
    new_users_per_day: list[tuple[date, int]]
    top_terms: list[tuple[str, int]]


def _series(values: dict[date, int], last_day: date, days: int) -> list[tuple[date, int]]:
    return [(d, values.get(d, 0)) for d in (last_day - timedelta(days=n) for n in range(days - 1, -1, -1))]


class StatsService:
    def __init__(self, session_factory: async_sessionmaker[AsyncSession], *, clock: Callable[[], datetime]) -> None:
        self.session_factory = session_factory
        self.clock = clock

    async def snapshot(self) -> StatsSnapshot:
        now = self.clock().astimezone(UTC)
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        since = midnight - timedelta(days=CHART_DAYS - 1)
        async with self.session_factory() as session:
            users = await db.user_counts(session, active_since=now - timedelta(days=30))
            chats = await db.chat_counts(session)
            alerts, paused = await db.alert_counts(session)
            sources = {"ok": 0, "failing": 0, "disabled": 0}
            for source in await db.all_sources(session):
                sources[source_health(source).state] += 1
            articles_today = await db.articles_since(session, midnight)
            alerts_today = await db.alerts_sent_since(session, midnight)
            per_day = await db.alerts_sent_per_day(session, since)
            new_users = await db.new_users_per_day(session, since)
            top = await db.top_alert_queries(session, 10)
        return StatsSnapshot(
            at=now, users=users, chats=chats, alerts=alerts, alerts_paused=paused, sources=sources,
            articles_today=articles_today, alerts_today=alerts_today,
            alerts_per_day=_series(per_day, midnight.date(), CHART_DAYS),
            new_users_per_day=_series(new_users, midnight.date(), CHART_DAYS),
            top_terms=top,
        )

    async def sources_health(self) -> list[SourceHealth]:
        async with self.session_factory() as session:
            sources = await db.all_sources(session)
        return sorted((source_health(s) for s in sources), key=health_order)

    async def chart_png(self, snapshot: StatsSnapshot) -> bytes:
        """The PNG chart, drawn off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(None, render_chart, snapshot)


def render_chart(snapshot: StatsSnapshot) -> bytes:
    """Three panels: alerts sent per day, new users per day (30 days), the 10 most followed alerts."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure  # a Figure, not pyplot: no global state, safe in threads

    figure = Figure(figsize=(9, 10), dpi=100, layout="constrained")
    top, middle, bottom = figure.subplots(3, 1)
    days = [d.strftime("%d/%m") for d, _ in snapshot.alerts_per_day]
    top.bar(days, [n for _, n in snapshot.alerts_per_day], color="#2b6cb0")
    top.set_title(f"Alerts sent per day (UTC, last {CHART_DAYS} days)")
    middle.bar(days, [n for _, n in snapshot.new_users_per_day], color="#2f855a")
    middle.set_title("New users per day")
    for axis in (top, middle):
        axis.tick_params(axis="x", labelrotation=90, labelsize=7)
        axis.grid(axis="y", alpha=0.3)
    terms = list(reversed(snapshot.top_terms))
    bottom.barh([t[:40] for t, _ in terms] or ["—"], [n for _, n in terms] or [0], color="#b7791f")
    bottom.set_title("Top 10 alerts (chats following)")
    bottom.tick_params(axis="y", labelsize=8)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()

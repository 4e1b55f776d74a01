"""Queries for operations (issue #9): readiness and the outbox gauges. Never commits."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Delivery

WAITING = ("pending", "sending")


async def ping(session: AsyncSession) -> None:
    """Raises if the database does not answer."""
    await session.execute(text("SELECT 1"))


async def outbox_backlog(session: AsyncSession, *, now: datetime) -> tuple[int, float]:
    """Rows waiting to be sent (pending or being sent) and the age in seconds of the oldest one."""
    result = await session.execute(
        select(func.count(), func.min(Delivery.created_at)).where(Delivery.status.in_(WAITING))
    )
    count, oldest = result.one()
    if not count or oldest is None:
        return 0, 0.0
    return int(count), max(0.0, (now - oldest).total_seconds())

"""Queries for operations (issue #9): readiness, the outbox gauges, scheduled job claims (the one that commits)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Delivery, JobRun

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


async def claim_job_run(session: AsyncSession, name: str, run_key: str, *, owner: str, now: datetime) -> bool:
    """Claims one run of a scheduled job; False if another process claimed it first.

    The primary key (name, run_key) decides: the loser's INSERT fails. Runs in its own transaction
    (the caller's session must not hold other work: on failure it is rolled back).
    """
    session.add(JobRun(name=name, run_key=run_key, claimed_by=owner[:128], claimed_at=now))
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        return False
    return True

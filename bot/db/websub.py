"""Queries behind WebSub subscriptions; the state lives in `sources` (hub_url, websub_secret,
websub_expires_at).

- ``hub_url`` set: the feed advertises a hub, so Veille keeps a subscription to it.
- ``websub_secret`` set: a subscription was requested with that secret (pushes are checked with it).
- ``websub_expires_at``: when the verified lease ends, or, after a failed or denied request, when to
  try again (a row is picked once ``websub_expires_at - margin <= now``). NULL: never verified.

Like `repo`, functions take a session and never commit; every statement works on SQLite and PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Source


@dataclass(frozen=True, slots=True)
class WebSubState:
    source_id: int
    url: str  # the topic Veille subscribes to
    enabled: bool
    hub_url: str | None
    secret: str | None
    expires_at: datetime | None


def _state(source: Source) -> WebSubState:
    return WebSubState(source.id, source.url, source.enabled, source.hub_url, source.websub_secret,
                       source.websub_expires_at)


async def websub_state(session: AsyncSession, source_id: int) -> WebSubState | None:
    source = await session.get(Source, source_id)
    return _state(source) if source is not None else None


async def subscriptions_to_renew(
    session: AsyncSession, *, now: datetime, margin: timedelta, limit: int
) -> list[WebSubState]:
    """Enabled sources with a hub whose subscription was never verified or ends within `margin`."""
    result = await session.execute(
        select(Source)
        .where(
            Source.enabled.is_(True),
            Source.hub_url.is_not(None),
            or_(Source.websub_expires_at.is_(None), Source.websub_expires_at <= now + margin),
        )
        .order_by(Source.id)
        .limit(limit)
    )
    return [_state(s) for s in result.scalars().all()]


async def subscriptions_to_drop(session: AsyncSession, *, limit: int) -> list[WebSubState]:
    """Disabled sources still holding a subscription (or one requested)."""
    result = await session.execute(
        select(Source)
        .where(Source.enabled.is_(False), Source.hub_url.is_not(None), Source.websub_secret.is_not(None))
        .order_by(Source.id)
        .limit(limit)
    )
    return [_state(s) for s in result.scalars().all()]


def record_hub(source: Source, hub_url: str | None) -> bool:
    """Records on a loaded source the hub its feed advertises (the poller's hook, inside its own
    transaction); a different hub (or none) forgets the old subscription. True when it changed."""
    if source.hub_url == hub_url:
        return False
    source.hub_url = hub_url
    source.websub_secret = None
    source.websub_expires_at = None
    return True


async def set_hub(session: AsyncSession, source_id: int, hub_url: str | None) -> bool:
    """`record_hub` by id; False for an unknown source."""
    source = await session.get(Source, source_id)
    return source is not None and record_hub(source, hub_url)


async def request_subscription(session: AsyncSession, source_id: int, *, secret: str) -> None:
    await session.execute(update(Source).where(Source.id == source_id).values(websub_secret=secret))


async def confirm_subscription(session: AsyncSession, source_id: int, *, expires_at: datetime) -> None:
    await session.execute(update(Source).where(Source.id == source_id).values(websub_expires_at=expires_at))


async def retry_subscription_at(session: AsyncSession, source_id: int, *, at: datetime, forget_secret: bool) -> None:
    """After a failed or denied request: try again once `at - margin` is reached."""
    values: dict[str, object] = {"websub_expires_at": at}
    if forget_secret:
        values["websub_secret"] = None
    await session.execute(update(Source).where(Source.id == source_id).values(**values))


async def end_subscription(session: AsyncSession, source_id: int) -> None:
    await session.execute(
        update(Source).where(Source.id == source_id).values(websub_secret=None, websub_expires_at=None)
    )


async def mark_due_now(session: AsyncSession, source_id: int, *, now: datetime) -> bool:
    """A push: the enabled source is polled at the next tick. Returns False for a disabled or
    unknown source. An earlier due time is kept."""
    result = await session.execute(
        update(Source)
        .where(Source.id == source_id, Source.enabled.is_(True), Source.next_check_at > now)
        .values(next_check_at=now)
    )
    if result.rowcount:  # type: ignore[attr-defined]
        return True
    source = await session.get(Source, source_id)
    return source is not None and source.enabled

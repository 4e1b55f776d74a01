"""The outbox (`deliveries`): every message Veille sends is a row here first.

Like `repo`, functions take a session and never commit. Rows are unique per (chat, kind, dedup_key);
claiming leases them, so several senders never send the same row at once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Chat, Delivery, Subscription
from bot.db.repo import _insert, _is_postgres


@dataclass(frozen=True, slots=True)
class NewDelivery:
    chat_id: int
    kind: str
    dedup_key: str
    article_id: int | None = None
    subscription_id: int | None = None
    matched_terms: Sequence[str] = ()
    payload: str | None = None
    message_thread_id: int | None = None


async def enqueue_deliveries(session: AsyncSession, rows: Sequence[NewDelivery], *, now: datetime) -> int:
    """Inserts outbox rows, skipping any (chat, kind, dedup_key) already there; returns how many were new."""
    if not rows:
        return 0
    values = [
        {
            "chat_id": r.chat_id,
            "kind": r.kind,
            "dedup_key": r.dedup_key,
            "article_id": r.article_id,
            "subscription_id": r.subscription_id,
            "matched_terms": json.dumps(list(r.matched_terms), ensure_ascii=False) if r.matched_terms else None,
            "payload": r.payload,
            "message_thread_id": r.message_thread_id,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for r in rows
    ]
    inserted = 0
    for start in range(0, len(values), 500):
        statement = (
            _insert(session, Delivery)
            .values(values[start : start + 500])
            .on_conflict_do_nothing(index_elements=["chat_id", "kind", "dedup_key"])
        )
        result = await session.execute(statement)
        inserted += max(result.rowcount or 0, 0)
    return inserted


async def claim_due_deliveries(
    session: AsyncSession, *, now: datetime, owner: str, lease: timedelta, limit: int
) -> list[Delivery]:
    """Leases due outbox rows (pending, or sending with an expired lease) in creation order."""
    query = (
        select(Delivery)
        .join(Chat, Chat.id == Delivery.chat_id)
        .where(
            Chat.active.is_(True),
            or_(
                and_(Delivery.status == "pending", Delivery.next_attempt_at <= now),
                and_(Delivery.status == "sending", Delivery.lease_until < now),
            ),
        )
        .order_by(Delivery.id)
        .limit(limit)
    )
    if _is_postgres(session):
        query = query.with_for_update(of=Delivery, skip_locked=True)
    rows = list((await session.execute(query)).scalars().all())
    for row in rows:
        row.status, row.lease_owner, row.lease_until = "sending", owner, now + lease
        row.attempts += 1
    await session.flush()
    return rows


async def mark_delivery_sent(session: AsyncSession, delivery_id: int, *, message_id: int, now: datetime) -> None:
    await session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id)
        .values(status="sent", message_id=message_id, sent_at=now, lease_owner=None, lease_until=None,
                last_error=None)
    )


async def reschedule_delivery(
    session: AsyncSession, delivery_id: int, *, error: str, next_attempt_at: datetime, count_attempt: bool = True
) -> None:
    values: dict[str, Any] = {
        "status": "pending",
        "next_attempt_at": next_attempt_at,
        "last_error": error[:2000],
        "lease_owner": None,
        "lease_until": None,
    }
    if not count_attempt:
        values["attempts"] = Delivery.attempts - 1
    await session.execute(update(Delivery).where(Delivery.id == delivery_id).values(**values))


async def fail_delivery(session: AsyncSession, delivery_id: int, *, error: str) -> None:
    await session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id)
        .values(status="failed", last_error=error[:2000], lease_owner=None, lease_until=None)
    )


async def move_chat(session: AsyncSession, old_chat_id: int, new_chat_id: int, now: datetime) -> None:
    """Group → supergroup migration: the chat's alerts and pending rows follow it to the new id."""
    old = await session.get(Chat, old_chat_id)
    if old is None:
        return
    new = await session.get(Chat, new_chat_id)
    if new is None:
        new = Chat(
            id=new_chat_id,
            type="supergroup",
            title=old.title,
            username=old.username,
            language=old.language,
            timezone=old.timezone,
            link_preview=old.link_preview,
            quiet_start=old.quiet_start,
            quiet_end=old.quiet_end,
            active=True,
            created_at=old.created_at,
            updated_at=now,
        )
        session.add(new)
        await session.flush()
    await session.execute(
        update(Subscription).where(Subscription.chat_id == old_chat_id).values(chat_id=new_chat_id)
    )
    await session.execute(
        update(Delivery)
        .where(Delivery.chat_id == old_chat_id, Delivery.status.in_(("pending", "sending")))
        .values(chat_id=new_chat_id, status="pending", lease_owner=None, lease_until=None)
    )
    old.active, old.inactive_reason, old.updated_at = False, f"migrated to {new_chat_id}", now


async def outbox_counts(session: AsyncSession) -> dict[str, int]:
    result = await session.execute(select(Delivery.status, func.count()).group_by(Delivery.status))
    return {status: int(count) for status, count in result.all()}


async def deliveries_for_chat(session: AsyncSession, chat_id: int) -> Sequence[Delivery]:
    result = await session.execute(select(Delivery).where(Delivery.chat_id == chat_id).order_by(Delivery.id))
    return result.scalars().all()

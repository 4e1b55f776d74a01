"""The outbox (`deliveries`): every message Veille sends is a row here first.

Like `repo`, functions take a session and never commit. Rows are unique per (chat, kind, dedup_key);
claiming leases them, so several senders never send the same row at once.

Statuses: ``pending`` (due at `next_attempt_at`) → ``sending`` (leased until `lease_until`) → ``sent``
(with Telegram's message id) | ``failed`` | ``cancelled``. Alerts that must wait for a digest are
``held`` until `next_attempt_at`, then bundled into a digest row and become ``digested``. Digest parts
beyond the first batch are ``parked`` until the chat asks for more. Only ``pending`` and expired
``sending`` rows are ever claimed, so held and parked rows cost the claim query nothing.

Per-chat order: a row is claimed only when no older row of its chat is waiting (pending, not yet due)
or in flight (sending under a live lease), and, on PostgreSQL where another worker may hold locks on
older rows, only when no older row of its chat is pending or sending outside this claim.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from bot.db.models import Broadcast, Chat, Delivery, Story, Subscription


def _is_postgres(session: AsyncSession) -> bool:
    # Defined here rather than imported from repo: repo re-exports this module (no import cycle).
    return session.bind is not None and session.bind.dialect.name == "postgresql"


def _insert(session: AsyncSession, table: Any) -> Any:
    return pg_insert(table) if _is_postgres(session) else sqlite_insert(table)


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
    story_id: int | None = None
    broadcast_id: int | None = None
    edit_message_id: int | None = None
    reply_markup: dict | None = None
    status: str = "pending"  # or "parked" (digest parts waiting for "more")


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
            "story_id": r.story_id,
            "broadcast_id": r.broadcast_id,
            "edit_message_id": r.edit_message_id,
            "reply_markup": r.reply_markup,
            "status": r.status,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for r in rows
    ]
    return await insert_delivery_rows(session, values)


async def insert_delivery_rows(session: AsyncSession, values: list[dict[str, Any]]) -> int:
    """The one INSERT into the outbox: rows whose (chat, kind, dedup_key) exists are skipped, which is
    what makes "never twice" hold; returns how many rows were new."""
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


_ACTIVE = ("pending", "sending")


async def claim_due_deliveries(
    session: AsyncSession, *, now: datetime, owner: str, lease: timedelta, limit: int
) -> list[Delivery]:
    """Leases due outbox rows (pending, or sending with an expired lease) in creation order, keeping
    each chat's order (see the module docstring)."""
    older = aliased(Delivery)
    blocked_behind_older = exists().where(
        older.chat_id == Delivery.chat_id,
        older.id < Delivery.id,
        or_(
            and_(older.status == "pending", older.next_attempt_at > now),
            and_(older.status == "sending", older.lease_until >= now),
        ),
    )
    claimable = (
        Chat.active.is_(True),
        or_(
            and_(Delivery.status == "pending", Delivery.next_attempt_at <= now),
            and_(Delivery.status == "sending", Delivery.lease_until < now),
        ),
        ~blocked_behind_older,
    )
    # Whole chats, oldest waiting first, so that a chat's waiting alerts are coalesced into one message
    # instead of being spread over several claims by rows of other chats.
    chats = (
        select(Delivery.chat_id)
        .join(Chat, Chat.id == Delivery.chat_id)
        .where(*claimable)
        .group_by(Delivery.chat_id)
        .order_by(func.min(Delivery.id))
        .limit(max(1, limit // 2))
        .scalar_subquery()
    )
    query = (
        select(Delivery)
        .join(Chat, Chat.id == Delivery.chat_id)
        .where(*claimable, Delivery.chat_id.in_(chats))
        .order_by(Delivery.chat_id, Delivery.id)
        .limit(limit)
    )
    if _is_postgres(session):
        query = query.with_for_update(of=Delivery, skip_locked=True)
    rows = list((await session.execute(query)).scalars().all())
    if rows and _is_postgres(session):
        rows = await _drop_rows_behind_skipped(session, rows)
    for row in rows:
        row.status, row.lease_owner, row.lease_until = "sending", owner, now + lease
        row.attempts += 1
    await session.flush()
    return rows


async def _drop_rows_behind_skipped(session: AsyncSession, rows: list[Delivery]) -> list[Delivery]:
    # SKIP LOCKED passes over rows another worker is claiming right now; a newer row of the same chat
    # must then wait for the next claim, or it could overtake the older one.
    ids = [r.id for r in rows]
    chats = sorted({r.chat_id for r in rows})
    result = await session.execute(
        select(Delivery.chat_id, func.min(Delivery.id))
        .where(Delivery.chat_id.in_(chats), Delivery.status.in_(_ACTIVE), Delivery.id.not_in(ids))
        .group_by(Delivery.chat_id)
    )
    first_outside = dict(result.all())
    return [r for r in rows if r.id < first_outside.get(r.chat_id, r.id + 1)]


async def hold_deliveries(session: AsyncSession, delivery_ids: Sequence[int], *, until: datetime) -> None:
    """Claimed alerts that wait for a digest: held until `until`, the claim's attempt not counted."""
    if delivery_ids:
        await session.execute(
            update(Delivery)
            .where(Delivery.id.in_(list(delivery_ids)))
            .values(status="held", next_attempt_at=until, lease_owner=None, lease_until=None,
                    attempts=Delivery.attempts - 1)
        )


async def due_held_deliveries(session: AsyncSession, *, now: datetime, limit: int) -> list[Delivery]:
    """Held alerts whose digest is due, whole chats at a time (a chat is never split across calls)."""
    chats_query = (
        select(Delivery.chat_id)
        .join(Chat, Chat.id == Delivery.chat_id)
        .where(Delivery.status == "held", Delivery.next_attempt_at <= now, Chat.active.is_(True))
        .group_by(Delivery.chat_id)
        .order_by(func.min(Delivery.next_attempt_at))
        .limit(limit)
    )
    chats = [row[0] for row in (await session.execute(chats_query)).all()]
    if not chats:
        return []
    query = (
        select(Delivery)
        .where(Delivery.chat_id.in_(chats), Delivery.status == "held", Delivery.next_attempt_at <= now)
        .order_by(Delivery.chat_id, Delivery.id)
    )
    if _is_postgres(session):
        query = query.with_for_update(skip_locked=True)
    return list((await session.execute(query)).scalars().all())


async def mark_digested(session: AsyncSession, delivery_ids: Sequence[int], *, note: str) -> None:
    if delivery_ids:
        await session.execute(
            update(Delivery).where(Delivery.id.in_(list(delivery_ids))).values(status="digested", last_error=note)
        )


async def release_held_for_subscription(session: AsyncSession, subscription_id: int, *, now: datetime) -> int:
    """The noise guard was undone: the alert's held rows go out now (coalesced as usual)."""
    result = await session.execute(
        update(Delivery)
        .where(Delivery.subscription_id == subscription_id, Delivery.status == "held")
        .values(status="pending", next_attempt_at=now)
    )
    return result.rowcount or 0


async def release_parked(session: AsyncSession, chat_id: int, dedup_keys: Sequence[str], *, now: datetime) -> int:
    """The chat asked for more of a digest: these parked parts become due now."""
    result = await session.execute(
        update(Delivery)
        .where(Delivery.chat_id == chat_id, Delivery.kind == "digest", Delivery.status == "parked",
               Delivery.dedup_key.in_(list(dedup_keys)))
        .values(status="pending", next_attempt_at=now)
    )
    return result.rowcount or 0


async def count_sent_alerts(session: AsyncSession, chat_id: int, *, since: datetime) -> int:
    """Alert rows sent to the chat since `since` (the noise guard's measure)."""
    result = await session.execute(
        select(func.count()).where(
            Delivery.chat_id == chat_id, Delivery.kind == "alert", Delivery.status == "sent",
            Delivery.sent_at >= since,
        )
    )
    return int(result.scalar_one())


async def delivery_exists(session: AsyncSession, chat_id: int, kind: str, dedup_key: str) -> bool:
    result = await session.execute(
        select(Delivery.id).where(Delivery.chat_id == chat_id, Delivery.kind == kind, Delivery.dedup_key == dedup_key)
    )
    return result.first() is not None


async def set_throttle(session: AsyncSession, subscription_id: int, *, until: datetime | None) -> None:
    await session.execute(
        update(Subscription).where(Subscription.id == subscription_id).values(throttled_until=until)
    )


async def get_subscriptions(session: AsyncSession, ids: Sequence[int]) -> dict[int, Subscription]:
    if not ids:
        return {}
    result = await session.execute(select(Subscription).where(Subscription.id.in_(sorted(set(ids)))))
    return {s.id: s for s in result.scalars()}


async def get_broadcasts(session: AsyncSession, ids: Sequence[int]) -> dict[int, Broadcast]:
    if not ids:
        return {}
    result = await session.execute(select(Broadcast).where(Broadcast.id.in_(sorted(set(ids)))))
    return {b.id: b for b in result.scalars()}


async def mark_deliveries_sent(
    session: AsyncSession, delivery_ids: Sequence[int], *, message_id: int, now: datetime
) -> None:
    await session.execute(
        update(Delivery)
        .where(Delivery.id.in_(list(delivery_ids)))
        .values(status="sent", message_id=message_id, sent_at=now, lease_owner=None, lease_until=None,
                last_error=None)
    )


async def release_deliveries(session: AsyncSession, delivery_ids: Sequence[int], *, now: datetime, note: str) -> None:
    """Claimed rows handed back untried (shutdown, lease running short): due now, attempt not counted."""
    if delivery_ids:
        await session.execute(
            update(Delivery)
            .where(Delivery.id.in_(list(delivery_ids)))
            .values(status="pending", next_attempt_at=now, last_error=note, lease_owner=None, lease_until=None,
                    attempts=Delivery.attempts - 1)
        )


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


async def story_outlets(session: AsyncSession, story_ids: Sequence[int]) -> dict[int, int]:
    """How many sources carry each story (the digest's ranking)."""
    if not story_ids:
        return {}
    result = await session.execute(select(Story.id, Story.source_count).where(Story.id.in_(sorted(set(story_ids)))))
    return {story_id: int(count or 1) for story_id, count in result.all()}



async def mark_many_sent(session: AsyncSession, sent: Sequence[tuple[Sequence[int], int]], *, now: datetime) -> None:
    """Several messages' rows marked sent in one statement (executemany by primary key)."""
    values = [
        {"id": row_id, "status": "sent", "message_id": message_id, "sent_at": now, "lease_owner": None,
         "lease_until": None, "last_error": None}
        for ids, message_id in sent
        for row_id in ids
    ]
    if values:
        await session.execute(update(Delivery), values)


async def get_chats(session: AsyncSession, chat_ids: Sequence[int]) -> dict[int, Chat]:
    if not chat_ids:
        return {}
    result = await session.execute(select(Chat).where(Chat.id.in_(sorted(set(chat_ids)))))
    return {c.id: c for c in result.scalars()}

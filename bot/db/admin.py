"""SQL for the admin features (issue #8): broadcasts, their progress, bans, statistics, source health.

Like `repo`, functions take a session and never commit. Broadcast progress is counted from the outbox
rows themselves (status by `broadcast_id`), so a report after a restart says exactly what the outbox
holds; "blocked" is a cancelled row whose chat is now inactive (the delivery layer deactivates a chat
on 403 and cancels its rows). Per-day series are grouped by UTC calendar day.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Article, Broadcast, Chat, Delivery, Source, Story, Subscription, User
from bot.db.outbox import insert_delivery_rows

GROUP_TYPES = ("group", "supergroup", "channel")
# A banned user's private chat is made inactive with this reason; unbanning reactivates only such chats.
BANNED_REASON = "banned by an admin"


# --- audiences -----------------------------------------------------------------------------------


async def active_chat_ids(
    session: AsyncSession, *, language: str | None = None, types: Sequence[str] | None = None
) -> list[int]:
    """Active chats, optionally of one language or of some types, in id order."""
    query = select(Chat.id).where(Chat.active.is_(True))
    if language is not None:
        query = query.where(Chat.language == language)
    if types is not None:
        query = query.where(Chat.type.in_(tuple(types)))
    return list((await session.execute(query.order_by(Chat.id))).scalars())


async def active_chat_queries(session: AsyncSession) -> list[tuple[int, str]]:
    """(chat id, query) of every alert in an active chat; the caller decides which follow a term."""
    result = await session.execute(
        select(Subscription.chat_id, Subscription.query)
        .join(Chat, Chat.id == Subscription.chat_id)
        .where(Chat.active.is_(True))
        .order_by(Subscription.chat_id, Subscription.id)
    )
    return [(int(chat_id), query) for chat_id, query in result.all()]


async def ensure_chat(
    session: AsyncSession, *, chat_id: int, chat_type: str, title: str | None, username: str | None, now: datetime
) -> Chat:
    """A target chat known only by the admin (a channel named in settings) gets a row, kept active."""
    chat = await session.get(Chat, chat_id)
    if chat is None:
        chat = Chat(id=chat_id, type=chat_type, title=title, username=username, language="fr",
                    timezone="Europe/Paris", link_preview=True, active=True, created_at=now, updated_at=now)
        session.add(chat)
        await session.flush()
    elif not chat.active:
        chat.active, chat.inactive_reason, chat.updated_at = True, None, now
    return chat


# --- broadcasts ----------------------------------------------------------------------------------


async def add_broadcast(session: AsyncSession, broadcast: Broadcast) -> Broadcast:
    session.add(broadcast)
    await session.flush()
    return broadcast


async def get_broadcast(session: AsyncSession, broadcast_id: int) -> Broadcast | None:
    return await session.get(Broadcast, broadcast_id)


async def start_broadcast(
    session: AsyncSession,
    broadcast_id: int,
    *,
    now: datetime,
    report_chat_id: int | None,
    report_message_id: int | None,
) -> bool:
    """draft → running in one conditional UPDATE: of two concurrent confirms exactly one wins."""
    result = await session.execute(
        update(Broadcast)
        .where(Broadcast.id == broadcast_id, Broadcast.status == "draft")
        .values(status="running", confirmed_at=now, report_chat_id=report_chat_id,
                report_message_id=report_message_id)
        .execution_options(synchronize_session=False)
    )
    return (result.rowcount or 0) == 1


async def enqueue_broadcast_rows(
    session: AsyncSession, broadcast: Broadcast, chat_ids: Iterable[int], *, payload: str,
    reply_markup: dict | None, now: datetime,
) -> int:
    """One outbox row per chat, unique per (chat, "broadcast", "broadcast:<id>"); returns how many are new."""
    values = [
        {
            "chat_id": chat_id,
            "kind": "broadcast",
            "dedup_key": f"broadcast:{broadcast.id}",
            "broadcast_id": broadcast.id,
            "payload": payload,
            "reply_markup": reply_markup,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for chat_id in chat_ids
    ]
    return await insert_delivery_rows(session, values)


@dataclass(frozen=True, slots=True)
class BroadcastCounts:
    sent: int = 0
    blocked: int = 0
    failed: int = 0
    cancelled: int = 0  # stopped by an admin (chat still active)
    pending: int = 0  # pending or being sent

    @property
    def total(self) -> int:
        return self.sent + self.blocked + self.failed + self.cancelled + self.pending

    @property
    def done(self) -> int:
        return self.sent + self.blocked + self.failed


async def broadcast_counts(session: AsyncSession, broadcast_id: int) -> BroadcastCounts:
    result = await session.execute(
        select(Delivery.status, Chat.active, func.count())
        .join(Chat, Chat.id == Delivery.chat_id)
        .where(Delivery.broadcast_id == broadcast_id)
        .group_by(Delivery.status, Chat.active)
    )
    counts = {"sent": 0, "blocked": 0, "failed": 0, "cancelled": 0, "pending": 0}
    for status, active, count in result.all():
        if status == "sent":
            counts["sent"] += count
        elif status == "failed":
            counts["failed"] += count
        elif status == "cancelled":
            counts["cancelled" if active else "blocked"] += count
        elif active:  # pending / sending
            counts["pending"] += count
        else:  # a row left behind on a chat deactivated meanwhile will never go: it is blocked
            counts["blocked"] += count
    return BroadcastCounts(**counts)


async def cancel_broadcast_rows(session: AsyncSession, broadcast_id: int, *, reason: str) -> int:
    """Pending rows of the broadcast become "cancelled"; a row being sent right now still finishes."""
    result = await session.execute(
        update(Delivery)
        .where(Delivery.broadcast_id == broadcast_id, Delivery.status == "pending")
        .values(status="cancelled", last_error=reason, lease_owner=None, lease_until=None)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


async def set_broadcast_status(
    session: AsyncSession, broadcast_id: int, status: str, *, now: datetime | None = None,
    only_from: Sequence[str] | None = None,
) -> bool:
    statement = update(Broadcast).where(Broadcast.id == broadcast_id)
    if only_from is not None:
        statement = statement.where(Broadcast.status.in_(tuple(only_from)))
    values: dict[str, Any] = {"status": status}
    if now is not None:
        values["finished_at"] = now
    result = await session.execute(statement.values(**values).execution_options(synchronize_session=False))
    return (result.rowcount or 0) == 1


async def set_broadcast_report(session: AsyncSession, broadcast_id: int, chat_id: int, message_id: int) -> None:
    await session.execute(
        update(Broadcast).where(Broadcast.id == broadcast_id)
        .values(report_chat_id=chat_id, report_message_id=message_id)
        .execution_options(synchronize_session=False)
    )


async def broadcasts_with_status(session: AsyncSession, statuses: Sequence[str]) -> Sequence[Broadcast]:
    result = await session.execute(
        select(Broadcast).where(Broadcast.status.in_(tuple(statuses))).order_by(Broadcast.id)
    )
    return result.scalars().all()


async def sent_broadcast_messages(session: AsyncSession, broadcast_id: int) -> list[tuple[int, int, int]]:
    """(row id, chat id, message id) of the broadcast's messages still in the chats."""
    result = await session.execute(
        select(Delivery.id, Delivery.chat_id, Delivery.message_id)
        .where(Delivery.broadcast_id == broadcast_id, Delivery.status == "sent", Delivery.message_id.is_not(None))
        .order_by(Delivery.id)
    )
    return [(int(a), int(b), int(c)) for a, b, c in result.all()]


async def forget_message_ids(session: AsyncSession, row_ids: Sequence[int]) -> None:
    """The messages were deleted from the chats: the rows stay "sent" but no longer point at them."""
    for start in range(0, len(row_ids), 500):
        await session.execute(
            update(Delivery).where(Delivery.id.in_(list(row_ids[start : start + 500])))
            .values(message_id=None, last_error="deleted by an admin")
            .execution_options(synchronize_session=False)
        )


async def broadcast_problem_rows(session: AsyncSession, broadcast_id: int) -> list[tuple[int, str, str, str]]:
    """(chat id, chat type, status, error) of every row that did not arrive, for the CSV of failures."""
    result = await session.execute(
        select(Delivery.chat_id, Chat.type, Delivery.status, Chat.active, Delivery.last_error)
        .join(Chat, Chat.id == Delivery.chat_id)
        .where(Delivery.broadcast_id == broadcast_id, Delivery.status.in_(("failed", "cancelled")))
        .order_by(Delivery.id)
    )
    return [
        (int(chat_id), chat_type, "blocked" if status == "cancelled" and not active else status, error or "")
        for chat_id, chat_type, status, active, error in result.all()
    ]


# --- bans ----------------------------------------------------------------------------------------


async def is_banned(session: AsyncSession, user_id: int) -> bool:
    result = await session.execute(select(User.banned).where(User.id == user_id))
    return bool(result.scalar_one_or_none())


async def set_banned(session: AsyncSession, user_id: int, banned: bool, *, now: datetime) -> User:
    user = await session.get(User, user_id)
    if user is None:
        user = User(id=user_id, banned=banned, created_at=now, last_seen_at=now)
        session.add(user)
    else:
        user.banned = banned
    await session.flush()
    return user


async def set_chat_active(
    session: AsyncSession, chat_id: int, *, active: bool, reason: str | None, now: datetime,
    only_if_reason: str | None = None,
) -> bool:
    statement = update(Chat).where(Chat.id == chat_id)
    if only_if_reason is not None:
        statement = statement.where(Chat.inactive_reason == only_if_reason)
    result = await session.execute(
        statement.values(active=active, inactive_reason=reason, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return (result.rowcount or 0) == 1


async def cancel_chat_pending_rows(session: AsyncSession, chat_id: int, *, reason: str) -> int:
    result = await session.execute(
        update(Delivery)
        .where(Delivery.chat_id == chat_id, Delivery.status == "pending")
        .values(status="cancelled", last_error=reason)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


async def count_chat_alerts(session: AsyncSession, chat_id: int) -> int:
    result = await session.execute(select(func.count()).where(Subscription.chat_id == chat_id))
    return int(result.scalar_one())


# --- statistics ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UserCounts:
    total: int
    active: int  # seen since `active_since`, not banned, private chat not blocked
    blocked: int  # their private chat is inactive (they blocked the bot)
    banned: int


async def user_counts(session: AsyncSession, *, active_since: datetime) -> UserCounts:
    total = int((await session.execute(select(func.count()).select_from(User))).scalar_one())
    banned = int((await session.execute(select(func.count()).where(User.banned.is_(True)))).scalar_one())
    blocked = int((await session.execute(
        select(func.count()).select_from(Chat).where(
            Chat.type == "private", Chat.active.is_(False),
            (Chat.inactive_reason.is_(None)) | (Chat.inactive_reason != BANNED_REASON),
        )
    )).scalar_one())
    active = int((await session.execute(
        select(func.count()).select_from(User).join(Chat, Chat.id == User.id, isouter=True)
        .where(User.banned.is_(False), User.last_seen_at >= active_since,
               (Chat.active.is_(True)) | (Chat.id.is_(None)))
    )).scalar_one())
    return UserCounts(total=total, active=active, blocked=blocked, banned=banned)


async def chat_counts(session: AsyncSession) -> dict[str, tuple[int, int]]:
    """Chat type → (active, inactive)."""
    result = await session.execute(select(Chat.type, Chat.active, func.count()).group_by(Chat.type, Chat.active))
    out: dict[str, list[int]] = {}
    for chat_type, active, count in result.all():
        out.setdefault(chat_type, [0, 0])[0 if active else 1] += int(count)
    return {k: (v[0], v[1]) for k, v in sorted(out.items())}


async def alert_counts(session: AsyncSession) -> tuple[int, int]:
    """(alerts, paused alerts)."""
    total = int((await session.execute(select(func.count()).select_from(Subscription))).scalar_one())
    paused = int((await session.execute(
        select(func.count()).where(Subscription.paused.is_(True))
    )).scalar_one())
    return total, paused


async def all_sources(session: AsyncSession) -> Sequence[Source]:
    result = await session.execute(select(Source).order_by(Source.id))
    return result.scalars().all()


async def articles_since(session: AsyncSession, since: datetime) -> int:
    result = await session.execute(select(func.count()).where(Article.first_seen_at >= since))
    return int(result.scalar_one())


async def alerts_sent_since(session: AsyncSession, since: datetime) -> int:
    result = await session.execute(
        select(func.count()).where(Delivery.kind == "alert", Delivery.status == "sent", Delivery.sent_at >= since)
    )
    return int(result.scalar_one())


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


async def alerts_sent_per_day(session: AsyncSession, since: datetime) -> dict[date, int]:
    day = func.date(Delivery.sent_at)
    result = await session.execute(
        select(day, func.count())
        .where(Delivery.kind == "alert", Delivery.status == "sent", Delivery.sent_at >= since)
        .group_by(day)
    )
    return {_as_date(d): int(n) for d, n in result.all() if d is not None}


async def new_users_per_day(session: AsyncSession, since: datetime) -> dict[date, int]:
    day = func.date(User.created_at)
    result = await session.execute(select(day, func.count()).where(User.created_at >= since).group_by(day))
    return {_as_date(d): int(n) for d, n in result.all() if d is not None}


async def top_alert_queries(session: AsyncSession, limit: int = 10) -> list[tuple[str, int]]:
    """The most followed alert queries (in active chats), most followed first."""
    count = func.count().label("n")
    result = await session.execute(
        select(Subscription.query, count)
        .join(Chat, Chat.id == Subscription.chat_id)
        .where(Chat.active.is_(True))
        .group_by(Subscription.query)
        .order_by(count.desc(), Subscription.query)
        .limit(limit)
    )
    return [(q, int(n)) for q, n in result.all()]


# --- digests -------------------------------------------------------------------------------------


async def matches_per_article(session: AsyncSession, article_ids: Sequence[int]) -> dict[int, int]:
    """How many chats were alerted (or queued) for each article: its subscribers' matches."""
    out: dict[int, int] = {}
    for start in range(0, len(article_ids), 500):
        chunk = list(article_ids[start : start + 500])
        result = await session.execute(
            select(Delivery.article_id, func.count(func.distinct(Delivery.chat_id)))
            .where(Delivery.article_id.in_(chunk), Delivery.kind.in_(("alert", "digest")))
            .group_by(Delivery.article_id)
        )
        out.update({int(a): int(n) for a, n in result.all()})
    return out


async def story_source_counts(session: AsyncSession, story_ids: Sequence[int]) -> dict[int, int]:
    if not story_ids:
        return {}
    result = await session.execute(select(Story.id, Story.source_count).where(Story.id.in_(list(story_ids))))
    return {int(i): int(n) for i, n in result.all()}

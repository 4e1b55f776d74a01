"""All SQL lives here. Functions take an `AsyncSession` and never commit: the caller owns the
transaction, so several of them can share one (a poll stores its articles and their outbox rows
atomically). Every statement works on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Article, Chat, Delivery, Source, Subscription, User


def _insert(session: AsyncSession, table: Any) -> Any:
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    return pg_insert(table) if dialect == "postgresql" else sqlite_insert(table)


def _is_postgres(session: AsyncSession) -> bool:
    return session.bind is not None and session.bind.dialect.name == "postgresql"


# --- users and chats ---------------------------------------------------------------------------


async def upsert_user(
    session: AsyncSession,
    *,
    user_id: int,
    username: str | None,
    first_name: str | None,
    language_code: str | None,
    now: datetime,
) -> User:
    user = await session.get(User, user_id)
    if user is None:
        user = User(
            id=user_id,
            username=username,
            first_name=first_name,
            language_code=language_code,
            banned=False,
            created_at=now,
            last_seen_at=now,
        )
        session.add(user)
    else:
        user.username, user.first_name, user.language_code = username, first_name, language_code
        user.last_seen_at = now
    return user


async def get_user(session: AsyncSession, user_id: int) -> User | None:
    return await session.get(User, user_id)


async def upsert_chat(
    session: AsyncSession,
    *,
    chat_id: int,
    chat_type: str,
    title: str | None,
    username: str | None,
    language: str,
    timezone: str,
    now: datetime,
) -> Chat:
    """Creates the chat on first contact; later contacts refresh its name and reactivate it."""
    chat = await session.get(Chat, chat_id)
    if chat is None:
        chat = Chat(
            id=chat_id,
            type=chat_type,
            title=title,
            username=username,
            language=language,
            timezone=timezone,
            link_preview=True,
            active=True,
            created_at=now,
            updated_at=now,
        )
        session.add(chat)
        await session.flush()
    else:
        chat.type, chat.title, chat.username = chat_type, title, username
        if not chat.active:
            chat.active, chat.inactive_reason = True, None
        chat.updated_at = now
    return chat


async def get_chat(session: AsyncSession, chat_id: int) -> Chat | None:
    return await session.get(Chat, chat_id)


async def deactivate_chat(session: AsyncSession, chat_id: int, reason: str, now: datetime) -> int:
    """Marks the chat inactive and cancels its pending outbox rows; returns how many were cancelled."""
    await session.execute(
        update(Chat).where(Chat.id == chat_id).values(active=False, inactive_reason=reason, updated_at=now)
    )
    result = await session.execute(
        update(Delivery)
        .where(Delivery.chat_id == chat_id, Delivery.status.in_(("pending", "sending")))
        .values(status="cancelled", last_error=reason, lease_owner=None, lease_until=None)
    )
    return result.rowcount or 0


# --- subscriptions ------------------------------------------------------------------------------


async def add_subscription(
    session: AsyncSession,
    *,
    chat_id: int,
    query: str,
    created_by: int | None,
    message_thread_id: int | None,
    now: datetime,
) -> Subscription:
    subscription = Subscription(
        chat_id=chat_id,
        query=query,
        mode="instant",
        paused=False,
        created_by=created_by,
        message_thread_id=message_thread_id,
        created_at=now,
    )
    session.add(subscription)
    await session.flush()
    return subscription


async def find_subscription_by_query(session: AsyncSession, chat_id: int, query: str) -> Subscription | None:
    result = await session.execute(
        select(Subscription).where(Subscription.chat_id == chat_id, Subscription.query == query)
    )
    return result.scalar_one_or_none()


async def count_subscriptions(session: AsyncSession, chat_id: int) -> int:
    result = await session.execute(select(func.count()).where(Subscription.chat_id == chat_id))
    return int(result.scalar_one())


async def list_subscriptions(session: AsyncSession, chat_id: int) -> Sequence[Subscription]:
    result = await session.execute(
        select(Subscription).where(Subscription.chat_id == chat_id).order_by(Subscription.id)
    )
    return result.scalars().all()


async def subscriptions_by_chat(session: AsyncSession, chat_ids: Iterable[int]) -> dict[int, list[Subscription]]:
    """The subscriptions of several chats at once, grouped by chat, in id order."""
    ids = sorted(set(chat_ids))
    grouped: dict[int, list[Subscription]] = {chat_id: [] for chat_id in ids}
    for start in range(0, len(ids), 500):
        result = await session.execute(
            select(Subscription)
            .where(Subscription.chat_id.in_(ids[start : start + 500]))
            .order_by(Subscription.id)
        )
        for subscription in result.scalars():
            grouped[subscription.chat_id].append(subscription)
    return grouped


async def get_subscription(session: AsyncSession, subscription_id: int) -> Subscription | None:
    return await session.get(Subscription, subscription_id)


async def delete_subscription(session: AsyncSession, subscription_id: int) -> None:
    await session.execute(delete(Subscription).where(Subscription.id == subscription_id))


@dataclass(frozen=True, slots=True)
class ActiveSubscription:
    id: int
    chat_id: int
    query: str
    message_thread_id: int | None
    # Filters the matcher applies (issue #5): chosen sources (None: all), sources excluded by a
    # button, muted until, paused.
    source_ids: tuple[int, ...] | None = None
    excluded_source_ids: tuple[int, ...] = ()
    muted_until: datetime | None = None
    paused: bool = False


async def active_subscriptions(session: AsyncSession) -> list[ActiveSubscription]:
    """Every subscription that can fire: not paused, in an active chat."""
    result = await session.execute(
        select(
            Subscription.id, Subscription.chat_id, Subscription.query, Subscription.message_thread_id,
            Subscription.source_ids, Subscription.excluded_source_ids, Subscription.muted_until,
        )
        .join(Chat, Chat.id == Subscription.chat_id)
        .where(Subscription.paused.is_(False), Chat.active.is_(True))
        .order_by(Subscription.id)
    )
    return [
        ActiveSubscription(
            row.id, row.chat_id, row.query, row.message_thread_id,
            source_ids=tuple(row.source_ids) if row.source_ids is not None else None,
            excluded_source_ids=tuple(row.excluded_source_ids or ()),
            muted_until=row.muted_until,
        )
        for row in result.all()
    ]


# --- sources ------------------------------------------------------------------------------------


async def upsert_source(
    session: AsyncSession,
    *,
    url: str,
    name: str,
    language: str | None,
    category: str | None,
    now: datetime,
) -> tuple[Source, bool]:
    """Adds the source or updates its name/language/category; returns (source, created)."""
    result = await session.execute(select(Source).where(Source.url == url))
    source = result.scalar_one_or_none()
    if source is None:
        source = Source(
            url=url,
            name=name,
            language=language,
            category=category,
            enabled=True,
            next_check_at=now,
            error_streak=0,
            polls=0,
            not_modified_polls=0,
            created_at=now,
        )
        session.add(source)
        await session.flush()
        return source, True
    source.name, source.language, source.category = name, language, category
    return source, False


async def list_sources(session: AsyncSession) -> Sequence[Source]:
    result = await session.execute(select(Source).order_by(Source.id))
    return result.scalars().all()


async def get_source(session: AsyncSession, source_id: int) -> Source | None:
    return await session.get(Source, source_id)


async def find_source(session: AsyncSession, id_or_url: str) -> Source | None:
    if id_or_url.isdigit():
        return await session.get(Source, int(id_or_url))
    result = await session.execute(select(Source).where(Source.url == id_or_url))
    return result.scalar_one_or_none()


async def delete_source(session: AsyncSession, source_id: int) -> None:
    await session.execute(delete(Source).where(Source.id == source_id))


async def source_names(session: AsyncSession) -> dict[int, tuple[str, str]]:
    result = await session.execute(select(Source.id, Source.name, Source.url))
    return {row.id: (row.name, row.url) for row in result.all()}


async def claim_due_sources(
    session: AsyncSession, *, now: datetime, owner: str, lease: timedelta, limit: int
) -> list[Source]:
    """Leases up to `limit` due sources to `owner`, so that no other poller takes them meanwhile.

    A crashed poller's lease simply expires. On PostgreSQL `FOR UPDATE SKIP LOCKED` lets several
    pollers claim concurrently; SQLite has a single writer, which serialises claims by itself.
    """
    query = (
        select(Source)
        .where(
            Source.enabled.is_(True),
            Source.next_check_at <= now,
            or_(Source.lease_until.is_(None), Source.lease_until < now),
        )
        .order_by(Source.next_check_at)
        .limit(limit)
    )
    if _is_postgres(session):
        query = query.with_for_update(skip_locked=True)
    sources = list((await session.execute(query)).scalars().all())
    for source in sources:
        source.lease_owner, source.lease_until = owner, now + lease
    await session.flush()
    return sources


async def next_due_time(session: AsyncSession) -> datetime | None:
    result = await session.execute(select(func.min(Source.next_check_at)).where(Source.enabled.is_(True)))
    return result.scalar_one_or_none()


# --- articles -----------------------------------------------------------------------------------


async def known_article_keys(session: AsyncSession, source_id: int, keys: Iterable[str]) -> dict[str, Article]:
    keys = list(keys)
    found: dict[str, Article] = {}
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        result = await session.execute(
            select(Article).where(Article.source_id == source_id, Article.key.in_(chunk))
        )
        for article in result.scalars():
            found[article.key] = article
    return found


async def recent_publish_times(session: AsyncSession, source_id: int, limit: int = 20) -> list[datetime]:
    """The publication times of a source's latest articles (its rhythm, for the poll interval)."""
    result = await session.execute(
        select(Article.published_at)
        .where(Article.source_id == source_id, Article.published_at.is_not(None))
        .order_by(Article.id.desc())
        .limit(limit)
    )
    return [row[0] for row in result.all()]


async def add_article(session: AsyncSession, article: Article) -> Article:
    session.add(article)
    await session.flush()
    return article


async def recent_articles(session: AsyncSession, *, since: datetime, limit: int = 5000) -> Sequence[Article]:
    result = await session.execute(
        select(Article)
        .where(Article.first_seen_at >= since)
        .order_by(Article.first_seen_at.desc(), Article.id.desc())
        .limit(limit)
    )
    return result.scalars().all()


async def get_articles(session: AsyncSession, article_ids: Iterable[int]) -> dict[int, Article]:
    ids = list(set(article_ids))
    if not ids:
        return {}
    result = await session.execute(select(Article).where(Article.id.in_(ids)))
    return {a.id: a for a in result.scalars()}


# The outbox functions live in bot/db/outbox.py; re-exported so callers keep one import.
from bot.db.outbox import (  # noqa: E402
    NewDelivery,
    claim_due_deliveries,
    deliveries_for_chat,
    enqueue_deliveries,
    fail_delivery,
    mark_delivery_sent,
    move_chat,
    outbox_counts,
    reschedule_delivery,
)

__all__ = [
    "NewDelivery",
    "claim_due_deliveries",
    "deliveries_for_chat",
    "enqueue_deliveries",
    "fail_delivery",
    "mark_delivery_sent",
    "move_chat",
    "outbox_counts",
    "reschedule_delivery",
]

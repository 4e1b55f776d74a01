"""SQL behind the chat commands (issue #6): alert settings, pages of alerts, chat settings, channel
links, source proposals and the articles a query preview looks at.

Like `bot.db.repo`, every function takes an `AsyncSession` and never commits; every statement works
on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Article, Chat, Source, Subscription

# --- alerts ------------------------------------------------------------------------------------


async def page_of_subscriptions(
    session: AsyncSession, chat_id: int, *, offset: int, limit: int
) -> tuple[Sequence[Subscription], int]:
    """One page of the chat's alerts (oldest first) and how many the chat has in all."""
    total = int(
        (await session.execute(select(func.count()).where(Subscription.chat_id == chat_id))).scalar_one()
    )
    result = await session.execute(
        select(Subscription)
        .where(Subscription.chat_id == chat_id)
        .order_by(Subscription.id)
        .offset(offset)
        .limit(limit)
    )
    return result.scalars().all(), total


async def chat_subscription(session: AsyncSession, chat_id: int, subscription_id: int) -> Subscription | None:
    """The alert, only if it belongs to the chat (a button pressed elsewhere finds nothing)."""
    subscription = await session.get(Subscription, subscription_id)
    if subscription is None or subscription.chat_id != chat_id:
        return None
    return subscription


async def update_subscription(session: AsyncSession, subscription_id: int, **values: Any) -> None:
    await session.execute(update(Subscription).where(Subscription.id == subscription_id).values(**values))


async def set_chat_paused(session: AsyncSession, chat_id: int, paused: bool) -> list[int]:
    """Pauses (or resumes) every alert of the chat; returns the ids whose state changed."""
    result = await session.execute(
        select(Subscription.id).where(Subscription.chat_id == chat_id, Subscription.paused.is_(not paused))
    )
    ids = [row[0] for row in result.all()]
    if ids:
        await session.execute(update(Subscription).where(Subscription.id.in_(ids)).values(paused=paused))
    return ids


# --- chats -------------------------------------------------------------------------------------


async def update_chat(session: AsyncSession, chat_id: int, **values: Any) -> None:
    await session.execute(update(Chat).where(Chat.id == chat_id).values(**values))


async def channels_linked_by(session: AsyncSession, user_id: int) -> Sequence[Chat]:
    result = await session.execute(
        select(Chat).where(Chat.type == "channel", Chat.linked_by == user_id).order_by(Chat.title, Chat.id)
    )
    return result.scalars().all()


# --- sources -----------------------------------------------------------------------------------


async def enabled_sources(session: AsyncSession, *, language: str | None = None) -> Sequence[Source]:
    query = select(Source).where(Source.enabled.is_(True))
    if language is not None:
        query = query.where(Source.language == language)
    result = await session.execute(query.order_by(Source.name, Source.id))
    return result.scalars().all()


async def count_proposals_since(session: AsyncSession, user_id: int, since: datetime) -> int:
    result = await session.execute(
        select(func.count()).where(Source.proposed_by == user_id, Source.created_at >= since)
    )
    return int(result.scalar_one())


# --- preview -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredArticle:
    """What a preview needs of one stored article."""

    id: int
    title: str
    text: str
    url: str | None
    language: str | None
    source_id: int
    source_name: str
    source_url: str
    seen_at: datetime


async def articles_seen_since(session: AsyncSession, since: datetime, *, limit: int) -> list[StoredArticle]:
    """The newest `limit` articles first seen at or after `since`, newest first, with their source."""
    result = await session.execute(
        select(
            Article.id, Article.title, Article.summary, Article.text, Article.url, Article.language,
            Article.source_id, Source.name, Source.url, Article.first_seen_at,
        )
        .join(Source, Source.id == Article.source_id)
        .where(Article.first_seen_at >= since)
        .order_by(Article.first_seen_at.desc(), Article.id.desc())
        .limit(limit)
    )
    return [
        StoredArticle(
            id=row[0], title=row[1], text=row[3] or row[2] or "", url=row[4], language=row[5],
            source_id=row[6], source_name=row[7], source_url=row[8], seen_at=row[9],
        )
        for row in result.all()
    ]

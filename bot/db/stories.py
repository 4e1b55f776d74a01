"""Queries behind stories (one alert per story, edits of sent alerts) and the alert message's buttons.

Like `repo`, functions take a session and never commit; every statement works on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Article, Delivery, Source, Story, Subscription
from bot.db.outbox import NewDelivery, enqueue_deliveries

# --- stories ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredFingerprint:
    article_id: int
    story_id: int
    fingerprint: bytes
    published: datetime


async def recent_fingerprints(session: AsyncSession, *, since: datetime) -> list[StoredFingerprint]:
    """Clustered articles first seen since `since`, oldest first (the order the index was built in)."""
    result = await session.execute(
        select(Article.id, Article.story_id, Article.fingerprint, Article.published_at, Article.first_seen_at)
        .where(
            Article.first_seen_at >= since,
            Article.fingerprint.is_not(None),
            Article.story_id.is_not(None),
        )
        .order_by(Article.id)
    )
    return [
        StoredFingerprint(row.id, row.story_id, bytes(row.fingerprint), row.published_at or row.first_seen_at)
        for row in result.all()
    ]


async def create_story(session: AsyncSession, *, first_article_id: int, now: datetime) -> int:
    story = Story(first_article_id=first_article_id, article_count=1, source_count=1, created_at=now, updated_at=now)
    session.add(story)
    await session.flush()
    return story.id


async def story_exists(session: AsyncSession, story_id: int) -> bool:
    result = await session.execute(select(Story.id).where(Story.id == story_id))
    return result.scalar_one_or_none() is not None


async def refresh_story_counts(session: AsyncSession, story_id: int, *, now: datetime) -> tuple[int, int]:
    """Recounts the story's articles and distinct sources (its articles must be flushed); returns both."""
    result = await session.execute(
        select(func.count(Article.id), func.count(func.distinct(Article.source_id))).where(
            Article.story_id == story_id
        )
    )
    articles, sources = result.one()
    await session.execute(
        update(Story)
        .where(Story.id == story_id)
        .values(article_count=int(articles), source_count=int(sources), updated_at=now)
    )
    return int(articles), int(sources)


async def story_source_ids(session: AsyncSession, story_id: int, *, excluding_article: int) -> set[int]:
    result = await session.execute(
        select(Article.source_id).where(Article.story_id == story_id, Article.id != excluding_article)
    )
    return {int(source_id) for source_id in result.scalars()}


async def story_sources(session: AsyncSession, story_ids: Iterable[int]) -> dict[int, list[tuple[int, str]]]:
    """Per story, its sources (id, name) in the order they first carried it."""
    ids = sorted(set(story_ids))
    if not ids:
        return {}
    result = await session.execute(
        select(Article.story_id, Article.source_id, Source.name)
        .join(Source, Source.id == Article.source_id)
        .where(Article.story_id.in_(ids))
        .order_by(Article.id)
    )
    found: dict[int, list[tuple[int, str]]] = {}
    for story_id, source_id, name in result.all():
        sources = found.setdefault(story_id, [])
        if all(source_id != known for known, _ in sources):
            sources.append((source_id, name))
    return found


# --- outbox rows for stories and edits -------------------------------------------------------------


# A story's alert or edit is an ordinary outbox row (story_id / edit_message_id set): one row type and
# one INSERT for the whole outbox.
StoryDelivery = NewDelivery
enqueue_story_deliveries = enqueue_deliveries


async def sent_alerts(
    session: AsyncSession, *, story_ids: Iterable[int] = (), article_ids: Iterable[int] = (), sent_since: datetime
) -> list[Delivery]:
    """Alert rows sent since `sent_since` (with a message id) for these stories or these articles."""
    stories, articles = sorted(set(story_ids)), sorted(set(article_ids))
    if not stories and not articles:
        return []
    about = (
        Delivery.story_id.in_(stories)
        if stories and not articles
        else Delivery.article_id.in_(articles)
        if articles and not stories
        else (Delivery.story_id.in_(stories) | Delivery.article_id.in_(articles))
    )
    result = await session.execute(
        select(Delivery)
        .where(
            about,
            Delivery.kind == "alert",
            Delivery.status == "sent",
            Delivery.message_id.is_not(None),
            Delivery.sent_at >= sent_since,
        )
        .order_by(Delivery.id)
    )
    return list(result.scalars())


async def alert_rows_of_message(session: AsyncSession, chat_id: int, message_id: int) -> list[Delivery]:
    """Every alert row a sent message carries (one, or several when alerts were coalesced)."""
    result = await session.execute(
        select(Delivery)
        .where(Delivery.chat_id == chat_id, Delivery.message_id == message_id, Delivery.kind == "alert")
        .order_by(Delivery.id)
    )
    return list(result.scalars())


async def edits_of_message(session: AsyncSession, chat_id: int, message_id: int) -> list[Delivery]:
    result = await session.execute(
        select(Delivery)
        .where(Delivery.chat_id == chat_id, Delivery.kind == "edit", Delivery.edit_message_id == message_id)
        .order_by(Delivery.id)
    )
    return list(result.scalars())


async def cancel_pending_edits(session: AsyncSession, chat_id: int, message_id: int, *, reason: str) -> int:
    """A newer version supersedes edits of the same message not yet sent."""
    result = await session.execute(
        update(Delivery)
        .where(
            Delivery.chat_id == chat_id,
            Delivery.kind == "edit",
            Delivery.edit_message_id == message_id,
            Delivery.status == "pending",
        )
        .values(status="cancelled", last_error=reason)
    )
    return result.rowcount or 0


# --- the alert message's buttons -------------------------------------------------------------------


async def chat_subscriptions(
    session: AsyncSession, chat_id: int, subscription_ids: Iterable[int]
) -> dict[int, Subscription]:
    """The chat's subscriptions among `subscription_ids` (another chat's ids are simply not found)."""
    ids = sorted(set(subscription_ids))
    if not ids:
        return {}
    result = await session.execute(
        select(Subscription).where(Subscription.chat_id == chat_id, Subscription.id.in_(ids))
    )
    return {s.id: s for s in result.scalars()}


async def count_chat_subscriptions(session: AsyncSession, chat_id: int) -> int:
    result = await session.execute(select(func.count()).where(Subscription.chat_id == chat_id))
    return int(result.scalar_one())


async def message_sources(
    session: AsyncSession, chat_id: int, message_id: int
) -> dict[int | None, list[tuple[int, str]]]:
    """Per subscription id, the sources (id, name) of the articles a sent alert message shows."""
    result = await session.execute(
        select(Delivery.subscription_id, Source.id, Source.name)
        .join(Article, Article.id == Delivery.article_id)
        .join(Source, Source.id == Article.source_id)
        .where(Delivery.chat_id == chat_id, Delivery.message_id == message_id, Delivery.kind == "alert")
        .order_by(Delivery.id)
    )
    found: dict[int | None, list[tuple[int, str]]] = {}
    for subscription_id, source_id, name in result.all():
        sources = found.setdefault(subscription_id, [])
        if all(source_id != known for known, _ in sources):
            sources.append((source_id, name))
    return found


async def source_name(session: AsyncSession, source_id: int) -> str | None:
    result = await session.execute(select(Source.name).where(Source.id == source_id))
    return result.scalar_one_or_none()

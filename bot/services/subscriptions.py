"""Chats and their alerts: the business rules behind /start, /subscribe, /unsubscribe and /list.

Rules:
- A query is validated by the query parser and stored in its canonical form, so `OTAN  azerbaïdjan`
  and `OTAN azerbaïdjan` are the same alert; subscribing twice to the same query is not an error
  (the existing alert is returned).
- A chat holds at most `max_alerts_per_chat` alerts.
- `/unsubscribe` takes the alert's id (as `/list` shows it, `#12` or `12`) or its query text.
- The in-memory index is patched in the same call, after the commit, so a new alert fires on the very
  next poll.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.query import QueryLimits, parse_query
from bot.db import repo
from bot.db.models import Chat, Subscription
from bot.errors import VeilleError
from bot.services.matcher import Matcher


class AlertLimitReached(VeilleError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"this chat already has {limit} alerts, the most allowed")
        self.limit = limit


@dataclass(frozen=True, slots=True)
class ChatInfo:
    id: int
    type: str
    title: str | None = None
    username: str | None = None


@dataclass(frozen=True, slots=True)
class UserInfo:
    id: int
    username: str | None = None
    first_name: str | None = None
    language_code: str | None = None


@dataclass(frozen=True, slots=True)
class SubscribeResult:
    subscription: Subscription
    created: bool


class SubscriptionService:
    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        matcher: Matcher,
        *,
        limits: QueryLimits,
        max_alerts_per_chat: int,
        default_language: str,
        default_timezone: str,
        clock: Callable[[], datetime],
    ) -> None:
        self.session_factory = session_factory
        self.matcher = matcher
        self.limits = limits
        self.max_alerts_per_chat = max_alerts_per_chat
        self.default_language = default_language
        self.default_timezone = default_timezone
        self.clock = clock

    async def register(self, chat: ChatInfo, user: UserInfo | None, language: str) -> Chat:
        """Records the chat (and the user) on every contact; returns the stored chat."""
        now = self.clock()
        async with self.session_factory() as session, session.begin():
            if user is not None:
                await repo.upsert_user(
                    session,
                    user_id=user.id,
                    username=user.username,
                    first_name=user.first_name,
                    language_code=user.language_code,
                    now=now,
                )
            stored = await repo.upsert_chat(
                session,
                chat_id=chat.id,
                chat_type=chat.type,
                title=chat.title,
                username=chat.username,
                language=language,
                timezone=self.default_timezone,
                now=now,
            )
        return stored

    async def subscribe(
        self, chat_id: int, text: str, *, user_id: int | None, message_thread_id: int | None = None
    ) -> SubscribeResult:
        query = parse_query(text, self.limits)  # raises QueryError with a friendly message
        canonical = query.text
        now = self.clock()
        async with self.session_factory() as session, session.begin():
            existing = await repo.find_subscription_by_query(session, chat_id, canonical)
            if existing is not None:
                return SubscribeResult(existing, created=False)
            if await repo.count_subscriptions(session, chat_id) >= self.max_alerts_per_chat:
                raise AlertLimitReached(self.max_alerts_per_chat)
            subscription = await repo.add_subscription(
                session,
                chat_id=chat_id,
                query=canonical,
                created_by=user_id,
                message_thread_id=message_thread_id,
                now=now,
            )
        self.matcher.add(
            repo.ActiveSubscription(subscription.id, chat_id, canonical, message_thread_id), query
        )
        return SubscribeResult(subscription, created=True)

    async def list(self, chat_id: int) -> Sequence[Subscription]:
        async with self.session_factory() as session:
            return await repo.list_subscriptions(session, chat_id)

    async def unsubscribe(self, chat_id: int, reference: str) -> Subscription | None:
        """Deletes the chat's alert named by its id (as /list shows it) or its query text."""
        reference = reference.strip()
        async with self.session_factory() as session, session.begin():
            subscriptions = list(await repo.list_subscriptions(session, chat_id))
            target = _find(subscriptions, reference, self.limits)
            if target is None:
                return None
            await repo.delete_subscription(session, target.id)
        self.matcher.remove(target.id)
        return target


def _find(subscriptions: list[Subscription], reference: str, limits: QueryLimits) -> Subscription | None:
    reference = reference.removeprefix("#")
    if reference.isdigit():
        return next((s for s in subscriptions if s.id == int(reference)), None)
    by_text = next((s for s in subscriptions if s.query == reference), None)
    if by_text is not None:
        return by_text
    try:
        canonical = parse_query(reference, limits).text
    except VeilleError:
        return None
    return next((s for s in subscriptions if s.query == canonical), None)

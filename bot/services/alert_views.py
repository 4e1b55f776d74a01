"""What an alert shows — the article, its source, the terms that fired, the alert's name, the other
sources carrying the same story — gathered from the database for a batch of outbox rows, ready for
`bot.core.render`; and what the alert message's buttons do.

Button rules:
- Every action names an alert (subscription) and is refused unless that alert belongs to the chat the
  button was pressed in: callback data is written by the client and may be forged.
- "Mute 24 h" sets `muted_until`; "stop this source" adds the source of the article the message
  shows to the alert's `excluded_source_ids`; both are undone by their "Undo" button and take effect
  in the matcher at once.
- A message's keyboard is computed from the database (`keyboard_state`), so what a button shows after
  a press is what is stored, whoever pressed what before.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.render import AlertView
from bot.db import repo
from bot.db import stories as db
from bot.db.models import Chat, Delivery
from bot.services.matcher import Matcher


async def load_alert_views(
    session: AsyncSession, rows: Sequence[Delivery], chats: Mapping[int, Chat]
) -> dict[int, AlertView]:
    """One `AlertView` per alert row id; rows whose article is gone are left out."""
    alert_rows = [r for r in rows if r.kind == "alert" and r.article_id and r.chat_id in chats]
    if not alert_rows:
        return {}
    articles = await repo.get_articles(session, [r.article_id for r in alert_rows])
    sources = await repo.source_names(session)
    story_ids = {a.story_id for a in articles.values() if a.story_id is not None}
    story_sources = await db.story_sources(session, story_ids)
    names: dict[int, str] = {}
    several: set[int] = set()
    # One query for every chat of the batch (a fan-out batch holds hundreds of chats).
    by_chat = await repo.subscriptions_by_chat(session, {r.chat_id for r in alert_rows})
    for chat_id, subscriptions in by_chat.items():
        if len(subscriptions) > 1:
            several.add(chat_id)
        names.update({s.id: s.name or s.query for s in subscriptions})
    views: dict[int, AlertView] = {}
    for row in alert_rows:
        article = articles.get(row.article_id)
        if article is None:
            continue
        chat = chats[row.chat_id]
        story = story_sources.get(article.story_id, []) if article.story_id is not None else []
        also_in = tuple(name for source_id, name in story if source_id != article.source_id)
        views[row.id] = AlertView(
            title=article.title,
            url=article.url or "",
            source_name=sources.get(article.source_id, ("", ""))[0],
            published=article.published_at or article.first_seen_at,
            timezone=chat.timezone,
            summary=article.summary,
            matched_terms=tuple(json.loads(row.matched_terms)) if row.matched_terms else (),
            alert_name=names.get(row.subscription_id) if chat.id in several and row.subscription_id else None,
            also_in=also_in,
            language=chat.language,
        )
    return views


# --- the alert message's buttons -------------------------------------------------------------------

MUTE_FOR = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class AlertButtonState:
    subscription_id: int
    label: str  # the alert's name, else its query
    exists: bool
    muted_until: datetime | None  # set while muted
    stopped_source: tuple[int, str] | None  # the message's source, when stopped for this alert


@dataclass(frozen=True, slots=True)
class AlertKeyboardState:
    language: str
    timezone: str
    alerts: tuple[AlertButtonState, ...]


@dataclass(frozen=True, slots=True)
class SourceStopped:
    source_id: int
    source_name: str


class NotThisChatsAlert(LookupError):
    """The alert does not exist, or belongs to another chat."""


class SourceUnknown(LookupError):
    """The message does not show exactly one source for this alert."""


class AlertActions:
    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        matcher: Matcher,
        *,
        clock: Callable[[], datetime],
        mute_for: timedelta = MUTE_FOR,
    ) -> None:
        self.session_factory = session_factory
        self.matcher = matcher
        self.clock = clock
        self.mute_for = mute_for

    async def keyboard_state(
        self, chat_id: int, subscription_ids: Sequence[int], message_id: int | None = None
    ) -> AlertKeyboardState | None:
        """What the buttons under a message for these alerts show; None for an unknown chat.

        With the message's id (once sent), its alerts and sources are read from the outbox.
        """
        now = self.clock()
        async with self.session_factory() as session:
            chat = await repo.get_chat(session, chat_id)
            if chat is None:
                return None
            sources: Mapping[int | None, list[tuple[int, str]]] = {}
            ids = list(dict.fromkeys(subscription_ids))
            if message_id is not None:
                sources = await db.message_sources(session, chat_id, message_id)
                ids = list(dict.fromkeys([*ids, *(s for s in sources if s is not None)]))
            subscriptions = await db.chat_subscriptions(session, chat_id, ids)
        alerts = []
        for subscription_id in ids:
            sub = subscriptions.get(subscription_id)
            shown = sources.get(subscription_id, [])
            stopped = None
            if sub is not None and len(shown) == 1 and shown[0][0] in (sub.excluded_source_ids or ()):
                stopped = shown[0]
            alerts.append(
                AlertButtonState(
                    subscription_id=subscription_id,
                    label=(sub.name or sub.query) if sub is not None else f"#{subscription_id}",
                    exists=sub is not None,
                    muted_until=sub.muted_until if sub is not None and sub.muted_until and sub.muted_until > now
                    else None,
                    stopped_source=stopped,
                )
            )
        return AlertKeyboardState(language=chat.language, timezone=chat.timezone, alerts=tuple(alerts))

    async def owns(self, chat_id: int, subscription_id: int) -> bool:
        async with self.session_factory() as session:
            return bool(await db.chat_subscriptions(session, chat_id, [subscription_id]))

    async def mute(self, chat_id: int, subscription_id: int) -> datetime:
        """Mutes the alert for `mute_for`; returns until when. Raises `NotThisChatsAlert`."""
        until = self.clock() + self.mute_for
        await self._set_muted(chat_id, subscription_id, until)
        return until

    async def unmute(self, chat_id: int, subscription_id: int) -> None:
        await self._set_muted(chat_id, subscription_id, None)

    async def stop_source(self, chat_id: int, subscription_id: int, message_id: int) -> SourceStopped:
        """Stops, for this alert, the source of the article the message shows."""
        async with self.session_factory() as session, session.begin():
            sub = (await db.chat_subscriptions(session, chat_id, [subscription_id])).get(subscription_id)
            if sub is None:
                raise NotThisChatsAlert(subscription_id)
            shown = (await db.message_sources(session, chat_id, message_id)).get(subscription_id, [])
            if len(shown) != 1:
                raise SourceUnknown(subscription_id)
            source_id, name = shown[0]
            excluded = list(sub.excluded_source_ids or [])
            if source_id not in excluded:
                sub.excluded_source_ids = [*excluded, source_id]
            new_excluded = list(sub.excluded_source_ids or [])
        self.matcher.update_filters(subscription_id, excluded_source_ids=new_excluded)
        return SourceStopped(source_id, name)

    async def restore_source(self, chat_id: int, subscription_id: int, source_id: int) -> None:
        async with self.session_factory() as session, session.begin():
            sub = (await db.chat_subscriptions(session, chat_id, [subscription_id])).get(subscription_id)
            if sub is None:
                raise NotThisChatsAlert(subscription_id)
            remaining = [s for s in (sub.excluded_source_ids or []) if s != source_id]
            sub.excluded_source_ids = remaining or None
        self.matcher.update_filters(subscription_id, excluded_source_ids=remaining)

    async def _set_muted(self, chat_id: int, subscription_id: int, until: datetime | None) -> None:
        async with self.session_factory() as session, session.begin():
            sub = (await db.chat_subscriptions(session, chat_id, [subscription_id])).get(subscription_id)
            if sub is None:
                raise NotThisChatsAlert(subscription_id)
            sub.muted_until = until
        self.matcher.update_filters(subscription_id, muted_until=until)

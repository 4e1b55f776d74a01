"""Stories in the pipeline: each new article joins the story of its nearest near-duplicate or starts
one, and alerts already sent about a story are edited when it grows.

Rules:
- The clustering itself is `bot.core.stories` (SimHash, threshold, window); this module keeps a
  process-wide `StoryIndex` in step with the database: rebuilt at start from the articles first seen
  within the window (`load`), patched as articles are stored, pruned hourly.
- A chat gets one alert per story: alert rows are keyed "story:<id>" (see the poller).
- An alert already sent is edited (an outbox row of kind "edit" carrying the whole re-rendered
  message) when a new source joins its story, or when the article it shows changes its title or
  summary. Never for a message sent more than `edit_window` (48 h) ago, never more than
  `max_edits_per_message` times, and a newer version cancels an older one not yet sent, so a chat's
  message is edited once per change at most, whatever the number of sources.
- A message that coalesced several alerts is re-rendered whole; if it no longer fits one message, it
  is left as it is.
- A row still pending needs no edit: its "also in" line is filled when it is rendered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.render import pack_alerts
from bot.core.stories import (
    DEFAULT_THRESHOLD,
    DEFAULT_WINDOW,
    StoryIndex,
    fingerprint_from_bytes,
)
from bot.db import repo
from bot.db import stories as db
from bot.db.models import Article
from bot.services.alert_views import load_alert_views

log = logging.getLogger(__name__)

EDIT_WINDOW = timedelta(hours=48)
MAX_EDITS_PER_MESSAGE = 20
PRUNE_EVERY = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class StoryAssignment:
    story_id: int
    joined: bool  # the article joined an existing story
    new_source: bool  # ... and its source had not carried the story yet


class StoryClusterer:
    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        clock: Callable[[], datetime],
        *,
        threshold: int = DEFAULT_THRESHOLD,
        window: timedelta = DEFAULT_WINDOW,
        edit_window: timedelta = EDIT_WINDOW,
        max_edits_per_message: int = MAX_EDITS_PER_MESSAGE,
    ) -> None:
        self.session_factory = session_factory
        self.clock = clock
        self.index = StoryIndex(threshold=threshold, window=window)
        self.edit_window = edit_window
        self.max_edits_per_message = max_edits_per_message
        self._last_prune: datetime | None = None
        # Held by the caller from the first `assign` until its transaction commits (see the poller).
        self.lock = asyncio.Lock()

    async def load(self) -> int:
        """Rebuilds the index from the articles first seen within the window; returns how many."""
        now = self.clock()
        async with self.session_factory() as session:
            stored = await db.recent_fingerprints(session, since=now - self.index.window)
        index = StoryIndex(threshold=self.index.threshold, window=self.index.window)
        for row in stored:
            index.add(row.article_id, row.story_id, fingerprint_from_bytes(row.fingerprint), row.published)
        self.index = index
        self._last_prune = now
        log.info("story index built", extra={"articles": len(index)})
        return len(index)

    def prune_if_due(self, now: datetime) -> None:
        if self._last_prune is None or now - self._last_prune >= PRUNE_EVERY:
            self.index.prune(now)
            self._last_prune = now

    async def assign(
        self, session: AsyncSession, article: Article, fp: int, *, now: datetime, words: int | None = None
    ) -> StoryAssignment:
        """Puts a stored (flushed) article in a story, creating one if it has no near-duplicate.

        `words`: how many words the fingerprint was computed from (short texts need closer matches)."""
        published = article.published_at or now
        story_id = self.index.find_story(fp, published, words=words) if fp else None
        if story_id is not None and not await db.story_exists(session, story_id):
            story_id = None  # the transaction that created it was rolled back
        if story_id is None:
            story_id = await db.create_story(session, first_article_id=article.id, now=now)
            article.story_id = story_id
            if fp:  # no words, no fingerprint: such articles are not near-duplicates of each other
                self.index.add(article.id, story_id, fp, published)
            return StoryAssignment(story_id, joined=False, new_source=False)
        others = await db.story_source_ids(session, story_id, excluding_article=article.id)
        article.story_id = story_id
        await session.flush()
        await db.refresh_story_counts(session, story_id, now=now)
        self.index.add(article.id, story_id, fp, published)
        return StoryAssignment(story_id, joined=True, new_source=article.source_id not in others)

    def reindex(self, article: Article, fp: int, *, now: datetime) -> None:
        """An updated article keeps its story; its entry takes the new fingerprint."""
        if article.story_id is not None and fp:
            self.index.add(article.id, article.story_id, fp, article.published_at or now)

    async def plan_edits(
        self,
        session: AsyncSession,
        *,
        story_ids: Iterable[int] = (),
        article_ids: Iterable[int] = (),
        now: datetime,
    ) -> list[db.StoryDelivery]:
        """Edit rows for the sent alerts about these stories or showing these articles."""
        since = now - self.edit_window
        rows = await db.sent_alerts(session, story_ids=story_ids, article_ids=article_ids, sent_since=since)
        planned: list[db.StoryDelivery] = []
        for chat_id, message_id in dict.fromkeys((r.chat_id, r.message_id) for r in rows):
            edit = await self._plan_message_edit(session, chat_id, message_id, since=since)
            if edit is not None:
                planned.append(edit)
        return planned

    async def _plan_message_edit(
        self, session: AsyncSession, chat_id: int, message_id: int, *, since: datetime
    ) -> db.StoryDelivery | None:
        message_rows = await db.alert_rows_of_message(session, chat_id, message_id)
        if not message_rows or any(r.sent_at is None or r.sent_at < since for r in message_rows):
            return None
        chat = await repo.get_chat(session, chat_id)
        if chat is None or not chat.active:
            return None
        views = await load_alert_views(session, message_rows, {chat_id: chat})
        if any(r.id not in views for r in message_rows):
            return None  # an article is gone: better the old text than half a message
        packed = pack_alerts([views[r.id] for r in message_rows])
        if len(packed) != 1:
            return None
        payload = packed[0][1].text
        previous = await db.edits_of_message(session, chat_id, message_id)
        live = [e for e in previous if e.status != "cancelled"]
        if live and live[-1].payload == payload:
            return None
        if len(live) >= self.max_edits_per_message:
            log.info("edit limit reached", extra={"chat": chat_id, "message_id": message_id})
            return None
        await db.cancel_pending_edits(session, chat_id, message_id, reason="superseded by a newer edit")
        first = message_rows[0]
        return db.StoryDelivery(
            chat_id=chat_id,
            kind="edit",
            dedup_key=f"edit:{first.id}:{len(previous) + 1}",
            article_id=first.article_id,
            story_id=first.story_id,
            subscription_id=first.subscription_id,
            payload=payload,
            edit_message_id=message_id,
        )

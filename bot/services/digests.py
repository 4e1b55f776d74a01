"""Digests: the minute tick that turns held alerts into digest messages, and the chat's answers to them.

Rules (issue #7):
- Held alerts (`status = held`, see `bot.services.delivery`) whose release time has come are bundled
  per chat into one digest (`bot.core.digest`): grouped by alert, best first, one entry per story.
  The digest's parts become outbox rows (kind ``digest``) in the same transaction that marks the held
  alerts ``digested``: a crash before the commit leaves everything held for the next tick, a crash
  after it leaves the rows to the deliverer; a digest is never made twice. Its dedup key is
  ``digest:<first held row id>:<part>``, unique because a row is bundled once.
- All scheduling state is in the database (held rows and their release times), so the tick is dumb:
  no job per user that a restart could lose. A late tick simply finds more due rows.
- Parts beyond the first `max_messages` are ``parked``; the "more" button under the last part sent
  releases the next batch.
- The noise guard's undo button puts the alert back on instant delivery and releases what it held.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.digest import DigestItem, DigestLabels, compose_digest
from bot.db import outbox, repo
from bot.db.models import Chat, Delivery, Subscription
from bot.i18n import Gettext, translator
from bot.services.delivery import Buttons

log = logging.getLogger(__name__)


def digest_labels(_: Gettext) -> DigestLabels:
    return DigestLabels(
        header=_("📬 <b>Digest</b> — {count} articles"),
        header_one=_("📬 <b>Digest</b> — 1 article"),
        continued=_("(continued)"),
        more=_("➕ {count} more"),
    )


@dataclass
class DigestService:
    session_factory: async_sessionmaker[AsyncSession]
    clock: Callable[[], datetime]
    buttons: Buttons | None = None
    max_messages: int = 3
    chats_per_round: int = 200

    async def tick(self, max_rounds: int = 100) -> int:
        """Bundles every due held alert; returns how many digest messages were queued."""
        queued = 0
        for _ in range(max_rounds):
            now = self.clock()
            async with self.session_factory() as session, session.begin():
                rows = await outbox.due_held_deliveries(session, now=now, limit=self.chats_per_round)
                if not rows:
                    break
                by_chat: dict[int, list[Delivery]] = {}
                for row in rows:
                    by_chat.setdefault(row.chat_id, []).append(row)
                for chat_id, chat_rows in by_chat.items():
                    queued += await self._bundle_chat(session, chat_id, chat_rows, now)
        return queued

    async def _bundle_chat(self, session: AsyncSession, chat_id: int, rows: Sequence[Delivery], now: datetime) -> int:
        chat = await repo.get_chat(session, chat_id)
        ids = [r.id for r in rows]
        if chat is None:
            await outbox.mark_digested(session, ids, note="chat gone")
            return 0
        items = await self._items(session, chat, rows)
        _ = translator(chat.language)
        digest = compose_digest(items, digest_labels(_), max_messages=self.max_messages)
        bundle = min(ids)
        thread = rows[0].message_thread_id
        new_rows = []
        for index, part in enumerate(digest.parts):
            markup = None
            if part.more and self.buttons is not None:
                markup = self.buttons.digest_more(bundle, index + 1, _("Show more"))
            new_rows.append(outbox.NewDelivery(
                chat_id=chat.id, kind="digest", dedup_key=f"digest:{bundle}:{index}", payload=part.html,
                reply_markup=markup, message_thread_id=thread,
                status="pending" if index < digest.batch else "parked",
            ))
        await outbox.enqueue_deliveries(session, new_rows, now=now)
        await outbox.mark_digested(session, ids, note=f"digest:{bundle}")
        subscriptions = await outbox.get_subscriptions(session, [r.subscription_id for r in rows if r.subscription_id])
        for subscription in subscriptions.values():
            subscription.last_digest_at = now
        log.info("digest queued", extra={"chat": chat.id, "alerts": len(rows), "entries": len(digest.kept),
                                         "parts": len(digest.parts)})
        return min(len(digest.parts), digest.batch)

    async def _items(self, session: AsyncSession, chat: Chat, rows: Sequence[Delivery]) -> list[DigestItem]:
        articles = await repo.get_articles(session, [r.article_id for r in rows if r.article_id])
        sources = await repo.source_names(session)
        subscriptions = await outbox.get_subscriptions(session, [r.subscription_id for r in rows if r.subscription_id])
        outlets = await outbox.story_outlets(session, [a.story_id for a in articles.values() if a.story_id])
        items = []
        for row in rows:
            article = articles.get(row.article_id or -1)
            if article is None:
                continue  # the article was removed: nothing to show
            subscription = subscriptions.get(row.subscription_id or -1)
            items.append(DigestItem(
                alert_id=subscription.id if subscription else 0,
                alert_name=(subscription.name or subscription.query) if subscription else "",
                article_id=article.id,
                title=article.title,
                url=article.url or "",
                source_name=sources.get(article.source_id, ("", ""))[0],
                published=article.published_at or article.first_seen_at,
                story_id=article.story_id,
                outlets=outlets.get(article.story_id, 1) if article.story_id else 1,
                row_id=row.id,
            ))
        return items

    async def more(self, chat_id: int, bundle: int, part: int) -> int:
        """Releases the next batch of a digest's parked parts; returns how many."""
        keys = [f"digest:{bundle}:{index}" for index in range(part, part + self.max_messages)]
        async with self.session_factory() as session, session.begin():
            return await outbox.release_parked(session, chat_id, keys, now=self.clock())

    async def undo_throttle(self, chat_id: int, subscription_id: int) -> Subscription | None:
        """Instant delivery again for this alert; returns it, or None if it is not this chat's."""
        async with self.session_factory() as session, session.begin():
            subscription = await repo.get_subscription(session, subscription_id)
            if subscription is None or subscription.chat_id != chat_id:
                return None
            await outbox.set_throttle(session, subscription_id, until=None)
            released = await outbox.release_held_for_subscription(session, subscription_id, now=self.clock())
            log.info("noise guard undone", extra={"chat": chat_id, "subscription": subscription_id,
                                                  "released": released})
            return subscription

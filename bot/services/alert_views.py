"""What an alert shows: the article, its source, the terms that fired, the alert's name — gathered from
the database for a batch of outbox rows, ready for `bot.core.render`."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.render import AlertView
from bot.db import repo
from bot.db.models import Chat, Delivery


async def load_alert_views(
    session: AsyncSession, rows: Sequence[Delivery], chats: Mapping[int, Chat]
) -> dict[int, AlertView]:
    """One `AlertView` per alert row id; rows whose article is gone are left out."""
    alert_rows = [r for r in rows if r.kind == "alert" and r.article_id and r.chat_id in chats]
    if not alert_rows:
        return {}
    articles = await repo.get_articles(session, [r.article_id for r in alert_rows])
    sources = await repo.source_names(session)
    names: dict[int, str] = {}
    several: set[int] = set()
    for chat_id in {r.chat_id for r in alert_rows}:
        subscriptions = await repo.list_subscriptions(session, chat_id)
        if len(subscriptions) > 1:
            several.add(chat_id)
        names.update({s.id: s.name or s.query for s in subscriptions})
    views: dict[int, AlertView] = {}
    for row in alert_rows:
        article = articles.get(row.article_id)
        if article is None:
            continue
        chat = chats[row.chat_id]
        views[row.id] = AlertView(
            title=article.title,
            url=article.url or "",
            source_name=sources.get(article.source_id, ("", ""))[0],
            published=article.published_at or article.first_seen_at,
            timezone=chat.timezone,
            summary=article.summary,
            matched_terms=tuple(json.loads(row.matched_terms)) if row.matched_terms else (),
            alert_name=names.get(row.subscription_id) if chat.id in several and row.subscription_id else None,
            language=chat.language,
        )
    return views

"""/preview: what a query would have matched among the articles stored over the last days.

Rules:
- The articles looked at are those first seen in the last `days` days (7 by default), at most
  `max_articles` of them, newest first: the preview answers in a moment even on a busy instance.
- Matching is the alert's own (`match_query`, the same rules as the live index), on the same
  document the poller builds (title, then full text or summary, source name and URL, language).
- The result is the count, the `newest` few matches and the count per source (largest first).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.matching import Document, match_query
from bot.core.query import Query, QueryLimits, parse_query
from bot.db import chat_queries
from bot.db.chat_queries import StoredArticle

PREVIEW_DAYS = 7
PREVIEW_NEWEST = 5
MAX_PREVIEW_ARTICLES = 20_000


@dataclass(frozen=True, slots=True)
class PreviewResult:
    query: Query
    days: int
    scanned: int
    count: int
    newest: tuple[StoredArticle, ...]
    per_source: tuple[tuple[str, int], ...]


def preview_matches(query: Query, articles: list[StoredArticle], *, days: int, newest: int) -> PreviewResult:
    """Pure: match `articles` (newest first) against `query`."""
    matched: list[StoredArticle] = []
    for article in articles:
        document = Document(
            title=article.title, text=article.text, source_name=article.source_name,
            source_url=article.source_url, lang=article.language,
        )
        if match_query(query, document) is not None:
            matched.append(article)
    per_source = Counter(a.source_name for a in matched)
    ranked = tuple(sorted(per_source.items(), key=lambda item: (-item[1], item[0].casefold())))
    return PreviewResult(query, days, len(articles), len(matched), tuple(matched[:newest]), ranked)


class PreviewService:
    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        *,
        limits: QueryLimits,
        clock: Callable[[], datetime],
        days: int = PREVIEW_DAYS,
        max_articles: int = MAX_PREVIEW_ARTICLES,
    ) -> None:
        self.session_factory = session_factory
        self.limits = limits
        self.clock = clock
        self.days = days
        self.max_articles = max_articles

    async def preview(self, text: str, *, newest: int = PREVIEW_NEWEST) -> PreviewResult:
        """Raises `QueryError` for a query the alert itself would refuse."""
        query = parse_query(text, self.limits)
        since = self.clock() - timedelta(days=self.days)
        async with self.session_factory() as session:
            articles = await chat_queries.articles_seen_since(session, since, limit=self.max_articles)
        return preview_matches(query, articles, days=self.days, newest=newest)

"""Polling: due sources → fetch → parse → new or changed items → text → summary → store → match → outbox.

Rules:
- The scheduler keeps no state: a tick asks the database which sources are due and leases them, so a
  restart or a second poller loses and duplicates nothing.
- Each source is polled in its own task under a global concurrency cap; one slow or broken source
  never delays the others (the tick does not wait for it).
- What counts as new: an item whose key (GUID, canonical link, or hash of title+date) this source has
  never stored. An item whose content changed is an update, never a second alert.
- A source's first successful poll stores what the feed already carries without alerting (nobody
  wants fifty old stories the minute a source is added); every later new item alerts.
- Failures are values: recorded on the source (kind, status, message, time, streak), backed off, and
  after `source_error_limit` in a row the source is disabled and the admins are told once.
- Every stored article is fingerprinted and put in a story (`bot.services.stories`); a chat gets one
  alert per story (outbox rows keyed "story:<id>"), and an alert already sent is edited when a new
  source joins its story or its own article changes (title or summary). Clustering happens on the
  first poll too, so a later article from another outlet joins the backfilled story.
- An alert fires only if its filters allow it: not paused, not muted now, the source chosen (or all)
  and not stopped for it (`bot.services.matcher`).
- Text cleaning, language detection, summaries and fingerprints are CPU work: they run in the
  default executor, never on the event loop.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.feeds import FeedItem, FeedParseError, ParsedFeed, parse_feed
from bot.core.language import detect_language
from bot.core.matching import Document
from bot.core.polling import PollPolicy, next_check_at, parse_cache_headers
from bot.core.render import escape
from bot.core.stories import FINGERPRINT_WORDS, fingerprint, fingerprint_to_bytes
from bot.core.summary import clean_text, summarize
from bot.core.text import normalize_words
from bot.core.websub import hub_of_fetch
from bot.db import repo
from bot.db import stories as story_db
from bot.db.models import Article, Source
from bot.db.websub import record_hub
from bot.fetcher.extract import ExtractedArticle, extract_article, needs_full_text
from bot.fetcher.http import Fetcher, FetchError, FetchResult
from bot.services.matcher import Matcher
from bot.services.stories import StoryClusterer

log = logging.getLogger(__name__)

MAX_TEXT_CHARS = 100_000
MAX_FULL_TEXT_FETCHES_PER_POLL = 20


@dataclass(frozen=True, slots=True)
class SourceState:
    """What a poll needs to know of a source, detached from the session that loaded it."""

    id: int
    url: str
    name: str
    language: str | None
    etag: str | None
    last_modified: str | None
    body_hash: str | None
    error_streak: int
    first_poll: bool

    @classmethod
    def of(cls, source: Source) -> SourceState:
        return cls(
            id=source.id,
            url=source.url,
            name=source.name,
            language=source.language,
            etag=source.etag,
            last_modified=source.last_modified,
            body_hash=source.body_hash,
            error_streak=source.error_streak,
            first_poll=source.last_success_at is None,
        )


@dataclass(slots=True)
class PollReport:
    source_id: int
    outcome: str  # ok | not_modified | unchanged | error
    new_articles: int = 0
    updated_articles: int = 0
    alerts: int = 0
    edits: int = 0
    error: str | None = None
    elapsed_ms: float = 0.0


@dataclass(slots=True)
class _PreparedItem:
    item: FeedItem
    text: str
    summary: str
    language: str | None
    url: str | None
    title: str
    fingerprint: int
    fingerprint_words: int  # how many words the fingerprint read: short texts need closer matches


@dataclass(slots=True)
class _PreparedUpdate:
    item: FeedItem
    summary: str | None  # None: the stored article has its own full text, its summary stays
    fingerprint: int


@dataclass(slots=True)
class PollerConfig:
    policy: PollPolicy
    error_limit: int = 10
    summary_max_chars: int = 400
    fetch_full_text: bool = True
    concurrency: int = 50
    lease: timedelta = timedelta(minutes=5)
    admin_ids: frozenset[int] = frozenset()


@dataclass
class Poller:
    session_factory: async_sessionmaker[AsyncSession]
    fetcher: Fetcher
    matcher: Matcher
    config: PollerConfig
    clock: Callable[[], datetime]
    owner: str = "poller"
    on_alerts: Callable[[], None] | None = None
    stories: StoryClusterer | None = None  # built from session_factory and clock when not given
    _running: set[asyncio.Task[PollReport]] = field(default_factory=set)
    _saturated: bool = False
    _closing: bool = False
    _refill: asyncio.Task[None] | None = None
    _semaphore: asyncio.Semaphore | None = None

    def __post_init__(self) -> None:
        if self.stories is None:
            self.stories = StoryClusterer(self.session_factory, self.clock)

    # --- scheduling ---------------------------------------------------------------------------

    async def tick(self) -> int:
        """Starts a task for every due source this process can take now; returns how many started."""
        free = self.config.concurrency * 2 - len(self._running)
        if free <= 0:
            return 0
        async with self.session_factory() as session, session.begin():
            sources = await repo.claim_due_sources(
                session, now=self.clock(), owner=self.owner, lease=self.config.lease, limit=free
            )
            states = [SourceState.of(s) for s in sources]
        # A tick that filled every free slot may have left due sources behind: claim again as soon as a
        # slot frees, instead of waiting for the next tick (5,000 feeds would otherwise be capped at
        # 2 × concurrency per tick).
        self._saturated = len(states) == free
        for state in states:
            task = asyncio.create_task(self.poll_source(state), name=f"poll-source-{state.id}")
            self._running.add(task)
            task.add_done_callback(self._poll_done)
        return len(states)

    def _poll_done(self, task: asyncio.Task[PollReport]) -> None:
        self._running.discard(task)
        if self._saturated and not self._closing and self._refill is None:
            self._refill = asyncio.get_running_loop().create_task(self._refill_tick(), name="poll-refill")

    async def _refill_tick(self) -> None:
        try:
            await self.tick()
        except Exception:
            log.exception("refill tick failed")
        finally:
            self._refill = None

    async def poll_all_due(self) -> list[PollReport]:
        """Polls every due source and waits for all of them (CLI and tests)."""
        reports: list[PollReport] = []
        for _ in range(10_000):
            async with self.session_factory() as session, session.begin():
                sources = await repo.claim_due_sources(
                    session, now=self.clock(), owner=self.owner, lease=self.config.lease, limit=500
                )
                states = [SourceState.of(s) for s in sources]
            if not states:
                break
            reports.extend(await asyncio.gather(*(self.poll_source(s) for s in states)))
        return reports

    async def drain(self, timeout: float) -> None:
        """Waits for in-flight polls (shutdown); those still running after `timeout` are cancelled,
        and their leases expire so the next start polls them again."""
        self._closing = True
        if not self._running:
            return
        done, pending = await asyncio.wait(set(self._running), timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=1)

    # --- one source ---------------------------------------------------------------------------

    async def poll_source(self, state: SourceState) -> PollReport:
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.config.concurrency)
        started = time.perf_counter()
        async with self._semaphore:
            try:
                report = await self._poll(state)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # A bug must surface loudly, but must not leave the source leased and silent forever.
                log.exception("poll crashed", extra={"source": state.id, "url": state.url})
                report = PollReport(state.id, "error", error=f"internal error: {exc!r}")
                await self._record_failure(state, "internal", None, f"internal error: {exc!r}", None)
        report.elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
        log.info(
            "polled",
            extra={
                "source": state.id,
                "status": report.outcome,
                "new": report.new_articles,
                "updated": report.updated_articles,
                "alerts": report.alerts,
                "edits": report.edits,
                "elapsed_ms": report.elapsed_ms,
                **({"error": report.error} if report.error else {}),
            },
        )
        if (report.alerts or report.edits) and self.on_alerts is not None:
            self.on_alerts()
        return report

    async def _poll(self, state: SourceState) -> PollReport:
        try:
            result = await self.fetcher.fetch(state.url, etag=state.etag, last_modified=state.last_modified)
        except FetchError as exc:
            await self._record_failure(state, exc.kind, exc.status, str(exc), exc.retry_after_seconds)
            return PollReport(state.id, "error", error=str(exc))

        if result.not_modified or (
            result.body_hash is not None and result.body_hash == state.body_hash and not state.first_poll
        ):
            await self._record_success(state, result, None, not_modified=True)
            return PollReport(state.id, "not_modified" if result.not_modified else "unchanged")

        loop = asyncio.get_running_loop()
        try:
            feed = await loop.run_in_executor(
                None,
                functools.partial(
                    parse_feed, result.body or b"", url=result.url, content_type=result.content_type
                ),
            )
        except FeedParseError as exc:
            await self._record_failure(state, "parse", result.status, str(exc), None)
            return PollReport(state.id, "error", error=str(exc))

        async with self.session_factory() as session:
            known = await repo.known_article_keys(session, state.id, [i.key for i in feed.items])
        fresh = [i for i in feed.items if i.key not in known]
        changed = [i for i in feed.items if i.key in known and i.content_hash != known[i.key].content_hash]
        prepared = await self._prepare(state, fresh, full_text=not state.first_poll)
        updates = await self._prepare_updates(changed, known)
        report = await self._store(state, result, feed, prepared, updates)
        return report

    async def _prepare_updates(
        self, items: Sequence[FeedItem], known: dict[str, Article]
    ) -> list[_PreparedUpdate]:
        loop = asyncio.get_running_loop()
        updates: list[_PreparedUpdate] = []
        for item in items:
            article = known[item.key]
            updates.append(
                await loop.run_in_executor(
                    None,
                    functools.partial(
                        _prepare_update, item, article.text, article.language, self.config.summary_max_chars
                    ),
                )
            )
        return updates

    async def _prepare(self, state: SourceState, items: Sequence[FeedItem], *, full_text: bool) -> list[_PreparedItem]:
        loop = asyncio.get_running_loop()
        budget = MAX_FULL_TEXT_FETCHES_PER_POLL if (full_text and self.config.fetch_full_text) else 0
        prepared: list[_PreparedItem] = []
        for item in items:
            extracted: ExtractedArticle | None = None
            if budget > 0 and item.url and needs_full_text(item):
                budget -= 1
                extracted = await self._fetch_full_text(item.url)
            prepared.append(
                await loop.run_in_executor(
                    None,
                    functools.partial(
                        _prepare_item, item, extracted, state.language, self.config.summary_max_chars
                    ),
                )
            )
        return prepared

    async def _fetch_full_text(self, url: str) -> ExtractedArticle | None:
        try:
            page = await self.fetcher.fetch(url, accept="text/html,application/xhtml+xml;q=0.9,*/*;q=0.5")
        except FetchError as exc:
            log.info("article page not fetched", extra={"url": url, "error": str(exc)})
            return None
        if not page.body:
            return None
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, functools.partial(extract_article, page.body, url=page.url))

    async def _store(
        self,
        state: SourceState,
        result: FetchResult,
        feed: ParsedFeed,
        prepared: Sequence[_PreparedItem],
        updates: Sequence[_PreparedUpdate],
    ) -> PollReport:
        now = self.clock()
        report = PollReport(state.id, "ok")
        stories = self.stories
        assert stories is not None
        stories.prune_if_due(now)
        # One store at a time in this process: an article must see the story another poll's article
        # started, which it cannot before that transaction commits (PostgreSQL runs them concurrently).
        async with stories.lock, self.session_factory() as session, session.begin():
            known = await repo.known_article_keys(session, state.id, [p.item.key for p in prepared])
            new_articles: list[tuple[Article, _PreparedItem]] = []
            for p in prepared:
                if p.item.key in known:  # another poller stored it meanwhile
                    continue
                article = await repo.add_article(
                    session,
                    Article(
                        source_id=state.id,
                        key=p.item.key,
                        url=p.url,
                        title=p.title,
                        summary=p.summary,
                        text=p.text or None,
                        author=p.item.author,
                        language=p.language,
                        content_hash=p.item.content_hash,
                        fingerprint=fingerprint_to_bytes(p.fingerprint),
                        published_at=p.item.published,
                        first_seen_at=now,
                    ),
                )
                new_articles.append((article, p))
            report.new_articles = len(new_articles)

            grown_stories: list[int] = []
            for article, p in new_articles:
                assignment = await stories.assign(session, article, p.fingerprint, now=now, words=p.fingerprint_words)
                if assignment.joined and assignment.new_source:
                    grown_stories.append(assignment.story_id)

            retitled: list[int] = []
            if updates:
                existing = await repo.known_article_keys(session, state.id, [u.item.key for u in updates])
                for update in updates:
                    article = existing.get(update.item.key)
                    if article is None:
                        continue
                    shown = (article.title, article.summary)
                    article.title = update.item.title or article.title
                    if update.summary is not None:
                        article.summary = update.summary or article.summary
                    article.content_hash = update.item.content_hash
                    article.fingerprint = fingerprint_to_bytes(update.fingerprint)
                    article.updated_at = now
                    stories.reindex(article, update.fingerprint, now=now)
                    if (article.title, article.summary) != shown:
                        retitled.append(article.id)
                report.updated_articles = len(updates)

            if not state.first_poll:
                rows: list[story_db.StoryDelivery] = []
                for article, p in new_articles:
                    document = Document(
                        title=article.title,
                        text=p.text or p.summary,
                        source_name=state.name,
                        source_url=state.url,
                        lang=article.language,
                    )
                    for hit in self.matcher.match(document, source_id=state.id, now=now):
                        terms = list(hit.match.terms)  # not hits: spans are not stored, only what fired
                        rows.append(
                            story_db.StoryDelivery(
                                chat_id=hit.target.chat_id,
                                kind="alert",
                                # One alert per story and chat, whichever source and alert fired it.
                                dedup_key=f"story:{article.story_id}",
                                article_id=article.id,
                                story_id=article.story_id,
                                subscription_id=hit.target.subscription_id,
                                matched_terms=terms,
                                message_thread_id=hit.target.message_thread_id,
                            )
                        )
                report.alerts = await story_db.enqueue_story_deliveries(session, rows, now=now)

            if grown_stories or retitled:
                await session.flush()
                edits = await stories.plan_edits(session, story_ids=grown_stories, article_ids=retitled, now=now)
                report.edits = await story_db.enqueue_story_deliveries(session, edits, now=now)

            source = await repo.get_source(session, state.id)
            if source is not None:
                self._apply_success(source, result, feed, now, not_modified=False)
        return report

    # --- bookkeeping ------------------------------------------------------------------------------

    async def _record_success(
        self, state: SourceState, result: FetchResult, feed: ParsedFeed | None, *, not_modified: bool
    ) -> None:
        async with self.session_factory() as session, session.begin():
            source = await repo.get_source(session, state.id)
            if source is not None:
                # No feed to read publication times from: use the stored ones, so an unchanged feed
                # keeps the interval learnt from its rhythm instead of falling back to the default.
                published = await repo.recent_publish_times(session, state.id) if feed is None else None
                self._apply_success(source, result, feed, self.clock(), not_modified=not_modified,
                                    published=published)

    def _apply_success(
        self, source: Source, result: FetchResult, feed: ParsedFeed | None, now: datetime, *, not_modified: bool,
        published: Sequence[datetime] | None = None,
    ) -> None:
        max_age, expires, _ = parse_cache_headers(result.headers, now)
        if published is None:
            published = [i.published for i in feed.items if i.published] if feed else []
        source.next_check_at = next_check_at(
            now,
            policy=self.config.policy,
            outcome="not_modified" if not_modified else "ok",
            error_streak=0,
            ttl_seconds=feed.ttl_seconds if feed else None,
            cache_max_age=max_age,
            expires=expires,
            retry_after_seconds=None,
            recent_publish_times=published,
            source_id=source.id,
        )
        source.interval_seconds = (source.next_check_at - now).total_seconds()
        if result.etag or result.last_modified or not not_modified:
            source.etag = result.etag or (source.etag if not_modified else None)
            source.last_modified = result.last_modified or (source.last_modified if not_modified else None)
        if result.body_hash:
            source.body_hash = result.body_hash
        if result.permanent_redirect:
            source.url = result.permanent_redirect
        if feed is not None and feed.site_url and not source.site_url:
            source.site_url = feed.site_url
        if feed is not None:
            # WebSub: remember the hub the feed advertises; the WebSub service subscribes in webhook mode.
            record_hub(source, hub_of_fetch(fetched_url=result.url, hub_url=feed.hub_url, self_url=feed.self_url,
                                            headers=result.headers))
        source.polls += 1
        source.not_modified_polls += 1 if not_modified else 0
        source.last_checked_at = source.last_success_at = now
        source.error_streak = 0
        source.lease_owner, source.lease_until = None, None

    async def _record_failure(
        self, state: SourceState, kind: str, status: int | None, message: str, retry_after: float | None
    ) -> None:
        now = self.clock()
        async with self.session_factory() as session, session.begin():
            source = await repo.get_source(session, state.id)
            if source is None:
                return
            source.error_streak += 1
            source.polls += 1
            source.last_error_kind, source.last_error_status = kind, status
            source.last_error_message, source.last_error_at = message[:2000], now
            source.last_checked_at = now
            source.lease_owner, source.lease_until = None, None
            source.next_check_at = next_check_at(
                now,
                policy=self.config.policy,
                outcome="error",
                error_streak=source.error_streak,
                ttl_seconds=None,
                cache_max_age=None,
                expires=None,
                retry_after_seconds=retry_after,
                recent_publish_times=(),
                source_id=source.id,
            )
            source.interval_seconds = (source.next_check_at - now).total_seconds()
            if source.error_streak >= self.config.error_limit and source.enabled:
                source.enabled = False
                source.disabled_reason = f"{source.error_streak} failures in a row; last: {message[:300]}"
                log.warning("source disabled", extra={"source": source.id, "streak": source.error_streak})
                await self._notify_disabled(session, source, message, now)

    async def _notify_disabled(self, session: AsyncSession, source: Source, message: str, now: datetime) -> None:
        text = (
            f"⚠️ Source <b>{escape(source.name)}</b> disabled after {source.error_streak} failed polls "
            f"in a row.\nLast error: {escape(message[:300])}\nRe-enable it with "
            f"<code>veille sources enable {source.id}</code>."
        )
        rows = []
        for admin_id in sorted(self.config.admin_ids):
            if await repo.get_chat(session, admin_id) is None:
                continue  # the admin never opened the bot: Telegram would refuse the message
            rows.append(
                repo.NewDelivery(
                    chat_id=admin_id,
                    kind="notice",
                    dedup_key=f"source-disabled:{source.id}:{now:%Y%m%d%H%M}",
                    payload=text,
                )
            )
        await repo.enqueue_deliveries(session, rows, now=now)


def _prepare_item(
    item: FeedItem, extracted: ExtractedArticle | None, source_language: str | None, max_chars: int
) -> _PreparedItem:
    """CPU-bound part of taking in one item (runs in an executor): text, language, summary, fingerprint."""
    text = ""
    if extracted is not None and extracted.text:
        text = extracted.text
    elif item.content_text:
        text = item.content_text
    text = clean_text(text)[:MAX_TEXT_CHARS] if text else ""
    basis = text or clean_text(item.summary)
    language = (
        item.language
        or (extracted.language if extracted else None)
        or detect_language(f"{item.title}. {basis[:2000]}")
        or source_language
    )
    language = language.split("-")[0].lower() if language else None
    summary = summarize(basis, language=language, max_chars=max_chars, title=item.title)
    title = item.title or (extracted.title if extracted and extracted.title else "") or (item.url or "")
    url = item.url or (extracted.canonical_url if extracted else None)
    words = normalize_words(f"{title} {basis}")
    return _PreparedItem(
        item=item, text=text, summary=summary, language=language, url=url, title=title,
        fingerprint=fingerprint(words), fingerprint_words=min(len(words), FINGERPRINT_WORDS),
    )


def _prepare_update(
    item: FeedItem, stored_text: str | None, language: str | None, max_chars: int
) -> _PreparedUpdate:
    """CPU-bound part of taking in a changed item (runs in an executor): summary and fingerprint."""
    basis = clean_text(item.content_text or item.summary)
    summary = None if stored_text else summarize(basis, language=language, max_chars=max_chars, title=item.title)
    return _PreparedUpdate(
        item=item, summary=summary, fingerprint=fingerprint(normalize_words(f"{item.title} {stored_text or basis}"))
    )

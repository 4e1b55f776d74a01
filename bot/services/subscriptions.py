"""Chats and their alerts: the business rules behind /subscribe, /list, /unsubscribe, /pause,
/resume, the alert buttons, /export and /import.

Rules:
- A query is validated by the query parser and stored in its canonical form, so `OTAN  azerbaïdjan`
  and `OTAN azerbaïdjan` are the same alert; subscribing twice to the same query is not an error
  (the existing alert is returned). Editing an alert into another alert's query is refused.
- A chat holds at most `max_alerts_per_chat` alerts (an import stops at the limit).
- `/unsubscribe` takes the alert's id (as `/list` shows it, `#12` or `12`) or its query text.
- Delivery modes are stored as `mode` "instant" | "daily" | "weekly", `digest_time` "HH:MM" (local
  time of the chat) for daily and weekly, `digest_weekday` 0 = Monday for weekly.
- Sources: `source_ids` None means every source; a list means only those.
- The in-memory index is patched in the same call, after the commit, so a change takes effect on
  the very next poll: a paused alert leaves the index, a resumed or edited one (re)enters it.
- An export is JSON (`{"veille": "alerts", "version": 1, "alerts": [...]}`) naming sources by URL,
  so it can be imported on another instance.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.query import QueryError, QueryLimits, parse_query
from bot.db import chat_queries, repo
from bot.db.models import Chat, Subscription
from bot.errors import VeilleError
from bot.services.matcher import Matcher

MODES = ("instant", "daily", "weekly")
DEFAULT_DIGEST_TIME = "08:00"
EXPORT_FORMAT = "alerts"
EXPORT_VERSION = 1
MAX_IMPORT_BYTES = 1024 * 1024


class AlertLimitReached(VeilleError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"this chat already has {limit} alerts, the most allowed")
        self.limit = limit


class AlertNotFound(VeilleError):
    def __init__(self, subscription_id: int) -> None:
        super().__init__(f"no alert #{subscription_id} in this chat")
        self.subscription_id = subscription_id


class DuplicateAlert(VeilleError):
    def __init__(self, existing: Subscription) -> None:
        super().__init__(f"this chat already follows this query (alert #{existing.id})")
        self.existing = existing


class BadImportFile(VeilleError):
    """The file is not a Veille alerts export; the message says why."""


@dataclass(frozen=True, slots=True)
class ChatInfo:
    id: int
    type: str
    title: str | None = None
    username: str | None = None
    is_forum: bool = False


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


@dataclass(frozen=True, slots=True)
class AlertPage:
    alerts: Sequence[Subscription]
    page: int
    pages: int
    total: int


@dataclass(slots=True)
class ImportReport:
    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    invalid: list[tuple[str, QueryError]] = field(default_factory=list)
    over_limit: list[str] = field(default_factory=list)


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
        """Records the chat (and the user) on every contact; returns the stored chat.

        A new user's first updates arrive together (aiogram handles updates concurrently): when another
        update created the same row first, the insert fails on its key and is retried as an update.
        """
        try:
            return await self._register(chat, user, language)
        except IntegrityError:
            return await self._register(chat, user, language)

    async def _register(self, chat: ChatInfo, user: UserInfo | None, language: str) -> Chat:
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
            if chat.is_forum and not stored.is_forum:
                stored.is_forum = True
        return stored

    # --- creating and deleting ---------------------------------------------------------------

    async def subscribe(
        self,
        chat_id: int,
        text: str,
        *,
        user_id: int | None,
        message_thread_id: int | None = None,
        mode: str = "instant",
        digest_time: str | None = None,
        digest_weekday: int | None = None,
    ) -> SubscribeResult:
        query = parse_query(text, self.limits)  # raises QueryError with a friendly message
        canonical = query.text
        mode, digest_time, digest_weekday = _checked_mode(mode, digest_time, digest_weekday)
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
            if mode != "instant":
                subscription.mode, subscription.digest_time = mode, digest_time
                subscription.digest_weekday = digest_weekday
                await session.flush()
        self.matcher.add(
            repo.ActiveSubscription(subscription.id, chat_id, canonical, message_thread_id), query
        )
        return SubscribeResult(subscription, created=True)

    async def list(self, chat_id: int) -> Sequence[Subscription]:
        async with self.session_factory() as session:
            return await repo.list_subscriptions(session, chat_id)

    async def page(self, chat_id: int, page: int, per_page: int) -> AlertPage:
        """Page `page` (0-based, clamped to the last page) of the chat's alerts."""
        async with self.session_factory() as session:
            alerts, total = await chat_queries.page_of_subscriptions(
                session, chat_id, offset=max(page, 0) * per_page, limit=per_page
            )
            pages = max(1, -(-total // per_page))
            if page >= pages:
                page = pages - 1
                alerts, total = await chat_queries.page_of_subscriptions(
                    session, chat_id, offset=page * per_page, limit=per_page
                )
        return AlertPage(alerts, max(page, 0), pages, total)

    async def get(self, chat_id: int, subscription_id: int) -> Subscription:
        async with self.session_factory() as session:
            subscription = await chat_queries.chat_subscription(session, chat_id, subscription_id)
        if subscription is None:
            raise AlertNotFound(subscription_id)
        return subscription

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

    async def delete(self, chat_id: int, subscription_id: int) -> Subscription:
        async with self.session_factory() as session, session.begin():
            target = await chat_queries.chat_subscription(session, chat_id, subscription_id)
            if target is None:
                raise AlertNotFound(subscription_id)
            await repo.delete_subscription(session, target.id)
        self.matcher.remove(target.id)
        return target

    # --- changing one alert ------------------------------------------------------------------

    async def set_paused(self, chat_id: int, subscription_id: int, paused: bool) -> Subscription:
        return await self._change(chat_id, subscription_id, paused=paused)

    async def set_mode(
        self,
        chat_id: int,
        subscription_id: int,
        mode: str,
        *,
        digest_time: str | None = None,
        digest_weekday: int | None = None,
    ) -> Subscription:
        mode, digest_time, digest_weekday = _checked_mode(mode, digest_time, digest_weekday)
        return await self._change(
            chat_id, subscription_id, mode=mode, digest_time=digest_time, digest_weekday=digest_weekday
        )

    async def set_sources(self, chat_id: int, subscription_id: int, source_ids: list[int] | None) -> Subscription:
        """None: every source; a list: only those (an empty list means every source too)."""
        chosen = sorted(set(source_ids)) if source_ids else None
        return await self._change(chat_id, subscription_id, source_ids=chosen)

    async def toggle_source(self, chat_id: int, subscription_id: int, source_id: int) -> Subscription:
        current = await self.get(chat_id, subscription_id)
        chosen = set(current.source_ids or ())
        chosen.symmetric_difference_update({source_id})
        return await self.set_sources(chat_id, subscription_id, sorted(chosen))

    async def edit_query(self, chat_id: int, subscription_id: int, text: str) -> Subscription:
        """Raises QueryError, DuplicateAlert or AlertNotFound."""
        query = parse_query(text, self.limits)
        async with self.session_factory() as session:
            other = await repo.find_subscription_by_query(session, chat_id, query.text)
        if other is not None and other.id != subscription_id:
            raise DuplicateAlert(other)
        return await self._change(chat_id, subscription_id, query=query.text)

    async def _change(self, chat_id: int, subscription_id: int, **values: Any) -> Subscription:
        async with self.session_factory() as session, session.begin():
            target = await chat_queries.chat_subscription(session, chat_id, subscription_id)
            if target is None:
                raise AlertNotFound(subscription_id)
            await chat_queries.update_subscription(session, subscription_id, **values)
            await session.refresh(target)
        self._sync_matcher(target)
        return target

    def _sync_matcher(self, subscription: Subscription) -> None:
        if subscription.paused:
            self.matcher.remove(subscription.id)
            return
        try:
            query = parse_query(subscription.query)
        except QueryError:
            self.matcher.remove(subscription.id)
            return
        self.matcher.add(
            repo.ActiveSubscription(
                subscription.id, subscription.chat_id, subscription.query, subscription.message_thread_id
            ),
            query,
        )
        # The matcher learns per-alert source filters once it supports them (issue #7's helper).
        update_filters = getattr(self.matcher, "update_filters", None)
        if update_filters is not None:
            update_filters(
                subscription.id,
                source_ids=subscription.source_ids,
                excluded_source_ids=subscription.excluded_source_ids,
            )

    # --- the whole chat ----------------------------------------------------------------------

    async def set_all_paused(self, chat_id: int, paused: bool) -> int:
        """Pauses or resumes every alert of the chat; returns how many changed."""
        async with self.session_factory() as session, session.begin():
            changed = await chat_queries.set_chat_paused(session, chat_id, paused)
        if changed:
            for subscription in await self.list(chat_id):
                if subscription.id in changed:
                    self._sync_matcher(subscription)
        return len(changed)

    async def export_alerts(self, chat_id: int) -> bytes:
        async with self.session_factory() as session:
            alerts = await repo.list_subscriptions(session, chat_id)
            names = await repo.source_names(session)
        document = {
            "veille": EXPORT_FORMAT,
            "version": EXPORT_VERSION,
            "alerts": [
                {
                    "query": a.query,
                    "name": a.name,
                    "mode": a.mode,
                    "digest_time": a.digest_time,
                    "digest_weekday": a.digest_weekday,
                    "paused": a.paused,
                    "sources": [names[i][1] for i in (a.source_ids or ()) if i in names] or None,
                }
                for a in alerts
            ],
        }
        return json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8")

    async def import_alerts(
        self, chat_id: int, data: bytes, *, user_id: int | None, message_thread_id: int | None = None
    ) -> ImportReport:
        """Creates the alerts a Veille export lists; invalid queries are reported, not fatal."""
        entries = parse_alerts_export(data)
        async with self.session_factory() as session:
            names = await repo.source_names(session)
        ids_by_url = {url: source_id for source_id, (_, url) in names.items()}
        report = ImportReport()
        for entry in entries:
            text = entry["query"]
            try:
                result = await self.subscribe(
                    chat_id, text, user_id=user_id, message_thread_id=message_thread_id,
                    mode=entry["mode"], digest_time=entry["digest_time"], digest_weekday=entry["digest_weekday"],
                )
            except QueryError as error:
                report.invalid.append((text, error))
                continue
            except AlertLimitReached:
                report.over_limit.append(text)
                continue
            if not result.created:
                report.existing.append(result.subscription.query)
                continue
            report.created.append(result.subscription.query)
            values: dict[str, Any] = {}
            if entry["name"]:
                values["name"] = entry["name"]
            sources = [ids_by_url[u] for u in entry["sources"] if u in ids_by_url]
            if sources:
                values["source_ids"] = sorted(set(sources))
            if entry["paused"]:
                values["paused"] = True
            if values:
                await self._change(chat_id, result.subscription.id, **values)
        return report


def parse_alerts_export(data: bytes) -> list[dict[str, Any]]:
    """Pure: the entries of an export, each with every key present; raises BadImportFile."""
    if len(data) > MAX_IMPORT_BYTES:
        raise BadImportFile("the file is larger than 1 MB")
    try:
        document = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BadImportFile("the file is not JSON") from None
    if isinstance(document, dict):
        alerts = document.get("alerts")
    elif isinstance(document, list):
        alerts = document
    else:
        alerts = None
    if not isinstance(alerts, list):
        raise BadImportFile("the file has no list of alerts")
    entries: list[dict[str, Any]] = []
    for item in alerts:
        if isinstance(item, str):
            item = {"query": item}
        if not isinstance(item, dict) or not isinstance(item.get("query"), str):
            raise BadImportFile("every alert needs a query")
        mode = item.get("mode") if item.get("mode") in MODES else "instant"
        digest_time = normalize_time(item.get("digest_time")) if isinstance(item.get("digest_time"), str) else None
        weekday = item.get("digest_weekday")
        weekday = weekday if isinstance(weekday, int) and 0 <= weekday <= 6 else None
        sources = item.get("sources")
        entries.append(
            {
                "query": item["query"],
                "name": item["name"][:128] if isinstance(item.get("name"), str) else None,
                "mode": mode,
                "digest_time": digest_time,
                "digest_weekday": weekday,
                "paused": item.get("paused") is True,
                "sources": [s for s in sources if isinstance(s, str)] if isinstance(sources, list) else [],
            }
        )
    return entries


def normalize_time(text: str | None) -> str | None:
    """Pure: "8:30", "08h30", "8h", "20" → "08:30", "08:30", "08:00", "20:00"; None when not a time."""
    if not text:
        return None
    value = text.strip().lower().replace("h", ":").replace(".", ":")
    hours, _, minutes = value.partition(":")
    minutes = minutes or "0"
    if not (hours.isdigit() and minutes.isdigit() and len(hours) <= 2 and len(minutes) <= 2):
        return None
    h, m = int(hours), int(minutes)
    if h > 23 or m > 59:
        return None
    return f"{h:02d}:{m:02d}"


def _checked_mode(mode: str, digest_time: str | None, digest_weekday: int | None) -> tuple[str, str | None, int | None]:
    if mode not in MODES:
        raise ValueError(f"unknown delivery mode {mode!r}")
    if mode == "instant":
        return mode, None, None
    time_of_day = normalize_time(digest_time) or DEFAULT_DIGEST_TIME
    if mode == "daily":
        return mode, time_of_day, None
    weekday = digest_weekday if digest_weekday is not None and 0 <= digest_weekday <= 6 else 0
    return mode, time_of_day, weekday


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

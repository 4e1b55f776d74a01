"""Chat-wide settings and the chat's relation to the bot: the rules behind /lang, /timezone, /quiet,
/sources (proposals), channel links, the bot's membership changes and group migrations.

Rules:
- Languages are those Veille speaks (`bot.i18n.LANGUAGES`); time zones are IANA names ("Europe/Paris");
  quiet hours are two local times "HH:MM" (start, end), possibly across midnight (22:00-07:00), stored
  on the chat; the delivery service holds alerts in that window and sends them as one digest after.
- A channel is linked by a user who is an administrator there, and only when the bot may post there;
  the channel's `linked_by` remembers who linked it, and only that user manages it from their
  private chat.
- The bot removed from a chat (kicked, left) deactivates the chat and takes its alerts out of the
  index; the bot added back reactivates it and puts them back.
- A group that became a supergroup takes its alerts (and pending messages) to the new id.
- A user proposes at most `proposals_per_day` sources in any 24 hours. A proposed URL goes through the
  fetcher (and so the SSRF guard), feed discovery (a web page may name its feed), and must parse as a
  feed before it is stored as a source with `proposed_by` set.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.feeds import FeedParseError, normalise_language, parse_feed
from bot.core.identity import canonical_url
from bot.core.query import QueryError, parse_query
from bot.db import chat_queries, repo
from bot.db.models import Chat, Source
from bot.errors import VeilleError
from bot.fetcher.http import Fetcher, FetchError, discover_feeds
from bot.i18n import LANGUAGES
from bot.services.matcher import Matcher
from bot.services.subscriptions import ChatInfo, normalize_time

COMMON_TIMEZONES = (
    "Europe/Paris", "Europe/Brussels", "Europe/London", "Europe/Berlin", "Asia/Baku", "Asia/Yerevan",
    "Asia/Tbilisi", "America/New_York", "America/Montreal", "Africa/Dakar", "UTC",
)
_QUIET = re.compile(r"^\s*(\S+?)\s*(?:-|–|—|to|à|a)\s*(\S+)\s*$", re.IGNORECASE)


class ChatSettingError(VeilleError):
    """A setting the user typed cannot be used; `code` says which rule it broke."""

    def __init__(self, code: str, value: str = "") -> None:
        super().__init__(f"{code}: {value}")
        self.code = code
        self.value = value


class ProposalRefused(VeilleError):
    """A proposed feed was not added; `code` is one of quota, bad_url, fetch, no_feed."""

    def __init__(self, code: str, detail: str = "", *, limit: int = 0) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.limit = limit


@dataclass(frozen=True, slots=True)
class ProposalResult:
    source: Source
    created: bool


def parse_timezone(text: str) -> str:
    """Pure: an IANA zone name, matched case-insensitively among common spellings; ChatSettingError."""
    value = text.strip().replace(" ", "_")
    if value.upper() in ("UTC", "GMT", "Z"):
        return "UTC"
    for candidate in (value, "/".join(p[:1].upper() + p[1:] for p in value.split("/"))):
        if "/" not in candidate and candidate != "UTC":
            continue
        try:
            ZoneInfo(candidate)
        except (ZoneInfoNotFoundError, ValueError):
            continue
        return candidate
    raise ChatSettingError("timezone", text.strip()[:64])


def parse_quiet_hours(text: str) -> tuple[str, str] | None:
    """Pure: "22:00-07:00" → ("22:00", "07:00"); "off" → None; ChatSettingError otherwise."""
    value = text.strip().lower()
    if value in ("off", "non", "no", "aucun", "none", "0"):
        return None
    match = _QUIET.match(value)
    start = normalize_time(match.group(1)) if match else None
    end = normalize_time(match.group(2)) if match else None
    if start is None or end is None:
        raise ChatSettingError("quiet", text.strip()[:64])
    if start == end:
        raise ChatSettingError("quiet_empty", text.strip()[:64])
    return start, end


class ChatService:
    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        matcher: Matcher,
        *,
        clock: Callable[[], datetime],
        fetcher: Fetcher | None = None,
        proposals_per_day: int = 5,
    ) -> None:
        self.session_factory = session_factory
        self.matcher = matcher
        self.clock = clock
        self.fetcher = fetcher
        self.proposals_per_day = proposals_per_day

    async def get(self, chat_id: int) -> Chat | None:
        async with self.session_factory() as session:
            return await repo.get_chat(session, chat_id)

    async def set_language(self, chat_id: int, language: str) -> str:
        if language not in LANGUAGES:
            raise ChatSettingError("language", language)
        await self._update(chat_id, language=language)
        return language

    async def set_timezone(self, chat_id: int, text: str) -> str:
        zone = parse_timezone(text)
        await self._update(chat_id, timezone=zone)
        return zone

    async def set_quiet_hours(self, chat_id: int, text: str) -> tuple[str, str] | None:
        hours = parse_quiet_hours(text)
        start, end = hours if hours else (None, None)
        await self._update(chat_id, quiet_start=start, quiet_end=end)
        return hours

    async def _update(self, chat_id: int, **values: object) -> None:
        async with self.session_factory() as session, session.begin():
            await chat_queries.update_chat(session, chat_id, updated_at=self.clock(), **values)

    # --- channels and membership --------------------------------------------------------------

    async def link_channel(self, channel: ChatInfo, user_id: int, language: str, timezone: str) -> Chat:
        """Records the channel as linked by `user_id` (the caller checked both memberships)."""
        now = self.clock()
        async with self.session_factory() as session, session.begin():
            chat = await repo.upsert_chat(
                session, chat_id=channel.id, chat_type="channel", title=channel.title,
                username=channel.username, language=language, timezone=timezone, now=now,
            )
            chat.linked_by = user_id
        await self._index_chat(channel.id)
        return chat

    async def channels_of(self, user_id: int) -> Sequence[Chat]:
        async with self.session_factory() as session:
            return await chat_queries.channels_linked_by(session, user_id)

    async def manageable_channel(self, channel_id: int, user_id: int) -> Chat | None:
        """The channel if `user_id` linked it, else None."""
        chat = await self.get(channel_id)
        if chat is None or chat.type != "channel" or chat.linked_by != user_id:
            return None
        return chat

    async def bot_removed(self, chat_id: int, reason: str) -> None:
        async with self.session_factory() as session, session.begin():
            subscriptions = await repo.list_subscriptions(session, chat_id)
            if await repo.get_chat(session, chat_id) is not None:
                await repo.deactivate_chat(session, chat_id, reason, self.clock())
        for subscription in subscriptions:
            self.matcher.remove(subscription.id)

    async def bot_added(self, chat_id: int) -> None:
        async with self.session_factory() as session, session.begin():
            await chat_queries.update_chat(
                session, chat_id, active=True, inactive_reason=None, updated_at=self.clock()
            )
        await self._index_chat(chat_id)

    async def migrate(self, old_chat_id: int, new_chat_id: int) -> int:
        """Moves the group's alerts to its supergroup; returns how many moved."""
        async with self.session_factory() as session, session.begin():
            moved = await repo.list_subscriptions(session, old_chat_id)
            await repo.move_chat(session, old_chat_id, new_chat_id, self.clock())
            if moved:
                await repo.deactivate_chat(session, old_chat_id, "migrated to a supergroup", self.clock())
        # Re-adding an alert replaces its index entry, so it is never missing from the index meanwhile.
        await self._index_chat(new_chat_id)
        return len(moved)

    async def _index_chat(self, chat_id: int) -> None:
        async with self.session_factory() as session:
            chat = await repo.get_chat(session, chat_id)
            subscriptions = await repo.list_subscriptions(session, chat_id)
        if chat is None or not chat.active:
            return
        for s in subscriptions:
            if s.paused:
                continue
            try:
                query = parse_query(s.query)
            except QueryError:
                continue
            self.matcher.add(repo.ActiveSubscription(s.id, s.chat_id, s.query, s.message_thread_id), query)
            update_filters = getattr(self.matcher, "update_filters", None)
            if update_filters is not None:  # per-alert source filters and mutes (issue #5's matcher)
                update_filters(s.id, source_ids=s.source_ids, excluded_source_ids=s.excluded_source_ids,
                               muted_until=s.muted_until)

    # --- sources ------------------------------------------------------------------------------

    async def catalogue(self, language: str | None = None) -> Sequence[Source]:
        async with self.session_factory() as session:
            return await chat_queries.enabled_sources(session, language=language)

    async def proposals_left(self, user_id: int) -> int:
        since = self.clock() - timedelta(days=1)
        async with self.session_factory() as session:
            used = await chat_queries.count_proposals_since(session, user_id, since)
        return max(0, self.proposals_per_day - used)

    async def propose_source(self, url: str, user_id: int) -> ProposalResult:
        """Finds, checks and stores the feed at (or named by the page at) `url`; ProposalRefused."""
        if self.fetcher is None:
            raise ProposalRefused("fetch", "no fetcher configured")
        candidate = canonical_url(url.strip() if "://" in url else "https://" + url.strip())
        if candidate is None:
            raise ProposalRefused("bad_url", url[:200])
        async with self.session_factory() as session:
            known = await repo.find_source(session, candidate)
        if known is not None:
            return ProposalResult(known, created=False)
        if await self.proposals_left(user_id) <= 0:
            raise ProposalRefused("quota", limit=self.proposals_per_day)
        try:
            feeds = await discover_feeds(self.fetcher, candidate)
        except FetchError as error:
            raise ProposalRefused("fetch", str(error)) from None
        if not feeds:
            raise ProposalRefused("no_feed", candidate)
        feed_url = feeds[0]
        try:
            fetched = await self.fetcher.fetch(feed_url)
            if fetched.body is None:
                raise ProposalRefused("no_feed", feed_url)
            parsed = parse_feed(fetched.body, url=fetched.url, content_type=fetched.content_type)
        except FetchError as error:
            raise ProposalRefused("fetch", str(error)) from None
        except FeedParseError:
            raise ProposalRefused("no_feed", feed_url) from None
        async with self.session_factory() as session, session.begin():
            # The page may name a feed Veille already polls: that is not a new source.
            existing = await repo.find_source(session, fetched.url)
            if existing is not None:
                return ProposalResult(existing, created=False)
            source, _ = await repo.upsert_source(
                session, url=fetched.url, name=(parsed.title or fetched.url)[:256],
                language=normalise_language(parsed.language), category=None, now=self.clock(),
            )
            source.proposed_by, source.site_url = user_id, parsed.site_url
        return ProposalResult(source, created=True)

"""Admin operations (issue #8): bans, source actions, the admin digest, and the admin services bundle.

Rules:
- Admins are the Telegram user ids in `VEILLE_ADMIN_IDS`; an admin cannot be banned.
- Banning a user marks them banned (their updates are ignored by `bot.telegram.ban`) and makes their
  private chat inactive with reason `BANNED_REASON`, which stops its alerts at once (inactive chats are
  not matched and their outbox rows are not claimed) and cancels its pending rows. Unbanning makes the
  chat active again only if the ban is what made it inactive (a user who blocked the bot stays blocked).
- The admin digest ranks the stories first seen in a period by how many sources carried them, then by
  how many chats were alerted about them (matches), then by recency. Articles without a story count as
  stories of their own. An optional topic is a query in the alert language, matched like an alert.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.matching import Document, match_query
from bot.core.query import parse_query
from bot.core.render import escape, utf16_length
from bot.db import admin as db
from bot.db import ops, repo
from bot.db.models import Article, Chat
from bot.errors import VeilleError
from bot.i18n import N_, Gettext
from bot.services.broadcasts import BroadcastService
from bot.services.stats import StatsService

log = logging.getLogger(__name__)

DIGEST_PERIODS = {"today": N_("today"), "24h": N_("last 24 hours"), "7d": N_("last 7 days")}
DIGEST_MAX_STORIES = 10
DIGEST_MAX_UNITS = 3900


class AdminError(VeilleError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class BanResult:
    user_id: int
    changed: bool  # False: already in that state
    alerts: int  # the alerts of their private chat (stopped, or running again)


@dataclass(frozen=True, slots=True)
class DigestStory:
    title: str
    url: str
    sources: tuple[str, ...]
    source_count: int
    matches: int
    first_seen_at: datetime


@dataclass(frozen=True, slots=True)
class Digest:
    period: str
    topic: str | None
    since: datetime
    stories: tuple[DigestStory, ...]


def period_start(period: str, now: datetime, timezone: str) -> datetime:
    """`today` = since local midnight in `timezone`; `24h`, `7d` = rolling windows."""
    if period == "24h":
        return now - timedelta(hours=24)
    if period == "7d":
        return now - timedelta(days=7)
    if period == "today":
        try:
            zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            zone = ZoneInfo("UTC")
        local = now.astimezone(zone)
        return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)
    raise AdminError("period", f"unknown period {period!r}: today, 24h or 7d")


def rank_stories(
    articles: list[Article], *, sources: dict[int, tuple[str, str]], matches: dict[int, int],
    story_sources: dict[int, int], limit: int = DIGEST_MAX_STORIES,
) -> list[DigestStory]:
    """Groups articles by story, ranks (sources, matches, newest), keeps the first `limit`."""
    groups: dict[int, list[Article]] = {}
    for article in articles:
        key = article.story_id if article.story_id is not None else -article.id
        groups.setdefault(key, []).append(article)
    ranked = []
    for key, members in groups.items():
        members.sort(key=lambda a: (a.first_seen_at, a.id))
        lead = members[0]
        names = tuple(dict.fromkeys(sources.get(a.source_id, ("?", ""))[0] for a in members))
        count = max(len({a.source_id for a in members}), story_sources.get(key, 0) if key > 0 else 0)
        story = DigestStory(
            title=lead.title, url=lead.url or "", sources=names, source_count=count,
            matches=sum(matches.get(a.id, 0) for a in members), first_seen_at=max(a.first_seen_at for a in members),
        )
        ranked.append(story)
    ranked.sort(key=lambda s: (-s.source_count, -s.matches, -s.first_seen_at.timestamp(), s.title))
    return ranked[:limit]


def render_digest(digest: Digest, _: Gettext) -> str:
    """The digest as Telegram HTML, within one message."""
    period = _(DIGEST_PERIODS.get(digest.period, digest.period))
    header = _("📰 <b>Top stories</b> — {period}", period=period)
    if digest.topic:
        header += f" · <code>{escape(digest.topic)}</code>"
    if not digest.stories:
        return header + "\n\n" + _("No stories in this period.")
    parts = [header]
    size = utf16_length(header)
    for number, story in enumerate(digest.stories, 1):
        title = escape(re.sub(r"\s+", " ", story.title).strip()[:200]) or "…"
        link = f'<a href="{escape(story.url)}">{title}</a>' if story.url.startswith(("http://", "https://")) else title
        names = escape(", ".join(story.sources[:3]))
        detail = _("{sources} sources · {matches} alerted", sources=story.source_count, matches=story.matches)
        block = f"{number}. <b>{link}</b>\n{names} · {detail}"
        visible = utf16_length(re.sub(r"<[^>]*>", "", block))
        if size + visible + 2 > DIGEST_MAX_UNITS:
            break
        parts.append(block)
        size += visible + 2
    return "\n\n".join(parts)


class AdminService:
    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        *,
        admin_ids: frozenset[int],
        clock: Callable[[], datetime],
        reload_index: Callable[[], Awaitable[None]] | None = None,
        timezone: str = "Europe/Paris",
    ) -> None:
        self.session_factory = session_factory
        self.admin_ids = admin_ids
        self.clock = clock
        self.reload_index = reload_index
        self.timezone = timezone

    # --- scheduled runs --------------------------------------------------------------------------

    async def claim_daily_run(self, job: str, zone: str, *, owner: str) -> bool:
        """True for the first process to start today's run of `job` (today in `zone`), False for the others.

        At most once rather than at least once: a process that dies after claiming loses that day's run,
        which beats every process of a scale-out sending the same digest.
        """
        now = self.clock()
        today = now.astimezone(ZoneInfo(zone)).date().isoformat()
        async with self.session_factory() as session:
            return await ops.claim_job_run(session, job, today, owner=owner, now=now)

    # --- bans ------------------------------------------------------------------------------------

    async def ban(self, user_id: int) -> BanResult:
        if user_id in self.admin_ids:
            raise AdminError("admin", "an admin cannot be banned")
        now = self.clock()
        async with self.session_factory() as session, session.begin():
            changed = not await db.is_banned(session, user_id)
            await db.set_banned(session, user_id, True, now=now)
            chat = await session.get(Chat, user_id)
            alerts = await db.count_chat_alerts(session, user_id)
            if chat is not None and chat.active:
                chat.active, chat.inactive_reason, chat.updated_at = False, db.BANNED_REASON, now
                await db.cancel_chat_pending_rows(session, user_id, reason=db.BANNED_REASON)
        if self.reload_index is not None:
            await self.reload_index()
        log.info("user banned", extra={"user": user_id, "alerts": alerts})
        return BanResult(user_id, changed, alerts)

    async def unban(self, user_id: int) -> BanResult:
        now = self.clock()
        async with self.session_factory() as session, session.begin():
            changed = await db.is_banned(session, user_id)
            await db.set_banned(session, user_id, False, now=now)
            await db.set_chat_active(session, user_id, active=True, reason=None, now=now,
                                     only_if_reason=db.BANNED_REASON)
            alerts = await db.count_chat_alerts(session, user_id)
        if self.reload_index is not None:
            await self.reload_index()
        log.info("user unbanned", extra={"user": user_id})
        return BanResult(user_id, changed, alerts)

    async def is_banned(self, user_id: int) -> bool:
        async with self.session_factory() as session:
            return await db.is_banned(session, user_id)

    # --- sources ---------------------------------------------------------------------------------

    async def source_action(self, source_id: int, action: str) -> str | None:
        """retry | enable | disable | remove; returns the source's name, None if it does not exist."""
        now = self.clock()
        async with self.session_factory() as session, session.begin():
            source = await repo.get_source(session, source_id)
            if source is None:
                return None
            name = source.name
            if action == "retry":
                source.next_check_at = now
                source.lease_until = None
            elif action == "enable":
                source.enabled, source.disabled_reason, source.error_streak = True, None, 0
                source.next_check_at = now
            elif action == "disable":
                source.enabled, source.disabled_reason = False, "disabled by an admin"
            elif action == "remove":
                await repo.delete_source(session, source_id)
            else:
                raise AdminError("action", f"unknown source action {action!r}")
        log.info("source action", extra={"source": source_id, "action": action})
        return name

    # --- digest ----------------------------------------------------------------------------------

    async def build_digest(self, period: str = "24h", topic: str | None = None,
                           limit: int = DIGEST_MAX_STORIES) -> Digest:
        """Raises `AdminError` for an unknown period, `QueryError` for a bad topic."""
        query = parse_query(topic) if topic else None
        since = period_start(period, self.clock(), self.timezone)
        async with self.session_factory() as session:
            articles = list(await repo.recent_articles(session, since=since, limit=5000))
            sources = await repo.source_names(session)
            if query is not None:
                articles = [
                    a for a in articles
                    if match_query(query, Document(
                        title=a.title, text=a.summary or "", source_name=sources.get(a.source_id, ("", ""))[0],
                        source_url=sources.get(a.source_id, ("", ""))[1], lang=a.language,
                    )) is not None
                ]
            matches = await db.matches_per_article(session, [a.id for a in articles])
            story_sources = await db.story_source_counts(
                session, sorted({a.story_id for a in articles if a.story_id is not None})
            )
        stories = rank_stories(articles, sources=sources, matches=matches, story_sources=story_sources, limit=limit)
        return Digest(period=period, topic=query.text if query else None, since=since, stories=tuple(stories))


_SCHEDULE = re.compile(r"^\s*(?P<h>[01]?\d|2[0-3]):(?P<m>[0-5]\d)(?:\s+(?P<tz>\S+))?\s*$")


def parse_schedule(text: str, default_timezone: str = "Europe/Paris") -> tuple[int, int, str]:
    """`"08:00 Europe/Paris"` → (8, 0, "Europe/Paris"); raises ValueError."""
    match = _SCHEDULE.match(text or "")
    if match is None:
        raise ValueError(f"{text!r} is not a time like 08:00 or 08:00 Europe/Paris")
    zone = match["tz"] or default_timezone
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {zone!r}") from None
    return int(match["h"]), int(match["m"]), zone


@dataclass
class AdminServices:
    """Everything the admin router, the admin jobs and the admin CLI use."""

    admin_ids: frozenset[int]
    admin: AdminService
    broadcasts: BroadcastService
    stats: StatsService
    digest_schedule: str | None = None
    digest_chat: str | None = None
    default_language: str = "fr"
    report_interval: float = 3.0

    @classmethod
    def build(
        cls,
        settings,  # noqa: ANN001 - bot.settings.Settings
        session_factory: async_sessionmaker[AsyncSession],
        *,
        clock: Callable[[], datetime],
        reload_index: Callable[[], Awaitable[None]] | None = None,
    ) -> AdminServices:
        return cls(
            admin_ids=frozenset(settings.admin_ids),
            admin=AdminService(session_factory, admin_ids=frozenset(settings.admin_ids), clock=clock,
                               reload_index=reload_index, timezone=settings.default_timezone),
            broadcasts=BroadcastService(session_factory, clock=clock),
            stats=StatsService(session_factory, clock=clock),
            digest_schedule=getattr(settings, "admin_digest_schedule", None),
            digest_chat=getattr(settings, "admin_digest_chat", None),
            default_language=settings.default_language,
        )

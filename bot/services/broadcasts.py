"""Broadcasts (issue #8): an admin's message to many chats, sent through the outbox at the rate limit.

Rules:
- A broadcast is a `broadcasts` row, created as a draft; confirming turns it "running" with one
  conditional UPDATE (draft → running), so a second confirm — a double tap, a second admin, a retry
  after a restart — is a no-op. In the same transaction one outbox row per target chat is written
  (kind "broadcast", dedup_key "broadcast:<id>"): the deliverer sends them like any other row, and a
  restart resumes from whatever rows are still pending; the unique key rules out a second copy.
- Audiences: every active chat; active chats of one language; chats with an alert that follows a term
  (the term's words, normalised like matching does, appear in that order in the alert's query); groups,
  supergroups and channels; or one chat (a channel for the admin digest).
- Progress is counted from the rows: sent, blocked (cancelled because the chat blocked the bot or left),
  failed (Telegram refused the message), cancelled (stopped by an admin), pending. When nothing is
  pending the broadcast is "done"; `/cancel_broadcast` cancels the pending rows and makes it "cancelled".
- Deleting the sent messages goes through the caller's `delete(chat_id, message_id)` at a steady pace.
"""

from __future__ import annotations

import asyncio
import csv
import html
import io
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from html.parser import HTMLParser

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.text import normalize_words
from bot.db import admin as db
from bot.db.admin import BroadcastCounts
from bot.db.models import Broadcast
from bot.errors import VeilleError

log = logging.getLogger(__name__)

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_BUTTONS = 12
AUDIENCE_KINDS = ("everyone", "language", "term", "groups", "chat")


class BroadcastError(VeilleError):
    """A broadcast that cannot be made as asked; `code` names why (for a translated message)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


# --- pure helpers ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Audience:
    kind: str = "everyone"  # everyone | language | term | groups | chat
    value: str | None = None  # the language code, the term, or the chat id

    @classmethod
    def parse(cls, text: str) -> Audience:
        """`everyone`, `lang:fr`, `term:OTAN`, `groups`, `chat:-100123` (the CLI's --audience)."""
        text = text.strip()
        if text in ("everyone", "all", ""):
            return cls("everyone")
        if text in ("groups", "channels"):
            return cls("groups")
        kind, _, value = text.partition(":")
        value = value.strip()
        if kind in ("lang", "language") and re.fullmatch(r"[a-z]{2}", value):
            return cls("language", value)
        if kind == "term" and value:
            return cls("term", value)
        if kind == "chat" and re.fullmatch(r"-?\d+", value):
            return cls("chat", value)
        raise BroadcastError("audience", f"unknown audience {text!r}: everyone, lang:fr, term:OTAN, groups, chat:ID")

    @classmethod
    def from_json(cls, data: dict | None) -> Audience:
        if not data or data.get("kind") not in AUDIENCE_KINDS:
            return cls("everyone")
        value = data.get("value")
        return cls(data["kind"], str(value) if value is not None else None)

    def to_json(self) -> dict:
        return {"kind": self.kind, "value": self.value}

    def label(self) -> str:
        return {"everyone": "everyone", "groups": "groups"}.get(self.kind, f"{self.kind}:{self.value}")


def chats_following(term: str, alerts: Iterable[tuple[int, str]]) -> list[int]:
    """Chats with an alert whose query contains the term's words, in order (case, accents ignored)."""
    wanted = normalize_words(term)
    if not wanted:
        return []
    found: dict[int, None] = {}
    for chat_id, query in alerts:
        if chat_id in found:
            continue
        words = normalize_words(query.replace("*", " "))
        if any(words[i : i + len(wanted)] == wanted for i in range(len(words) - len(wanted) + 1)):
            found[chat_id] = None
    return list(found)


_BUTTON_LINE = re.compile(r"^(?P<text>.+?)\s+[-—|]\s+(?P<url>(?:https?|tg)://\S+)$")


def parse_buttons(text: str) -> list[list[dict]]:
    """One row per line; `Label - https://…`, several in a row separated by `||`."""
    rows: list[list[dict]] = []
    count = 0
    for line in text.strip().splitlines():
        if not line.strip():
            continue
        row = []
        for part in line.split("||"):
            match = _BUTTON_LINE.match(part.strip())
            if match is None:
                raise BroadcastError("button", f"not a button: {part.strip()!r} (write: Label - https://example.org)")
            row.append({"text": match["text"].strip()[:64], "url": match["url"]})
            count += 1
        rows.append(row)
    if count > MAX_BUTTONS:
        raise BroadcastError("buttons", f"at most {MAX_BUTTONS} buttons")
    return rows


def keyboard_json(buttons: Sequence[Sequence[dict]] | None) -> dict | None:
    """Telegram's InlineKeyboardMarkup JSON for URL buttons, or None."""
    if not buttons:
        return None
    return {"inline_keyboard": [[{"text": b["text"], "url": b["url"]} for b in row] for row in buttons]}


_ALLOWED_TAGS = frozenset({"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler",
                           "a", "code", "pre", "blockquote", "tg-emoji"})
_BARE_AMPERSAND = re.compile(r"&(?!#\d+;|#[xX][0-9a-fA-F]+;|lt;|gt;|amp;|quot;)")


class _TelegramHtml(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.visible: list[str] = []
        self.error: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _ALLOWED_TAGS:
            self.error = self.error or f"tag <{tag}> is not allowed"
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.error = self.error or f"unexpected </{tag}>"
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.visible.append(data)


def check_html(text: str) -> str:
    """Validates Telegram HTML (its tags, properly nested, & escaped); returns the visible text."""
    if _BARE_AMPERSAND.search(text):
        raise BroadcastError("html", "escape & as &amp;")
    parser = _TelegramHtml()
    parser.feed(text)
    parser.close()
    if parser.error is None and parser.stack:
        parser.error = f"<{parser.stack[-1]}> is not closed"
    if parser.error:
        raise BroadcastError("html", f"not valid Telegram HTML: {parser.error}")
    return "".join(parser.visible)


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def progress_bar(done: int, total: int, width: int = 16) -> str:
    filled = width if total <= 0 else min(width, round(width * done / total))
    return "▓" * filled + "░" * (width - filled)


def eta_seconds(done: int, remaining: int, elapsed: float) -> float | None:
    """Remaining / observed rate; None until something was sent."""
    if remaining <= 0:
        return 0.0
    if done <= 0 or elapsed <= 0:
        return None
    return remaining * elapsed / done


# --- the service -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BroadcastReport:
    id: int
    status: str
    counts: BroadcastCounts
    total: int
    started_at: datetime | None
    finished_at: datetime | None
    eta_seconds: float | None
    report_chat_id: int | None
    report_message_id: int | None

    @property
    def finished(self) -> bool:
        return self.status in ("done", "cancelled")


@dataclass(frozen=True, slots=True)
class ConfirmResult:
    started: bool  # False: it was already started (or is no draft)
    queued: int


Deleter = Callable[[int, int], Awaitable[bool]]


class BroadcastService:
    def __init__(self, session_factory: async_sessionmaker[AsyncSession], *, clock: Callable[[], datetime],
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.session_factory = session_factory
        self.clock = clock
        self.sleep = sleep

    async def create_draft(
        self,
        created_by: int,
        text: str,
        *,
        photo_file_id: str | None = None,
        document_file_id: str | None = None,
        buttons: list[list[dict]] | None = None,
        audience: Audience | None = None,
    ) -> Broadcast:
        visible = check_html(text)
        limit = MAX_CAPTION if (photo_file_id or document_file_id) else MAX_TEXT
        if utf16_len(visible) > limit:
            raise BroadcastError("too_long", f"the message is too long ({utf16_len(visible)} characters; at most {limit})")
        if not visible.strip() and not (photo_file_id or document_file_id):
            raise BroadcastError("empty", "the message is empty")
        broadcast = Broadcast(
            created_by=created_by, text=text, photo_file_id=photo_file_id, document_file_id=document_file_id,
            buttons=buttons or None, audience=(audience or Audience()).to_json(), status="draft", total=0,
            created_at=self.clock(),
        )
        async with self.session_factory() as session, session.begin():
            await db.add_broadcast(session, broadcast)
        return broadcast

    async def get(self, broadcast_id: int) -> Broadcast | None:
        async with self.session_factory() as session:
            return await db.get_broadcast(session, broadcast_id)

    async def update_draft(
        self, broadcast_id: int, *, buttons: list[list[dict]] | None = None, audience: Audience | None = None,
        clear_buttons: bool = False,
    ) -> Broadcast | None:
        """Changes a draft's buttons or audience; None when it is no longer a draft."""
        async with self.session_factory() as session, session.begin():
            broadcast = await db.get_broadcast(session, broadcast_id)
            if broadcast is None or broadcast.status != "draft":
                return None
            if buttons is not None or clear_buttons:
                broadcast.buttons = buttons or None
            if audience is not None:
                broadcast.audience = audience.to_json()
            return broadcast

    async def audience_chat_ids(self, audience: Audience, session: AsyncSession | None = None) -> list[int]:
        if session is None:
            async with self.session_factory() as own:
                return await self.audience_chat_ids(audience, own)
        if audience.kind == "language":
            return await db.active_chat_ids(session, language=audience.value)
        if audience.kind == "groups":
            return await db.active_chat_ids(session, types=db.GROUP_TYPES)
        if audience.kind == "term":
            return chats_following(audience.value or "", await db.active_chat_queries(session))
        if audience.kind == "chat":
            chat_id = int(audience.value or 0)
            return [chat_id] if chat_id in set(await db.active_chat_ids(session)) else []
        return await db.active_chat_ids(session)

    async def count_audience(self, audience: Audience) -> int:
        return len(await self.audience_chat_ids(audience))

    async def ensure_chat(self, chat_id: int, chat_type: str, title: str | None, username: str | None) -> None:
        async with self.session_factory() as session, session.begin():
            await db.ensure_chat(session, chat_id=chat_id, chat_type=chat_type, title=title, username=username,
                                 now=self.clock())

    async def confirm(
        self, broadcast_id: int, *, report_chat_id: int | None = None, report_message_id: int | None = None
    ) -> ConfirmResult:
        """Starts the draft: running + its outbox rows, atomically; a second call changes nothing."""
        now = self.clock()
        async with self.session_factory() as session, session.begin():
            if not await db.start_broadcast(session, broadcast_id, now=now, report_chat_id=report_chat_id,
                                            report_message_id=report_message_id):
                return ConfirmResult(started=False, queued=0)
            broadcast = await db.get_broadcast(session, broadcast_id)
            assert broadcast is not None
            await session.refresh(broadcast)
            chat_ids = await self.audience_chat_ids(Audience.from_json(broadcast.audience), session)
            queued = await db.enqueue_broadcast_rows(
                session, broadcast, chat_ids, payload=broadcast.text, reply_markup=keyboard_json(broadcast.buttons),
                now=now,
            )
            broadcast.total = queued
            if queued == 0:
                broadcast.status, broadcast.finished_at = "done", now
        log.info("broadcast started", extra={"broadcast": broadcast_id, "chats": queued})
        return ConfirmResult(started=True, queued=queued)

    async def send_now(
        self, created_by: int, text: str, audience: Audience, *, buttons: list[list[dict]] | None = None
    ) -> tuple[int, int]:
        """Draft + confirm in one go (the CLI); returns (broadcast id, chats queued)."""
        broadcast = await self.create_draft(created_by, text, buttons=buttons, audience=audience)
        result = await self.confirm(broadcast.id)
        return broadcast.id, result.queued

    async def set_report_message(self, broadcast_id: int, chat_id: int, message_id: int) -> None:
        async with self.session_factory() as session, session.begin():
            await db.set_broadcast_report(session, broadcast_id, chat_id, message_id)

    async def report(self, broadcast_id: int) -> BroadcastReport | None:
        async with self.session_factory() as session:
            broadcast = await db.get_broadcast(session, broadcast_id)
            if broadcast is None:
                return None
            counts = await db.broadcast_counts(session, broadcast_id)
        return self._report(broadcast, counts)

    def _report(self, broadcast: Broadcast, counts: BroadcastCounts) -> BroadcastReport:
        elapsed = (self.clock() - broadcast.confirmed_at).total_seconds() if broadcast.confirmed_at else 0.0
        return BroadcastReport(
            id=broadcast.id, status=broadcast.status, counts=counts, total=max(broadcast.total, counts.total),
            started_at=broadcast.confirmed_at, finished_at=broadcast.finished_at,
            eta_seconds=eta_seconds(counts.done, counts.pending, elapsed),
            report_chat_id=broadcast.report_chat_id, report_message_id=broadcast.report_message_id,
        )

    async def running(self) -> list[BroadcastReport]:
        """Running broadcasts, each marked "done" first if nothing is left to send.

        A report whose status just turned "done" is returned once with `finished` set, so exactly one
        caller shows the final report.
        """
        out = []
        async with self.session_factory() as session, session.begin():
            for broadcast in await db.broadcasts_with_status(session, ("running",)):
                counts = await db.broadcast_counts(session, broadcast.id)
                if counts.pending == 0 and await db.set_broadcast_status(
                    session, broadcast.id, "done", now=self.clock(), only_from=("running",)
                ):
                    broadcast.status, broadcast.finished_at = "done", self.clock()
                out.append(self._report(broadcast, counts))
        return out

    async def latest_running_id(self) -> int | None:
        async with self.session_factory() as session:
            rows = await db.broadcasts_with_status(session, ("running",))
        return rows[-1].id if rows else None

    async def cancel(self, broadcast_id: int) -> BroadcastReport | None:
        """Stops a running broadcast: pending rows are cancelled (a message being sent still arrives)."""
        async with self.session_factory() as session, session.begin():
            if not await db.set_broadcast_status(session, broadcast_id, "cancelled", now=self.clock(),
                                                 only_from=("running", "draft")):
                return None
            cancelled = await db.cancel_broadcast_rows(session, broadcast_id, reason="cancelled by an admin")
        log.info("broadcast cancelled", extra={"broadcast": broadcast_id, "rows": cancelled})
        return await self.report(broadcast_id)

    async def delete_sent(self, broadcast_id: int, delete: Deleter, *, per_second: float = 20.0) -> tuple[int, int]:
        """Deletes the broadcast's sent messages, paced; returns (deleted, could not delete)."""
        async with self.session_factory() as session:
            messages = await db.sent_broadcast_messages(session, broadcast_id)
        deleted: list[int] = []
        failed = 0
        for position, (row_id, chat_id, message_id) in enumerate(messages):
            if position:
                await self.sleep(1.0 / per_second)
            if await delete(chat_id, message_id):
                deleted.append(row_id)
            else:
                failed += 1
        async with self.session_factory() as session, session.begin():
            await db.forget_message_ids(session, deleted)
        log.info("broadcast messages deleted", extra={"broadcast": broadcast_id, "deleted": len(deleted),
                                                      "failed": failed})
        return len(deleted), failed

    async def failures_csv(self, broadcast_id: int) -> str:
        async with self.session_factory() as session:
            rows = await db.broadcast_problem_rows(session, broadcast_id)
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["chat_id", "chat_type", "status", "error"])
        writer.writerows(rows)
        return out.getvalue()


def plain_preview(text: str, limit: int = 200) -> str:
    """The visible text of a broadcast, shortened, escaped again for an HTML message."""
    visible = html.unescape(re.sub(r"<[^>]*>", "", text))
    visible = visible if len(visible) <= limit else visible[: limit - 1] + "…"
    return html.escape(visible, quote=False)

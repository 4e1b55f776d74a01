"""A fake Telegram Bot API server on 127.0.0.1, for tests that run Veille's real aiogram client.

It speaks the wire format of https://core.telegram.org/bots/api at ``/bot<token>/<method>`` (method
names case-insensitive, parameters as query string, urlencoded or multipart form — aiogram's
`AiohttpSession` sends multipart with objects JSON-encoded — or a JSON body) and
``/file/bot<token>/<path>`` for downloads. Every answer is ``{"ok": true, "result": ...}`` or
``{"ok": false, "error_code": ..., "description": ..., "parameters": {...}}`` with Telegram's own
descriptions, so aiogram raises the same exception classes it raises in production.

What it models, and how faithfully:

* Chats are created on first use (positive id = private, ``-100…`` = supergroup, other negative =
  group) unless ``strict_chats=True``; then unknown chats answer 400 "Bad Request: chat not found".
  ``@username`` chat ids resolve against chats that have that username.
* Message ids increase per chat and are shared by the user's and the bot's messages (as in Telegram).
* Text over 4096 characters after entity parsing (captions: 1024) answers "message is too long".
  HTML text goes through `validate_html` (default: `check_telegram_html`, a strict version of
  Telegram's parser: only its tags, only &lt; &gt; &amp; &quot; and numeric entities, tags nested
  properly). Set ``fake.validate_html = None`` to accept anything.
* Limits (off until `enforce_limits`) are counted on the server with `time.monotonic()` in sliding
  windows, and only successful sends count: global N per second; per private chat at most `burst`
  sends in any ``1/rate`` seconds and ``burst - 1 + 10`` in any ``10/rate`` seconds (what a token
  bucket of that rate and burst can produce); per group or channel N per minute. `tolerance`
  shortens every window a little so network jitter does not punish a client that paces exactly.
  Violations answer 429 "Too Many Requests: retry after N" with an integer ``retry_after``.
* Only sends (sendMessage, sendDocument, sendPhoto) are rate-limited; edits are not.
* getUpdates long-polls for real: it returns as soon as an update is queued, ``timeout`` is capped
  at `max_poll_timeout`; ``offset`` confirms earlier updates, a negative offset keeps only the last
  ones; a second concurrent getUpdates makes the first answer 409 Conflict, as when two bot
  instances run; getUpdates while a webhook is set answers 409 too.
* With a webhook set (plain http accepted, for 127.0.0.1), queued updates are POSTed to it one at a
  time in order, with ``X-Telegram-Bot-Api-Secret-Token`` when a secret was given; an answer other
  than 200 is retried after 0.2 s (counted in `webhook_failures`). A JSON reply carrying
  ``"method"`` is executed, as Telegram does for replies in the webhook response.
* Injected failures (`fail_next`, `random_failures`) answer before anything is delivered; status 0
  drops the connection (aiogram raises TelegramNetworkError); ``html=True`` answers an nginx HTML
  page as Telegram's front end does for 502s (aiogram then raises ClientDecodeError).
"""

from __future__ import annotations

import asyncio
import html
import itertools
import json
import math
import random
import re
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

SEND_METHODS = frozenset({"sendMessage", "sendDocument", "sendPhoto"})
MAX_TEXT = 4096
MAX_CAPTION = 1024

_JSON_FIELDS = frozenset(
    {"reply_markup", "entities", "caption_entities", "link_preview_options", "reply_parameters",
     "allowed_updates", "commands", "scope", "media", "permissions", "rights"}
)
_INT_FIELDS = frozenset(
    {"message_id", "offset", "limit", "timeout", "user_id", "message_thread_id", "reply_to_message_id",
     "from_chat_id", "cache_time", "max_connections", "until_date"}
)
_BOOL_FIELDS = frozenset(
    {"disable_notification", "protect_content", "drop_pending_updates", "show_alert",
     "disable_web_page_preview", "allow_sending_without_reply", "for_channels", "has_spoiler",
     "disable_content_type_detection", "only_if_banned"}
)
# Telegram's default when a bot never set allowed_updates: everything except these three.
_DEFAULT_ALLOWED_UPDATES = frozenset(
    {"message", "edited_message", "channel_post", "edited_channel_post", "inline_query",
     "chosen_inline_result", "callback_query", "shipping_query", "pre_checkout_query", "poll",
     "poll_answer", "my_chat_member", "chat_join_request", "business_connection", "business_message",
     "edited_business_message", "deleted_business_messages", "removed_chat_boost", "chat_boost",
     "purchased_paid_media"}
)  # not: chat_member, message_reaction, message_reaction_count

_SERVER_ERRORS = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
                  504: "Gateway Timeout"}
_NGINX_PAGE = ("<html>\r\n<head><title>{code} {text}</title></head>\r\n<body>\r\n<center><h1>{code} {text}"
               "</h1></center>\r\n<hr><center>nginx/1.18.0</center>\r\n</body>\r\n</html>\r\n")
_COMMAND = re.compile(r"^[a-z0-9_]{1,32}$")


# --------------------------------------------------------------------------------------------------
# Telegram's HTML parse mode (https://core.telegram.org/bots/api#html-style)

_ALLOWED_TAGS = frozenset(
    {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a", "code",
     "pre", "blockquote", "tg-emoji"}
)
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_TAG = re.compile(
    r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)?((?:\s+[a-zA-Z_-]+(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s>\"']+))?)*)\s*>"
)
_ATTR = re.compile(r"([a-zA-Z_-]+)(?:\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s>\"']+)))?")
_ENTITY = re.compile(r"&(#[0-9]+|#[xX][0-9a-fA-F]+|[a-zA-Z][a-zA-Z0-9]*);")


class HtmlEntityError(ValueError):
    """The text is not valid Telegram HTML; the message mimics Telegram's wording."""


def check_telegram_html(text: str) -> str:
    """Parse like Telegram's HTML mode and return the visible text; raise `HtmlEntityError` if bad.

    Stricter than Telegram on one point: a bare ``&`` that starts no entity is refused (Telegram's
    docs require it escaped; what it does otherwise is unspecified).
    """
    plain: list[str] = []
    stack: list[str] = []
    i = 0
    length = len(text)
    while i < length:
        ch = text[i]
        if ch == "<":
            offset = len(text[:i].encode())
            match = _TAG.match(text, i)
            if match is None:
                raise HtmlEntityError(f"Unclosed start tag at byte offset {offset}")
            closing, name, attrs = match.group(1), (match.group(2) or "").lower(), match.group(3)
            if closing:
                if not stack:
                    raise HtmlEntityError(f"Unexpected end tag at byte offset {offset}")
                if stack[-1] != name:
                    raise HtmlEntityError(
                        f'Unmatched end tag at byte offset {offset}, expected "</{stack[-1]}>", found "</{name}>"'
                    )
                stack.pop()
            else:
                if name not in _ALLOWED_TAGS:
                    raise HtmlEntityError(f'Unsupported start tag "{name}" at byte offset {offset}')
                attributes = {m.group(1).lower(): next((g for g in m.groups()[1:] if g is not None), "")
                              for m in _ATTR.finditer(attrs)}
                if name == "span" and attributes.get("class") != "tg-spoiler":
                    raise HtmlEntityError(f'Tag "span" must have class "tg-spoiler" at byte offset {offset}')
                if name == "tg-emoji" and "emoji-id" not in attributes:
                    raise HtmlEntityError(f'Tag "tg-emoji" must have attribute "emoji-id" at byte offset {offset}')
                stack.append(name)
            i = match.end()
        elif ch == "&":
            match = _ENTITY.match(text, i)
            if match is None:
                offset = len(text[:i].encode())
                raise HtmlEntityError(f"Can't find end of the entity starting at byte offset {offset}")
            body = match.group(1)
            if body.startswith("#"):
                plain.append(html.unescape(match.group(0)))
            elif body in _NAMED_ENTITIES:
                plain.append(_NAMED_ENTITIES[body])
            else:
                offset = len(text[:i].encode())
                raise HtmlEntityError(f'Unsupported HTML entity "&{body};" at byte offset {offset}')
            i = match.end()
        else:
            nxt = min((p for p in (text.find("<", i), text.find("&", i)) if p != -1), default=length)
            plain.append(text[i:nxt])
            i = nxt
    if stack:
        raise HtmlEntityError(f'Can\'t find end tag corresponding to start tag "{stack[-1]}"')
    return "".join(plain)


def _loose_plain_text(text: str) -> str:
    return html.unescape(re.sub(r"<[^>]*>", "", text))


# --------------------------------------------------------------------------------------------------
# Records that tests inspect


@dataclass
class SentMessage:
    """One message the bot sent (or, in `FakeTelegram.edits`, one edit it made)."""

    method: str
    chat_id: int
    text: str | None
    parse_mode: str | None
    reply_markup: dict | None
    message_id: int
    at: float
    params: dict
    file: bytes | None = None
    file_name: str | None = None

    @property
    def visible_text(self) -> str:
        """What the user sees: tags removed and entities decoded when the text is HTML."""
        if self.text is None:
            return ""
        if self.parse_mode and self.parse_mode.lower() == "html":
            return _loose_plain_text(self.text)
        return self.text

    @property
    def buttons(self) -> list[dict]:
        """Inline keyboard buttons, row by row flattened."""
        rows = (self.reply_markup or {}).get("inline_keyboard", [])
        return [button for row in rows for button in row]


@dataclass
class RecordedRequest:
    method: str
    params: dict
    at: float
    status: int = 0
    answer: dict | None = None


@dataclass
class ApiFailure:
    """An error answer the fake gave (injected or earned)."""

    method: str
    chat_id: int | str | None
    status: int
    description: str
    at: float


@dataclass
class FakeChat:
    id: int
    type: str
    title: str | None = None
    username: str | None = None
    first_name: str | None = None
    is_forum: bool = False
    blocked: str | None = None
    migrated_to: int | None = None
    last_message_id: int = 0

    def as_json(self) -> dict:
        data: dict[str, Any] = {"id": self.id, "type": self.type}
        if self.type == "private":
            data["first_name"] = self.first_name or f"User{self.id}"
        else:
            data["title"] = self.title or f"Chat {self.id}"
        if self.username:
            data["username"] = self.username
        if self.is_forum:
            data["is_forum"] = True
        return data


class _ApiError(Exception):
    def __init__(self, status: int, description: str, parameters: dict | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    def answer(self) -> dict:
        body: dict[str, Any] = {"ok": False, "error_code": self.status, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def _bad_request(description: str) -> _ApiError:
    return _ApiError(400, f"Bad Request: {description}")


class _SlidingWindow:
    """At most `limit` events in any window of `seconds` (shortened by `tolerance`)."""

    __slots__ = ("limit", "seconds", "events")

    def __init__(self, limit: int, seconds: float) -> None:
        self.limit = limit
        self.seconds = seconds
        self.events: deque[float] = deque()

    def retry_after(self, now: float) -> float:
        """0 if one more event fits now, else seconds until it would."""
        events = self.events
        while events and events[0] <= now - self.seconds:
            events.popleft()
        if len(events) < self.limit:
            return 0.0
        return events[len(events) - self.limit] + self.seconds - now


@dataclass
class _Limits:
    global_per_second: int
    private_per_second: float
    private_burst: int
    group_per_minute: int
    tolerance: float
    global_window: _SlidingWindow = field(init=False)
    per_chat: dict[int, list[_SlidingWindow]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.global_window = _SlidingWindow(self.global_per_second, 1.0 - self.tolerance)

    def windows_for(self, chat: FakeChat) -> list[_SlidingWindow]:
        windows = self.per_chat.get(chat.id)
        if windows is None:
            if chat.type == "private":
                period = 1.0 / self.private_per_second
                windows = [_SlidingWindow(self.private_burst, period - self.tolerance),
                           _SlidingWindow(self.private_burst - 1 + 10, 10 * period - self.tolerance)]
            else:
                windows = [_SlidingWindow(self.group_per_minute, 60.0 - self.tolerance)]
            self.per_chat[chat.id] = windows
        return windows


# --------------------------------------------------------------------------------------------------


class FakeTelegram:
    """The fake server plus the API tests use to drive it (see the module docstring)."""

    def __init__(
        self,
        token: str = "123456:TEST-token",
        bot_username: str = "veille_test_bot",
        *,
        bot_name: str = "Veille",
        strict_chats: bool = False,
        max_poll_timeout: float = 1.0,
        port: int = 0,
    ) -> None:
        self.token = token
        self.bot_id = int(token.split(":", 1)[0])
        self.bot_username = bot_username
        self.bot_name = bot_name
        self.strict_chats = strict_chats
        self.max_poll_timeout = max_poll_timeout
        self.validate_html: Callable[[str], object] | None = check_telegram_html
        self.requests: list[RecordedRequest] = []
        self.errors: list[ApiFailure] = []
        self.too_many_requests = 0
        self.deleted: list[tuple[int, int]] = []
        self.callback_answers: list[dict] = []
        self.webhook: dict | None = None
        self.webhook_failures = 0
        self._webhook_task: asyncio.Task | None = None

        self._port = port
        self._runner: web.AppRunner | None = None
        self.base_url = ""
        self._chats: dict[int, FakeChat] = {}
        self._users: dict[int, dict] = {}
        self._members: dict[tuple[int, int], str] = {}
        self._messages: dict[tuple[int, int], tuple[dict, bool]] = {}
        self._sent: list[SentMessage] = []
        self._sent_by_chat: dict[int, list[SentMessage]] = {}
        self._edits: list[SentMessage] = []
        self._files: dict[str, tuple[str, bytes]] = {}
        self._file_counter = itertools.count(1)
        self._commands: dict[tuple[str, str], list[dict]] = {}
        self._updates: deque[dict] = deque()
        self._next_update_id = 100_000
        self._allowed_updates: frozenset[str] = _DEFAULT_ALLOWED_UPDATES
        self._current_poll: object | None = None
        self._updates_event = asyncio.Event()
        self._activity_event = asyncio.Event()
        self._closing = False
        self._pending_callbacks: set[str] = set()
        self._callback_counter = itertools.count(1)
        self._fail_next: dict[str, deque[tuple[int, bool]]] = {}
        self._random: tuple[random.Random, float, int, frozenset[str]] | None = None
        self._delays: dict[str, float] = {}
        self._flood: dict[int, deque[int]] = {}
        self._limits: _Limits | None = None
        self._methods: dict[str, Callable[[dict], Any]] = {
            name.lower(): getattr(self, f"_m_{name}")
            for name in (
                "getMe", "getUpdates", "deleteWebhook", "setWebhook", "getWebhookInfo", "setMyCommands",
                "getMyCommands", "deleteMyCommands", "sendMessage", "editMessageText",
                "editMessageReplyMarkup", "deleteMessage", "answerCallbackQuery", "sendDocument",
                "sendPhoto", "getChat", "getChatMember", "getChatAdministrators", "getFile", "close",
                "logOut",
            )
        }
        self._canonical = {name.lower(): name for name in (m[3:] for m in dir(self) if m.startswith("_m_"))}

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> FakeTelegram:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self._port)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        self._closing = True
        self._wake_pollers()
        if self._webhook_task is not None:
            self._webhook_task.cancel()
            await asyncio.gather(self._webhook_task, return_exceptions=True)
            self._webhook_task = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTelegram:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---------------------------------------------------------------- chats and users

    def add_chat(
        self,
        chat_id: int,
        chat_type: str | None = None,
        *,
        title: str | None = None,
        username: str | None = None,
        first_name: str | None = None,
        is_forum: bool = False,
    ) -> FakeChat:
        """Register (or update) a chat; the type defaults from the id like Telegram's id ranges."""
        chat = self._chats.get(chat_id)
        if chat is None:
            chat = FakeChat(chat_id, chat_type or _type_from_id(chat_id))
            self._chats[chat_id] = chat
        elif chat_type:
            chat.type = chat_type
        chat.title = title or chat.title
        chat.username = username or chat.username
        chat.first_name = first_name or chat.first_name
        chat.is_forum = is_forum or chat.is_forum
        return chat

    def chat(self, chat_id: int) -> FakeChat:
        return self._chats[chat_id]

    def forget_chat(self, chat_id: int) -> None:
        """Later sends answer 400 "chat not found" (needs strict_chats, else it is recreated)."""
        self._chats.pop(chat_id, None)

    def set_member(self, chat_id: int, user_id: int, status: str) -> None:
        """getChatMember answers this status (creator, administrator, member, left, kicked)."""
        self._members[(chat_id, user_id)] = status

    def _user(self, user_id: int, *, username: str | None = None, first_name: str | None = None,
              language_code: str | None = None) -> dict:
        user = self._users.get(user_id)
        if user is None:
            user = {"id": user_id, "is_bot": False, "first_name": first_name or f"User{user_id}"}
            self._users[user_id] = user
        if username:
            user["username"] = username
        if first_name:
            user["first_name"] = first_name
        if language_code:
            user["language_code"] = language_code
        return user

    @property
    def bot_user(self) -> dict:
        return {"id": self.bot_id, "is_bot": True, "first_name": self.bot_name, "username": self.bot_username}

    # ---------------------------------------------------------------- pushing updates

    def push_update(self, update: dict) -> dict:
        """Queue a raw update; an ``update_id`` is assigned when missing."""
        if "update_id" not in update:
            update = {"update_id": self._next_update_id, **update}
        self._next_update_id = max(self._next_update_id, update["update_id"]) + 1
        self._updates.append(update)
        self._wake_pollers()
        return update

    def push_message(
        self,
        chat_id: int,
        text: str,
        *,
        user_id: int | None = None,
        chat_type: str | None = None,
        language_code: str | None = "fr",
        username: str | None = None,
        first_name: str | None = None,
        title: str | None = None,
        message_thread_id: int | None = None,
        reply_to: int | None = None,
    ) -> dict:
        """A user writes `text` in the chat; commands get a bot_command entity as Telegram adds.

        A new chat's type is `chat_type`, or follows from the id (positive = private); the author is
        the chat's user in a private chat, else `user_id` (default 10001).
        """
        chat = self._chats.get(chat_id) or self.add_chat(
            chat_id, chat_type, title=title,
            username=username if (chat_type or _type_from_id(chat_id)) == "private" else None,
            first_name=first_name, is_forum=message_thread_id is not None,
        )
        if user_id is None:
            user_id = chat_id if chat.type == "private" else 10_001
        user = self._user(user_id, username=username, first_name=first_name, language_code=language_code)
        chat.last_message_id += 1
        message: dict[str, Any] = {
            "message_id": chat.last_message_id, "date": int(time.time()), "chat": chat.as_json(),
        }
        if chat.type == "channel":
            message["sender_chat"] = chat.as_json()
        else:
            message["from"] = dict(user)
        if message_thread_id is not None:
            message["message_thread_id"] = message_thread_id
            message["is_topic_message"] = True
        if reply_to is not None:
            replied = self._messages.get((chat_id, reply_to))
            message["reply_to_message"] = (
                replied[0] if replied else {"message_id": reply_to, "date": 0, "chat": chat.as_json()}
            )
        message["text"] = text
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": _utf16_len(command)}]
        self._messages[(chat_id, message["message_id"])] = (message, False)
        key = "channel_post" if chat.type == "channel" else "message"
        return self.push_update({key: message})

    def push_callback(self, chat_id: int, data: str, *, message_id: int, user_id: int | None = None) -> dict:
        """A user presses an inline button carrying `data` under the bot's message `message_id`."""
        chat = self._chats.get(chat_id) or self.add_chat(chat_id)
        if user_id is None:
            user_id = chat_id if chat.type == "private" else 10_001
        stored = self._messages.get((chat_id, message_id))
        message = stored[0] if stored else {"message_id": message_id, "date": 0, "chat": chat.as_json()}
        query_id = str(next(self._callback_counter) * 1_000_003)
        self._pending_callbacks.add(query_id)
        return self.push_update({"callback_query": {
            "id": query_id, "from": dict(self._user(user_id)), "chat_instance": str(abs(chat_id) * 7 + 3),
            "message": message, "data": data,
        }})

    def push_my_chat_member(
        self,
        chat_id: int,
        *,
        new_status: str = "kicked",
        old_status: str = "member",
        user_id: int | None = None,
        chat_type: str | None = None,
    ) -> dict:
        """The bot's membership changed; "kicked"/"left" also blocks sends, "member"/"administrator" unblocks."""
        chat = self._chats.get(chat_id) or self.add_chat(chat_id, chat_type)
        if user_id is None:
            user_id = chat_id if chat.type == "private" else 10_001
        if new_status in ("kicked", "left"):
            self.block(chat_id)
        elif new_status in ("member", "administrator", "creator"):
            chat.blocked = None
        return self.push_update({"my_chat_member": {
            "chat": chat.as_json(), "from": dict(self._user(user_id)), "date": int(time.time()),
            "old_chat_member": self._member_json(old_status, self.bot_user),
            "new_chat_member": self._member_json(new_status, self.bot_user),
        }})

    # ---------------------------------------------------------------- misbehaviour on demand

    def block(self, chat_id: int, description: str | None = None) -> None:
        """Later sends to the chat answer 403 with Telegram's wording for its chat type."""
        chat = self._chats.get(chat_id) or self.add_chat(chat_id)
        chat.blocked = description or {
            "private": "Forbidden: bot was blocked by the user",
            "group": "Forbidden: bot was kicked from the group chat",
            "supergroup": "Forbidden: bot was kicked from the supergroup chat",
            "channel": "Forbidden: bot is not a member of the channel chat",
        }[chat.type]

    def unblock(self, chat_id: int) -> None:
        self._chats[chat_id].blocked = None

    def migrate(self, old_chat_id: int, new_chat_id: int) -> None:
        """The group became a supergroup: sends to the old id answer 400 with migrate_to_chat_id."""
        old = self._chats.get(old_chat_id) or self.add_chat(old_chat_id, "group")
        old.migrated_to = new_chat_id
        self.add_chat(new_chat_id, "supergroup", title=old.title)

    def fail_next(self, method: str, status: int = 500, count: int = 1, *, html: bool = False) -> None:
        """The next `count` calls of `method` fail with `status` (0 = connection dropped)."""
        queue = self._fail_next.setdefault(method.lower(), deque())
        queue.extend([(status, html)] * count)

    def random_failures(
        self, rate: float = 0.05, seed: int = 1, *, status: int = 500, methods: Iterable[str] = SEND_METHODS
    ) -> None:
        """Each call of `methods` fails with probability `rate` (seeded, so runs repeat); rate 0 stops."""
        self._random = (random.Random(seed), rate, status, frozenset(m.lower() for m in methods)) if rate else None

    def delay(self, method: str, seconds: float) -> None:
        """Answer `method` only after `seconds` (to exercise client timeouts); 0 removes."""
        self._delays[method.lower()] = seconds

    def flood_wait(self, chat_id: int, retry_after: int, *, times: int = 1) -> None:
        """The next `times` sends to the chat answer 429 with this retry_after."""
        self._flood.setdefault(chat_id, deque()).extend([retry_after] * times)

    def clear_faults(self, *, flood_waits: bool = True) -> None:
        """Removes the injected faults: queued and random failures, delays and (unless told to keep
        them) queued 429s. The limits of `enforce_limits` stay."""
        self._fail_next.clear()
        self._random = None
        self._delays.clear()
        if flood_waits:
            self._flood.clear()

    def enforce_limits(
        self,
        global_per_second: int = 30,
        private_per_second: float = 1.0,
        private_burst: int = 3,
        group_per_minute: int = 20,
        *,
        tolerance: float = 0.05,
    ) -> None:
        """Count sends in sliding windows and answer 429 to violations (see module docstring)."""
        self._limits = _Limits(global_per_second, private_per_second, private_burst, group_per_minute, tolerance)

    def disable_limits(self) -> None:
        self._limits = None

    def add_file(self, content: bytes, *, file_name: str = "file.bin") -> str:
        """Store a downloadable file; returns its file_id for getFile."""
        return self._store_file(content, file_name)

    # ---------------------------------------------------------------- inspection

    def sent(self, chat_id: int | None = None) -> list[SentMessage]:
        if chat_id is None:
            return list(self._sent)
        return list(self._sent_by_chat.get(chat_id, ()))

    def edits(self, chat_id: int | None = None) -> list[SentMessage]:
        return [e for e in self._edits if chat_id is None or e.chat_id == chat_id]

    def calls(self, method: str) -> list[RecordedRequest]:
        wanted = method.lower()
        return [r for r in self.requests if r.method.lower() == wanted]

    def message(self, chat_id: int, message_id: int) -> dict | None:
        """The current state of a message (after edits), or None if deleted/unknown."""
        stored = self._messages.get((chat_id, message_id))
        return stored[0] if stored else None

    def commands(self, scope: dict | None = None, language_code: str = "") -> list[dict]:
        return list(self._commands.get((_scope_key(scope), language_code), ()))

    @property
    def pending_updates(self) -> int:
        return len(self._updates)

    # A timeout parameter (not asyncio.timeout around the call) so every wait in a test is bounded
    # by default and the error can say what was awaited.
    async def wait_until(
        self, predicate: Callable[[], bool], *, timeout: float = 10.0, what: str = "condition"  # noqa: ASYNC109
    ) -> None:
        """Wait until `predicate()` holds, re-checking after every request; TimeoutError names `what`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
            event = self._activity_event
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except TimeoutError:
                pass

    async def wait_for_messages(
        self, count: int, *, chat_id: int | None = None, timeout: float = 10.0  # noqa: ASYNC109
    ) -> list[SentMessage]:
        """Wait until at least `count` messages were sent (to `chat_id` if given); returns them."""
        def arrived() -> int:
            return len(self._sent) if chat_id is None else len(self._sent_by_chat.get(chat_id, ()))

        try:
            await self.wait_until(lambda: arrived() >= count, timeout=timeout)
        except TimeoutError:
            got = self.sent(chat_id)
            sample = "; ".join(f"{m.chat_id}: {(m.text or '')[:60]!r}" for m in got[-5:])
            where = f" to chat {chat_id}" if chat_id is not None else ""
            raise TimeoutError(
                f"expected {count} messages{where} within {timeout}s, got {len(got)}"
                f" (last: {sample or 'none'}); errors answered: {len(self.errors)}"
            ) from None
        return self.sent(chat_id)

    # ---------------------------------------------------------------- HTTP plumbing

    def _wake_pollers(self) -> None:
        self._updates_event.set()
        self._updates_event = asyncio.Event()

    def _note_activity(self) -> None:
        self._activity_event.set()
        self._activity_event = asyncio.Event()

    async def _read_params(self, request: web.Request) -> dict:
        params: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            if request.content_type == "application/json":
                body = await request.json()
                if isinstance(body, dict):
                    params.update(body)
                return params
            form = await request.post()
            for key, value in form.items():
                params[key] = value
        for key, value in list(params.items()):
            if not isinstance(value, str):
                continue
            if key in _JSON_FIELDS:
                try:
                    params[key] = json.loads(value)
                except ValueError:
                    raise _bad_request(f"can't parse {key} JSON object") from None
            elif key in _INT_FIELDS:
                params[key] = _int_or_error(key, value)
            elif key == "chat_id":
                params[key] = int(value) if re.fullmatch(r"-?\d+", value) else value
            elif key in _BOOL_FIELDS:
                params[key] = value.lower() == "true"
        return params

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw_method = request.match_info["method"]
        method = self._canonical.get(raw_method.lower(), raw_method)
        record = RecordedRequest(method, {}, time.monotonic())
        self.requests.append(record)
        try:
            try:
                record.params = await self._read_params(request)
            except ValueError:
                raise _bad_request("invalid request body") from None
            self._note_activity()  # lets tests wait for "the bot is now polling"
            if request.match_info["token"] != self.token:
                raise _ApiError(401, "Unauthorized")
            handler = self._methods.get(method.lower())
            if handler is None:
                raise _ApiError(404, "Not Found")
            if seconds := self._delays.get(method.lower()):
                await asyncio.sleep(seconds)
            injected = self._injected_failure(method)
            if injected is not None:
                status, as_html = injected
                if status == 0:
                    self._record_error(record, 0, "connection dropped")
                    if request.transport is not None:
                        request.transport.abort()
                    return web.Response(status=500)
                text = _SERVER_ERRORS.get(status, "Internal Server Error")
                if as_html:
                    self._record_error(record, status, text)
                    return web.Response(status=status, text=_NGINX_PAGE.format(code=status, text=text),
                                        content_type="text/html")
                raise _ApiError(status, text)
            result = handler(record.params)
            if asyncio.iscoroutine(result):
                result = await result
            answer: dict = {"ok": True, "result": result}
            record.status = 200
        except _ApiError as error:
            answer = error.answer()
            self._record_error(record, error.status, error.description)
            if error.status == 429:
                self.too_many_requests += 1
        finally:
            self._note_activity()
        record.answer = answer
        return web.json_response(answer, status=record.status)

    def _record_error(self, record: RecordedRequest, status: int, description: str) -> None:
        record.status = status
        chat_id = record.params.get("chat_id")
        self.errors.append(ApiFailure(record.method, chat_id, status, description, record.at))

    def _injected_failure(self, method: str) -> tuple[int, bool] | None:
        queue = self._fail_next.get(method.lower())
        if queue:
            return queue.popleft()
        if self._random is not None:
            rng, rate, status, methods = self._random
            if method.lower() in methods and rng.random() < rate:
                return status, False
        return None

    async def _download(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        path = request.match_info["path"]
        for stored_path, content in self._files.values():
            if stored_path == path:
                return web.Response(body=content, content_type="application/octet-stream")
        return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)

    # ---------------------------------------------------------------- sending helpers

    def _resolve_chat(self, chat_id: Any) -> FakeChat:
        if chat_id is None or chat_id == "":
            raise _bad_request("chat_id is empty")
        if isinstance(chat_id, str):
            name = chat_id.removeprefix("@").lower()
            for chat in self._chats.values():
                if chat.username and chat.username.lower() == name:
                    return chat
            raise _bad_request("chat not found")
        chat = self._chats.get(chat_id)
        if chat is None:
            if self.strict_chats:
                raise _bad_request("chat not found")
            chat = self.add_chat(chat_id)
        return chat

    def _check_reachable(self, chat: FakeChat) -> None:
        if chat.migrated_to is not None:
            raise _ApiError(400, "Bad Request: group chat was upgraded to a supergroup chat",
                            {"migrate_to_chat_id": chat.migrated_to})
        if chat.blocked:
            raise _ApiError(403, chat.blocked)

    def _check_rate(self, chat: FakeChat) -> list[_SlidingWindow]:
        flood = self._flood.get(chat.id)
        if flood:
            retry_after = flood.popleft()
            raise _ApiError(429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after})
        if self._limits is None:
            return []
        now = time.monotonic()
        windows = [self._limits.global_window, *self._limits.windows_for(chat)]
        wait = max(window.retry_after(now) for window in windows)
        if wait > 0:
            retry_after = max(1, math.ceil(wait))
            raise _ApiError(429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after})
        return windows

    def _visible_text(self, text: str, parse_mode: str | None) -> str:
        if parse_mode and parse_mode.lower() == "html":
            if self.validate_html is None:
                return _loose_plain_text(text)
            try:
                visible = self.validate_html(text)
            except ValueError as error:
                raise _bad_request(f"can't parse entities: {error}") from None
            return visible if isinstance(visible, str) else _loose_plain_text(text)
        return text

    def _check_text(self, text: Any, parse_mode: str | None, *, caption: bool = False) -> None:
        if text is None:
            if caption:
                return
            raise _bad_request("message text is empty")
        visible = self._visible_text(str(text), parse_mode)
        if not caption and not visible.strip():
            raise _bad_request("message text is empty")
        if len(visible) > (MAX_CAPTION if caption else MAX_TEXT):
            raise _bad_request("message caption is too long" if caption else "message is too long")

    @staticmethod
    def _check_markup(markup: Any) -> None:
        if markup is None:
            return
        if not isinstance(markup, dict):
            raise _bad_request("can't parse reply keyboard markup JSON object")
        for row in markup.get("inline_keyboard", []):
            for button in row:
                data = button.get("callback_data")
                if data is not None and not 1 <= len(data.encode()) <= 64:
                    raise _bad_request("BUTTON_DATA_INVALID")
                url = button.get("url")
                if url is not None and not re.match(r"^(https?|tg)://\S+$", url):
                    raise _bad_request(f"inline keyboard button URL '{url}' is invalid")

    def _deliver(self, method: str, chat: FakeChat, params: dict, extra: dict,
                 text_key: str, windows: list[_SlidingWindow], file: tuple[bytes, str] | None = None) -> dict:
        now = time.monotonic()
        for window in windows:
            window.events.append(now)
        chat.last_message_id += 1
        message: dict[str, Any] = {"message_id": chat.last_message_id, "date": int(time.time()),
                                   "chat": chat.as_json()}
        if chat.type == "channel":
            message["sender_chat"] = chat.as_json()
        else:
            message["from"] = self.bot_user
        if params.get("message_thread_id"):
            message["message_thread_id"] = params["message_thread_id"]
            message["is_topic_message"] = True
        message.update(extra)
        text = params.get(text_key)
        if text is not None:
            message[text_key] = self._visible_text(str(text), params.get("parse_mode"))
        markup = params.get("reply_markup")
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        self._messages[(chat.id, chat.last_message_id)] = (message, True)
        sent = SentMessage(method, chat.id, text, params.get("parse_mode"), markup, chat.last_message_id, now,
                           params, file[0] if file else None, file[1] if file else None)
        self._sent.append(sent)
        self._sent_by_chat.setdefault(chat.id, []).append(sent)
        return message

    def _store_file(self, content: bytes, file_name: str) -> str:
        number = next(self._file_counter)
        file_id = f"FILE{number:06d}"
        self._files[file_id] = (f"documents/file_{number}_{file_name}", content)
        return file_id

    def _read_upload(self, params: dict, key: str) -> tuple[bytes, str] | None:
        value = params.get(key)
        if isinstance(value, str) and value.startswith("attach://"):
            value = params.get(value.removeprefix("attach://"))
        if isinstance(value, web.FileField):
            return value.file.read(), value.filename or key
        if isinstance(value, str) and value in self._files:
            path, content = self._files[value]
            return content, path.rsplit("/", 1)[-1]
        if isinstance(value, str) and value:
            return b"", value.rsplit("/", 1)[-1]  # a URL or a file_id we never saw: accept as Telegram would try
        return None

    # ---------------------------------------------------------------- methods

    def _m_getMe(self, params: dict) -> dict:
        return {**self.bot_user, "can_join_groups": True, "can_read_all_group_messages": False,
                "supports_inline_queries": False}

    def _m_close(self, params: dict) -> bool:
        return True

    def _m_logOut(self, params: dict) -> bool:
        return True

    async def _m_getUpdates(self, params: dict) -> list[dict]:
        if self.webhook is not None:
            raise _ApiError(409, "Conflict: can't use getUpdates method while webhook is active; "
                                 "use deleteWebhook to delete the webhook first")
        offset = params.get("offset") or 0
        if offset > 0:
            while self._updates and self._updates[0]["update_id"] < offset:
                self._updates.popleft()
        elif offset < 0:
            while len(self._updates) > -offset:
                self._updates.popleft()
        limit = min(100, max(1, params.get("limit") or 100))
        if params.get("allowed_updates") is not None:
            self._allowed_updates = frozenset(params["allowed_updates"]) or _DEFAULT_ALLOWED_UPDATES
        timeout = min(float(params.get("timeout") or 0), self.max_poll_timeout)
        me = object()
        previous, self._current_poll = self._current_poll, me
        if previous is not None:
            self._wake_pollers()  # the superseded poll notices and answers 409
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if self._current_poll is not me:
                raise _ApiError(409, "Conflict: terminated by other getUpdates request; "
                                     "make sure that only one bot instance is running")
            ready = self._deliverable(limit)
            remaining = deadline - loop.time()
            if ready or remaining <= 0 or self._closing:
                if self._current_poll is me:
                    self._current_poll = None
                return ready
            event = self._updates_event
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except TimeoutError:
                pass

    def _deliverable(self, limit: int) -> list[dict]:
        ready = []
        for update in self._updates:
            if any(key in self._allowed_updates for key in update if key != "update_id"):
                ready.append(update)
                if len(ready) == limit:
                    break
        return ready

    def _m_setWebhook(self, params: dict) -> bool:
        url = params.get("url") or ""
        if not url:
            self.webhook = None
            return True
        if not url.startswith("https://") and not url.startswith("http://"):
            raise _bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        self.webhook = {"url": url, "secret_token": params.get("secret_token"),
                        "allowed_updates": params.get("allowed_updates")}
        if params.get("allowed_updates") is not None:
            self._allowed_updates = frozenset(params["allowed_updates"]) or _DEFAULT_ALLOWED_UPDATES
        if params.get("drop_pending_updates"):
            self._updates.clear()
        if self._webhook_task is None or self._webhook_task.done():
            self._webhook_task = asyncio.get_running_loop().create_task(self._push_to_webhook())
        self._wake_pollers()
        return True

    async def _push_to_webhook(self) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            while self.webhook is not None and not self._closing:
                ready = self._deliverable(1)
                if not ready:
                    event = self._updates_event
                    try:
                        await asyncio.wait_for(event.wait(), 1.0)
                    except TimeoutError:
                        pass
                    continue
                update, hook = ready[0], self.webhook
                headers = {"X-Telegram-Bot-Api-Secret-Token": hook["secret_token"]} if hook["secret_token"] else {}
                try:
                    async with http.post(hook["url"], json=update, headers=headers) as resp:
                        delivered = resp.status == 200
                        reply = await resp.read() if delivered else b""
                except (aiohttp.ClientError, TimeoutError):
                    delivered, reply = False, b""
                if not delivered:
                    self.webhook_failures += 1
                    await asyncio.sleep(0.2)
                    continue
                if self._updates and self._updates[0] is update:
                    self._updates.popleft()
                else:
                    self._updates.remove(update)
                await self._run_webhook_reply(reply)
                self._note_activity()

    async def _run_webhook_reply(self, reply: bytes) -> None:
        try:
            call = json.loads(reply) if reply.strip() else None
        except ValueError:
            return
        if not isinstance(call, dict) or not isinstance(call.get("method"), str):
            return
        method = self._canonical.get(call["method"].lower(), call["method"])
        params = {k: v for k, v in call.items() if k != "method"}
        record = RecordedRequest(method, params, time.monotonic())
        self.requests.append(record)
        handler = self._methods.get(method.lower())
        try:
            if handler is None:
                raise _ApiError(404, "Not Found")
            result = handler(params)
            if asyncio.iscoroutine(result):
                await result
            record.status = 200
        except _ApiError as error:  # Telegram drops errors of webhook replies silently
            self._record_error(record, error.status, error.description)

    def _m_deleteWebhook(self, params: dict) -> bool:
        self.webhook = None
        if params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    def _m_getWebhookInfo(self, params: dict) -> dict:
        info: dict[str, Any] = {"url": self.webhook["url"] if self.webhook else "",
                                "has_custom_certificate": False, "pending_update_count": len(self._updates)}
        if self.webhook and self.webhook.get("allowed_updates"):
            info["allowed_updates"] = self.webhook["allowed_updates"]
        return info

    def _m_setMyCommands(self, params: dict) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise _bad_request("can't parse commands JSON object")
        if len(commands) > 100:
            raise _bad_request("BOT_COMMANDS_TOO_MUCH")
        for command in commands:
            if not _COMMAND.match(str(command.get("command", ""))):
                raise _bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise _bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        key = (_scope_key(params.get("scope")), params.get("language_code") or "")
        if commands:
            self._commands[key] = [{"command": c["command"], "description": c["description"]} for c in commands]
        else:
            self._commands.pop(key, None)
        return True

    def _m_getMyCommands(self, params: dict) -> list[dict]:
        return self.commands(params.get("scope"), params.get("language_code") or "")

    def _m_deleteMyCommands(self, params: dict) -> bool:
        self._commands.pop((_scope_key(params.get("scope")), params.get("language_code") or ""), None)
        return True

    def _m_sendMessage(self, params: dict) -> dict:
        chat = self._resolve_chat(params.get("chat_id"))
        self._check_reachable(chat)
        self._check_text(params.get("text"), params.get("parse_mode"))
        self._check_markup(params.get("reply_markup"))
        windows = self._check_rate(chat)
        extra = {}
        if isinstance(params.get("link_preview_options"), dict):
            extra["link_preview_options"] = params["link_preview_options"]
        return self._deliver("sendMessage", chat, params, extra, "text", windows)

    def _m_sendDocument(self, params: dict) -> dict:
        chat = self._resolve_chat(params.get("chat_id"))
        self._check_reachable(chat)
        upload = self._read_upload(params, "document")
        if upload is None:
            raise _bad_request("there is no document in the request")
        self._check_text(params.get("caption"), params.get("parse_mode"), caption=True)
        self._check_markup(params.get("reply_markup"))
        windows = self._check_rate(chat)
        content, name = upload
        file_id = self._store_file(content, name)
        document = {"file_id": file_id, "file_unique_id": f"U{file_id}", "file_name": name,
                    "mime_type": "application/octet-stream", "file_size": len(content)}
        return self._deliver("sendDocument", chat, params, {"document": document}, "caption", windows, upload)

    def _m_sendPhoto(self, params: dict) -> dict:
        chat = self._resolve_chat(params.get("chat_id"))
        self._check_reachable(chat)
        upload = self._read_upload(params, "photo")
        if upload is None:
            raise _bad_request("there is no photo in the request")
        self._check_text(params.get("caption"), params.get("parse_mode"), caption=True)
        self._check_markup(params.get("reply_markup"))
        windows = self._check_rate(chat)
        content, name = upload
        file_id = self._store_file(content, name)
        photo = [{"file_id": file_id, "file_unique_id": f"U{file_id}", "width": 320, "height": 240,
                  "file_size": len(content)}]
        return self._deliver("sendPhoto", chat, params, {"photo": photo}, "caption", windows, upload)

    def _editable(self, params: dict, action: str) -> tuple[FakeChat, dict]:
        chat = self._resolve_chat(params.get("chat_id"))
        self._check_reachable(chat)
        stored = self._messages.get((chat.id, params.get("message_id")))
        if stored is None:
            raise _bad_request(f"message to {action} not found")
        message, by_bot = stored
        if action == "edit" and not by_bot:
            raise _bad_request("message can't be edited")
        return chat, message

    def _record_edit(self, method: str, chat: FakeChat, message: dict, params: dict) -> None:
        self._edits.append(SentMessage(method, chat.id, params.get("text"), params.get("parse_mode"),
                                       params.get("reply_markup"), message["message_id"], time.monotonic(),
                                       params))

    def _m_editMessageText(self, params: dict) -> dict | bool:
        self._check_text(params.get("text"), params.get("parse_mode"))
        self._check_markup(params.get("reply_markup"))
        if params.get("inline_message_id"):
            self._edits.append(SentMessage("editMessageText", 0, params.get("text"), params.get("parse_mode"),
                                           params.get("reply_markup"), 0, time.monotonic(), params))
            return True
        chat, message = self._editable(params, "edit")
        visible = self._visible_text(str(params["text"]), params.get("parse_mode"))
        markup = params.get("reply_markup")
        new_markup = markup if isinstance(markup, dict) and "inline_keyboard" in markup else None
        if message.get("text") == visible and message.get("reply_markup") == new_markup:
            raise _bad_request("message is not modified: specified new message content and reply markup are "
                               "exactly the same as a current content and reply markup of the message")
        message["text"] = visible
        message["edit_date"] = int(time.time())
        if new_markup is None:
            message.pop("reply_markup", None)  # an edit without reply_markup removes the keyboard
        else:
            message["reply_markup"] = new_markup
        self._record_edit("editMessageText", chat, message, params)
        return message

    def _m_editMessageReplyMarkup(self, params: dict) -> dict | bool:
        self._check_markup(params.get("reply_markup"))
        if params.get("inline_message_id"):
            return True
        chat, message = self._editable(params, "edit")
        markup = params.get("reply_markup")
        new_markup = markup if isinstance(markup, dict) and markup.get("inline_keyboard") else None
        if message.get("reply_markup") == new_markup:
            raise _bad_request("message is not modified: specified new message content and reply markup are "
                               "exactly the same as a current content and reply markup of the message")
        if new_markup is None:
            message.pop("reply_markup", None)
        else:
            message["reply_markup"] = new_markup
        message["edit_date"] = int(time.time())
        self._record_edit("editMessageReplyMarkup", chat, message, params)
        return message

    def _m_deleteMessage(self, params: dict) -> bool:
        chat, message = self._editable(params, "delete")
        del self._messages[(chat.id, message["message_id"])]
        self.deleted.append((chat.id, message["message_id"]))
        return True

    def _m_answerCallbackQuery(self, params: dict) -> bool:
        query_id = str(params.get("callback_query_id", ""))
        if query_id not in self._pending_callbacks:
            raise _bad_request("query is too old and response timeout expired or query ID is invalid")
        self._pending_callbacks.discard(query_id)
        self.callback_answers.append(params)
        return True

    def _m_getChat(self, params: dict) -> dict:
        chat = self._resolve_chat(params.get("chat_id"))
        if chat.blocked and chat.type != "private":
            raise _ApiError(403, chat.blocked)
        return {**chat.as_json(), "accent_color_id": 0, "max_reaction_count": 11,
                "accepted_gift_types": {"unlimited_gifts": False, "limited_gifts": False, "unique_gifts": False,
                                        "premium_subscription": False, "gifts_from_channels": False}}

    def _member_json(self, status: str, user: dict) -> dict:
        if status == "creator":
            return {"status": status, "user": user, "is_anonymous": False}
        if status == "administrator":
            rights = ("can_be_edited", "can_manage_chat", "can_delete_messages", "can_manage_video_chats",
                      "can_restrict_members", "can_promote_members", "can_change_info", "can_invite_users",
                      "can_post_stories", "can_edit_stories", "can_delete_stories", "can_send_welcome_messages",
                      "can_post_messages", "can_edit_messages", "can_pin_messages")
            return {"status": status, "user": user, "is_anonymous": False,
                    **{right: right != "can_be_edited" for right in rights}}
        if status == "kicked":
            return {"status": status, "user": user, "until_date": 0}
        if status in ("member", "left"):
            return {"status": status, "user": user}
        raise ValueError(f"unsupported member status {status!r}")

    def _m_getChatMember(self, params: dict) -> dict:
        chat = self._resolve_chat(params.get("chat_id"))
        user_id = params.get("user_id")
        if user_id is None:
            raise _bad_request("user_id is empty")
        user = self.bot_user if user_id == self.bot_id else dict(self._user(user_id))
        default = "administrator" if user_id == self.bot_id and chat.type != "private" else "member"
        return self._member_json(self._members.get((chat.id, user_id), default), user)

    def _m_getChatAdministrators(self, params: dict) -> list[dict]:
        chat = self._resolve_chat(params.get("chat_id"))
        if chat.type == "private":
            raise _bad_request("there are no administrators in the private chat")
        admins = [(user_id, status) for (chat_id, user_id), status in self._members.items()
                  if chat_id == chat.id and status in ("creator", "administrator")]
        if not any(status == "creator" for _, status in admins):
            admins.insert(0, (1, "creator"))
        return [self._member_json(status, self.bot_user if uid == self.bot_id else dict(self._user(uid)))
                for uid, status in admins]

    def _m_getFile(self, params: dict) -> dict:
        file_id = str(params.get("file_id", ""))
        if file_id not in self._files:
            raise _bad_request("invalid file_id")
        path, content = self._files[file_id]
        return {"file_id": file_id, "file_unique_id": f"U{file_id}", "file_size": len(content), "file_path": path}


def _type_from_id(chat_id: int) -> str:
    if chat_id > 0:
        return "private"
    if chat_id <= -1_000_000_000_000:
        return "supergroup"
    return "group"


def _scope_key(scope: dict | None) -> str:
    return json.dumps(scope or {"type": "default"}, sort_keys=True)


def _int_or_error(key: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise _bad_request(f"invalid {key} specified") from None


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2

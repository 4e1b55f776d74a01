"""Per-update plumbing: throttling, who is talking in which chat and language, who may change alerts.

- `ThrottlingMiddleware` (outer, first): at most `commands_per_minute` commands and button presses per
  user in any 60 s; the first one over gets one polite "slow down", the rest are dropped until the
  window frees. It keeps a few timestamps per user in memory and touches no database, so a flood
  costs other users nothing.
- `ChatContextMiddleware` (outer): records the chat and user on each message (a fact about the update,
  not a business decision) and hands handlers `chat_row` (the chat whose alerts the command acts on),
  `user_chat` (the chat the user writes in), `lang` and `_` (the translator) by keyword. In a private
  chat, a user who chose to manage a channel they linked (/channel) acts on that channel's alerts.
- `AdminOnlyMiddleware` (inner): handlers flagged `changes_alerts` run in a group only for the group's
  administrators (https://core.telegram.org/bots/api#getchatmember); an anonymous administrator
  posting as the group counts as one.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware, Bot
from aiogram.dispatcher.flags import get_flag
from aiogram.exceptions import TelegramAPIError
from aiogram.fsm.storage.base import BaseStorage, StorageKey
from aiogram.types import CallbackQuery, Message, TelegramObject

from bot.i18n import normalize_language, translator
from bot.services.chats import ChatService
from bot.services.subscriptions import ChatInfo, SubscriptionService, UserInfo

log = logging.getLogger(__name__)

WINDOW_SECONDS = 60.0
TARGET_DESTINY = "managed_chat"
ADMIN_STATUSES = frozenset({"creator", "administrator"})


class SlidingWindow:
    """At most `limit` events per key in any `window` seconds (timestamps from `clock`)."""

    def __init__(self, limit: int, window: float = WINDOW_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self._events: dict[int, deque[float]] = {}
        self._warned: set[int] = set()
        self._calls = 0

    def hit(self, key: int) -> str:
        """Records an event: "ok", "warn" (first refusal) or "drop" (later refusals)."""
        now = self.clock()
        events = self._events.setdefault(key, deque())
        while events and events[0] <= now - self.window:
            events.popleft()
        self._calls += 1
        if self._calls % 1024 == 0:
            self._forget_idle(now)
        if len(events) >= self.limit:
            if key in self._warned:
                return "drop"
            self._warned.add(key)
            return "warn"
        self._warned.discard(key)
        events.append(now)
        return "ok"

    def _forget_idle(self, now: float) -> None:
        for key in [k for k, v in self._events.items() if not v or v[-1] <= now - self.window]:
            del self._events[key]
            self._warned.discard(key)


def _is_command(event: TelegramObject) -> bool:
    if isinstance(event, CallbackQuery):
        return True
    return isinstance(event, Message) and bool(event.text) and event.text.startswith("/")


class ThrottlingMiddleware(BaseMiddleware):
    def __init__(self, commands_per_minute: int, default_language: str,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.window = SlidingWindow(commands_per_minute, clock=clock)
        self.default_language = default_language

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        user = getattr(event, "from_user", None)
        if user is None or not _is_command(event):
            return await handler(event, data)
        verdict = self.window.hit(user.id)
        if verdict == "ok":
            return await handler(event, data)
        log.info("throttled", extra={"user": user.id, "verdict": verdict})
        if verdict == "warn":
            _ = translator(normalize_language(user.language_code, self.default_language))
            text = _("🐢 That is a lot of commands at once. Please wait a minute, then try again.")
            if isinstance(event, CallbackQuery):
                await event.answer(text.replace("🐢 ", ""), show_alert=True)
            elif isinstance(event, Message):
                await event.answer(text)
        elif isinstance(event, CallbackQuery):
            await event.answer()
        return None


def target_key(bot_id: int, user_id: int) -> StorageKey:
    """Where the channel a user manages from their private chat is remembered (FSM storage)."""
    return StorageKey(bot_id=bot_id, chat_id=user_id, user_id=user_id, destiny=TARGET_DESTINY)


async def managed_chat_id(storage: BaseStorage, bot_id: int, user_id: int) -> int | None:
    value = (await storage.get_data(target_key(bot_id, user_id))).get("chat_id")
    return value if isinstance(value, int) else None


async def set_managed_chat(storage: BaseStorage, bot_id: int, user_id: int, chat_id: int | None) -> None:
    await storage.set_data(target_key(bot_id, user_id), {"chat_id": chat_id} if chat_id is not None else {})


class ChatContextMiddleware(BaseMiddleware):
    def __init__(self, subscriptions: SubscriptionService, chats: ChatService, default_language: str) -> None:
        self.subscriptions = subscriptions
        self.chats = chats
        self.default_language = default_language

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        message = event.message if isinstance(event, CallbackQuery) else event
        if not isinstance(message, Message):
            return await handler(event, data)
        user = event.from_user if isinstance(event, CallbackQuery) else message.from_user
        chat = message.chat
        language = normalize_language(user.language_code if user else None, self.default_language)
        chat_row = await self.subscriptions.register(
            ChatInfo(id=chat.id, type=chat.type, title=chat.title, username=chat.username,
                     is_forum=bool(chat.is_forum)),
            UserInfo(
                id=user.id, username=user.username, first_name=user.first_name,
                language_code=user.language_code,
            )
            if user is not None and not user.is_bot
            else None,
            language,
        )
        data["user_chat"] = chat_row
        data["lang"] = chat_row.language
        data["_"] = translator(chat_row.language)
        data["chat_row"] = chat_row
        data["managing"] = None
        storage: BaseStorage | None = data.get("fsm_storage")
        bot: Bot | None = data.get("bot")
        if chat.type == "private" and user is not None and storage is not None and bot is not None:
            target = await managed_chat_id(storage, bot.id, user.id)
            if target is not None:
                channel = await self.chats.manageable_channel(target, user.id)
                if channel is None:
                    await set_managed_chat(storage, bot.id, user.id, None)
                else:
                    data["chat_row"] = data["managing"] = channel
        return await handler(event, data)


class AdminOnlyMiddleware(BaseMiddleware):
    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        if not get_flag(data, "changes_alerts"):
            return await handler(event, data)
        message = event.message if isinstance(event, CallbackQuery) else event
        if not isinstance(message, Message) or message.chat.type not in ("group", "supergroup"):
            return await handler(event, data)
        if isinstance(event, Message) and event.sender_chat is not None and event.sender_chat.id == event.chat.id:
            return await handler(event, data)  # an anonymous administrator
        user = event.from_user
        allowed = False
        if user is not None:
            try:
                member = await data["bot"].get_chat_member(message.chat.id, user.id)
                allowed = member.status in ADMIN_STATUSES
            except TelegramAPIError as error:
                log.warning("admin check failed", extra={"chat": message.chat.id, "error": str(error)})
        if allowed:
            return await handler(event, data)
        _ = data["_"]
        text = _("Only this group’s administrators can change its alerts. Ask one of them, "
                 "or create your own alerts in a private chat with me.")
        if isinstance(event, CallbackQuery):
            await event.answer(text, show_alert=True)
        else:
            await message.answer(text)
        return None

"""Per-update context: who is talking, in which chat and language.

Records the chat and user on each message (a fact about the update, not a business decision) and
hands handlers `chat_row`, `lang` and `_` (the chat's translator) by keyword.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import CallbackQuery, Message, TelegramObject

from bot.i18n import normalize_language, translator
from bot.services.subscriptions import ChatInfo, SubscriptionService, UserInfo


class ChatContextMiddleware(BaseMiddleware):
    def __init__(self, subscriptions: SubscriptionService, default_language: str) -> None:
        self.subscriptions = subscriptions
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
            ChatInfo(id=chat.id, type=chat.type, title=chat.title, username=chat.username),
            UserInfo(
                id=user.id, username=user.username, first_name=user.first_name,
                language_code=user.language_code,
            )
            if user is not None and not user.is_bot
            else None,
            language,
        )
        data["chat_row"] = chat_row
        data["lang"] = chat_row.language
        data["_"] = translator(chat_row.language)
        return await handler(event, data)

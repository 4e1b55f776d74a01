"""The `Sender` port, implemented with aiogram: sends one message, translates every aiogram error
into a `SendFailed` carrying the retry decision (see `bot.core.backoff`)."""

from __future__ import annotations

import asyncio

from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.types import LinkPreviewOptions

from bot.core.backoff import classify_send_error
from bot.services.delivery import OutgoingMessage, SendFailed


def decision_for(exc: TelegramAPIError | Exception):  # -> RetryDecision
    if isinstance(exc, TelegramRetryAfter):
        return classify_send_error(429, exc.message, float(exc.retry_after), None)
    if isinstance(exc, TelegramMigrateToChat):
        return classify_send_error(400, exc.message, None, exc.migrate_to_chat_id)
    if isinstance(exc, TelegramForbiddenError):
        return classify_send_error(403, exc.message, None, None)
    if isinstance(exc, TelegramUnauthorizedError):
        return classify_send_error(401, exc.message, None, None)
    if isinstance(exc, TelegramNotFound):
        return classify_send_error(404, exc.message, None, None)
    if isinstance(exc, TelegramBadRequest):
        return classify_send_error(400, exc.message, None, None)
    if isinstance(exc, TelegramServerError):
        return classify_send_error(500, exc.message, None, None)
    if isinstance(exc, TelegramNetworkError | asyncio.TimeoutError | OSError):
        return classify_send_error(0, str(exc) or type(exc).__name__, None, None)
    if isinstance(exc, TelegramAPIError):
        return classify_send_error(500, exc.message, None, None)
    raise exc


class TelegramSender:
    def __init__(self, bot: Bot, keyboards=None) -> None:  # keyboards: Callable[[OutgoingMessage], markup|None]
        self.bot = bot
        self.keyboards = keyboards

    async def send(self, message: OutgoingMessage) -> int:
        markup = self.keyboards(message) if self.keyboards is not None else None
        try:
            sent = await self.bot.send_message(
                chat_id=message.chat_id,
                text=message.text,
                message_thread_id=message.message_thread_id,
                link_preview_options=LinkPreviewOptions(is_disabled=message.disable_link_preview),
                reply_markup=markup,
            )
        except (TimeoutError, TelegramAPIError, TelegramNetworkError, OSError) as exc:
            raise SendFailed(decision_for(exc)) from exc
        return sent.message_id

"""The `Sender` port, implemented with aiogram: sends one message, translates every aiogram error
into a `SendFailed` carrying the retry decision (see `bot.core.backoff`).

Alert messages carry their buttons (`bot.telegram.keyboards`), on the first send and on every edit:
an edit without `reply_markup` would remove them (https://core.telegram.org/bots/api#editmessagetext).
Telegram's "message is not modified" answer to an edit means the message already reads as wanted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from aiogram import Bot
from aiogram.exceptions import (
    ClientDecodeError,
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
from aiogram.types import InlineKeyboardMarkup, LinkPreviewOptions

from bot.core.backoff import classify_send_error
from bot.services.delivery import OutgoingMessage, SendFailed
from bot.telegram.keyboards import AlertKeyboards

log = logging.getLogger(__name__)

# Everything a Bot API call can raise that is about the call, not a bug of ours.
SEND_ERRORS = (TimeoutError, TelegramAPIError, TelegramNetworkError, ClientDecodeError, OSError)


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
    if isinstance(exc, ClientDecodeError):
        # Not a Bot API answer at all (a proxy's HTML 502 page, a cut body): a server-side fault.
        return classify_send_error(502, f"undecodable answer from the Bot API: {exc}"[:300], None, None)
    if isinstance(exc, TelegramNetworkError | asyncio.TimeoutError | OSError):
        return classify_send_error(0, str(exc) or type(exc).__name__, None, None)
    if isinstance(exc, TelegramAPIError):
        return classify_send_error(500, exc.message, None, None)
    raise exc


class TelegramSender:
    def __init__(self, bot: Bot, keyboards: AlertKeyboards | None = None) -> None:
        self.bot = bot
        self.keyboards = keyboards

    async def send(self, message: OutgoingMessage) -> int:
        if message.photo or message.document or message.reply_markup is not None:
            return await self.send_prepared(message)  # notices, digests, broadcasts (issue #7)
        markup = await self._alert_markup(message.chat_id, message.subscription_ids, None)
        try:
            sent = await self.bot.send_message(
                chat_id=message.chat_id,
                text=message.text,
                message_thread_id=message.message_thread_id,
                link_preview_options=LinkPreviewOptions(is_disabled=message.disable_link_preview),
                reply_markup=markup,
            )
        except SEND_ERRORS as exc:
            raise SendFailed(decision_for(exc)) from exc
        return sent.message_id

    async def edit(
        self,
        chat_id: int,
        message_id: int,
        text: str,
        disable_link_preview: bool,
        subscription_ids: Sequence[int],
    ) -> None:
        """Replaces a sent alert's text (keeping its buttons); raises `SendFailed` like `send`."""
        markup = await self._alert_markup(chat_id, subscription_ids, message_id)
        try:
            await self.bot.edit_message_text(
                chat_id=chat_id,
                message_id=message_id,
                text=text,
                link_preview_options=LinkPreviewOptions(is_disabled=disable_link_preview),
                reply_markup=markup,
            )
        except TelegramBadRequest as exc:
            if "message is not modified" in exc.message.lower():
                return
            raise SendFailed(decision_for(exc)) from exc
        except SEND_ERRORS as exc:
            raise SendFailed(decision_for(exc)) from exc

    async def _alert_markup(
        self, chat_id: int, subscription_ids: Sequence[int], message_id: int | None
    ) -> InlineKeyboardMarkup | None:
        if self.keyboards is None or (not subscription_ids and message_id is None):
            return None
        try:
            return await self.keyboards.markup(chat_id, subscription_ids, message_id)
        except Exception:
            # Buttons are a convenience: a failure to build them must not hold the alert back.
            log.exception("alert keyboard failed", extra={"chat": chat_id})
            return None

    async def send_prepared(self, message: OutgoingMessage) -> int:
        """A message whose keyboard is given (JSON), sent as text, or as a photo/document with a caption."""
        markup = InlineKeyboardMarkup.model_validate(message.reply_markup) if message.reply_markup else None
        try:
            if message.photo or message.document:
                method = self.bot.send_photo if message.photo else self.bot.send_document
                media = {"photo": message.photo} if message.photo else {"document": message.document}
                sent = await method(chat_id=message.chat_id, caption=message.text or None,
                                    message_thread_id=message.message_thread_id, reply_markup=markup, **media)
            else:
                sent = await self.bot.send_message(
                    chat_id=message.chat_id, text=message.text, message_thread_id=message.message_thread_id,
                    link_preview_options=LinkPreviewOptions(is_disabled=message.disable_link_preview),
                    reply_markup=markup,
                )
        except SEND_ERRORS as exc:
            raise SendFailed(decision_for(exc)) from exc
        return sent.message_id

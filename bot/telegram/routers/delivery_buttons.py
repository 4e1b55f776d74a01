"""Buttons under delivery messages: undo the noise guard, show more of a digest."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup

from bot.db.models import Chat
from bot.i18n import Gettext
from bot.services.digests import DigestService


class UndoThrottle(CallbackData, prefix="dlv-undo"):
    subscription_id: int


class DigestMore(CallbackData, prefix="dlv-more"):
    bundle: int
    part: int


class TelegramButtons:
    """The `Buttons` port of the deliverer and the digest service: inline keyboards as JSON."""

    def undo_throttle(self, subscription_id: int, label: str) -> dict:
        return _markup(label, UndoThrottle(subscription_id=subscription_id).pack())

    def digest_more(self, bundle: int, part: int, label: str) -> dict:
        return _markup(label, DigestMore(bundle=bundle, part=part).pack())


def _markup(label: str, data: str) -> dict:
    keyboard = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text=label, callback_data=data)]])
    return keyboard.model_dump(mode="json", exclude_none=True)


async def _drop_button(query: CallbackQuery) -> None:
    if query.message is not None and hasattr(query.message, "edit_reply_markup"):
        try:
            await query.message.edit_reply_markup(reply_markup=None)
        except TelegramBadRequest:
            pass  # already without buttons (a double tap)


async def undo_throttle(
    query: CallbackQuery, callback_data: UndoThrottle, digests: DigestService, chat_row: Chat, _: Gettext
) -> None:
    subscription = await digests.undo_throttle(chat_row.id, callback_data.subscription_id)
    if subscription is None:
        await query.answer(_("This alert no longer exists."))
        return
    await _drop_button(query)
    await query.answer(
        _("Alert {name} is instant again.", name=subscription.name or subscription.query)
    )


async def digest_more(
    query: CallbackQuery, callback_data: DigestMore, digests: DigestService, chat_row: Chat, _: Gettext
) -> None:
    released = await digests.more(chat_row.id, callback_data.bundle, callback_data.part)
    await _drop_button(query)
    await query.answer(_("Coming up.") if released else _("Nothing more in this digest."))


def make_router() -> Router:
    router = Router(name="delivery_buttons")
    router.callback_query.register(undo_throttle, UndoThrottle.filter(F.subscription_id > 0))
    router.callback_query.register(digest_more, DigestMore.filter())
    return router

"""The buttons under an alert: mute 24 h, stop this source, unsubscribe — and their "Undo".

Each press acts at once through a service, answers with a short confirmation, and redraws the
message's keyboard from what is now stored. Refused politely, changing nothing: an alert of another
chat (callback data is forgeable), an alert already deleted, and in groups and channels a member who
is not an administrator.
"""

from __future__ import annotations

from aiogram import F, Router
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
from aiogram.types import CallbackQuery, Message

from bot.db.models import Chat
from bot.i18n import Gettext
from bot.services.alert_views import AlertActions, NotThisChatsAlert, SourceUnknown
from bot.services.subscriptions import SubscriptionService
from bot.telegram.keyboards import AlertButton, AlertKeyboards

_ADMIN_STATUSES = {"creator", "administrator"}


async def on_alert_button(
    callback: CallbackQuery,
    callback_data: AlertButton,
    alert_actions: AlertActions,
    subscriptions: SubscriptionService,
    chat_row: Chat,
    _: Gettext,
) -> None:
    message = callback.message
    if not isinstance(message, Message):
        await callback.answer(_("This message is too old for its buttons."), show_alert=True)
        return
    if callback_data.action == "noop":
        await callback.answer()
        return
    if not await _may_change_alerts(callback, chat_row):
        await callback.answer(_("Only the chat's administrators can change its alerts."), show_alert=True)
        return
    sub = callback_data.sub
    if not await alert_actions.owns(chat_row.id, sub):
        await callback.answer(_("This alert does not exist in this chat: nothing was changed."), show_alert=True)
        return
    try:
        confirmation = await _act(callback_data, message, alert_actions, subscriptions, chat_row, _)
    except NotThisChatsAlert:
        await callback.answer(_("This alert does not exist in this chat: nothing was changed."), show_alert=True)
        return
    except SourceUnknown:
        await callback.answer(_("This message shows several sources: I cannot tell which one to stop."),
                              show_alert=True)
        return
    markup = await AlertKeyboards(alert_actions).markup(chat_row.id, [sub], message.message_id)
    try:
        await message.edit_reply_markup(reply_markup=markup)
    except TelegramBadRequest as exc:
        if "message is not modified" not in exc.message.lower():
            raise
    await callback.answer(confirmation)


async def _act(
    data: AlertButton,
    message: Message,
    actions: AlertActions,
    subscriptions: SubscriptionService,
    chat_row: Chat,
    _: Gettext,
) -> str:
    if data.action == "mute":
        await actions.mute(chat_row.id, data.sub)
        return _("🔕 Muted for 24 hours.")
    if data.action == "unmute":
        await actions.unmute(chat_row.id, data.sub)
        return _("🔔 The alert is active again.")
    if data.action == "stop":
        stopped = await actions.stop_source(chat_row.id, data.sub, message.message_id)
        return _("🚫 {source} will no longer be used for this alert.", source=stopped.source_name)
    if data.action == "restore":
        await actions.restore_source(chat_row.id, data.sub, data.src)
        return _("✅ The source is back for this alert.")
    if data.action == "unsub":
        removed = await subscriptions.unsubscribe(chat_row.id, str(data.sub))
        if removed is None:
            raise NotThisChatsAlert(data.sub)
        return _("🗑 Alert deleted.")
    raise NotThisChatsAlert(data.sub)  # an action no keyboard of ours carries


async def _may_change_alerts(callback: CallbackQuery, chat_row: Chat) -> bool:
    if chat_row.type == "private":
        return True
    if callback.bot is None:
        return False
    try:
        member = await callback.bot.get_chat_member(chat_row.id, callback.from_user.id)
    except TelegramAPIError:
        return False
    return member.status in _ADMIN_STATUSES


def make_router() -> Router:
    router = Router(name="alert_buttons")
    router.callback_query.register(on_alert_button, AlertButton.filter(F.sub > 0))
    return router

"""/timezone and /quiet: the chat's time zone (for digest times and quiet hours) and quiet hours."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from bot.db.models import Chat
from bot.i18n import Gettext
from bot.services.chats import COMMON_TIMEZONES, ChatService, ChatSettingError
from bot.telegram.routers.alerts import CHANGES, where_text
from bot.telegram.texts import short


class TimezoneCb(CallbackData, prefix="tz"):
    index: int


def timezone_keyboard() -> InlineKeyboardMarkup:
    buttons = [InlineKeyboardButton(text=zone.split("/")[-1].replace("_", " "),
                                    callback_data=TimezoneCb(index=i).pack())
               for i, zone in enumerate(COMMON_TIMEZONES)]
    return InlineKeyboardMarkup(inline_keyboard=[buttons[i:i + 3] for i in range(0, len(buttons), 3)])


async def timezone_command(message: Message, command: CommandObject, chats: ChatService, chat_row: Chat,
                           managing: Chat | None, _: Gettext) -> None:
    text = (command.args or "").strip()
    if not text:
        await message.answer(
            where_text(_, managing)
            + _("Time zone: <b>{zone}</b>. Digests and quiet hours follow it.\n"
                "Tap yours, or send it like <code>/timezone America/Montreal</code>.", zone=short(chat_row.timezone)),
            reply_markup=timezone_keyboard(),
        )
        return
    try:
        zone = await chats.set_timezone(chat_row.id, text)
    except ChatSettingError:
        await message.answer(_("“{zone}” is not a time zone I know. Write it as Region/City, e.g. "
                               "<code>/timezone Europe/Paris</code>, or tap one in /timezone.", zone=short(text, 64)))
        return
    await message.answer(_("✅ Time zone set to <b>{zone}</b>.", zone=zone))


async def timezone_chosen(callback: CallbackQuery, callback_data: TimezoneCb, chats: ChatService,
                          chat_row: Chat, _: Gettext) -> None:
    await callback.answer()
    if not 0 <= callback_data.index < len(COMMON_TIMEZONES):
        return
    zone = await chats.set_timezone(chat_row.id, COMMON_TIMEZONES[callback_data.index])
    if isinstance(callback.message, Message):
        await callback.message.edit_text(_("✅ Time zone set to <b>{zone}</b>.", zone=zone))


async def quiet_command(message: Message, command: CommandObject, chats: ChatService, chat_row: Chat,
                        managing: Chat | None, _: Gettext) -> None:
    text = (command.args or "").strip()
    if not text:
        if chat_row.quiet_start and chat_row.quiet_end:
            now = _("Quiet hours: <b>{start}–{end}</b> ({zone}).", start=chat_row.quiet_start,
                    end=chat_row.quiet_end, zone=short(chat_row.timezone))
        else:
            now = _("No quiet hours: alerts arrive at any time.")
        await message.answer(where_text(_, managing) + now + "\n" + _(
            "Set them with <code>/quiet 22:00-07:00</code>: alerts are held during those hours and sent as "
            "one digest when they end. <code>/quiet off</code> removes them."))
        return
    try:
        hours = await chats.set_quiet_hours(chat_row.id, text)
    except ChatSettingError:
        await message.answer(_("I could not read “{value}”. Write the start and end times, e.g. "
                               "<code>/quiet 22:00-07:00</code>, or <code>/quiet off</code>.", value=short(text, 64)))
        return
    if hours is None:
        await message.answer(_("✅ Quiet hours removed: alerts arrive at any time."))
        return
    await message.answer(_("🌙 Quiet hours set: {start}–{end} ({zone}). Alerts in that window arrive as one "
                           "digest at {end}.", start=hours[0], end=hours[1], zone=short(chat_row.timezone)))


def make_router() -> Router:
    router = Router(name="chat_settings")
    router.message.register(timezone_command, Command("timezone", "tz", "fuseau"), flags=CHANGES)
    router.callback_query.register(timezone_chosen, TimezoneCb.filter(), flags=CHANGES)
    router.message.register(quiet_command, Command("quiet", "silence"), flags=CHANGES)
    return router

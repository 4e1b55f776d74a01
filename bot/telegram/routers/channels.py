"""Channels, the bot's memberships and group migrations.

- `/channel @name` (or a message forwarded from the channel) in a private chat links a channel: the
  bot must be an administrator there allowed to post, and the user an administrator too
  (https://core.telegram.org/bots/api#getchatmember). The user then manages the channel's alerts
  with the usual commands from the private chat, until `/channel off`.
- `my_chat_member` updates: the bot kicked, or blocked by a user, deactivates the chat; the bot added
  back reactivates it; the bot made administrator of a channel links it to the user who did so.
- Group → supergroup migration (`migrate_to_chat_id`) moves the group's alerts to the new chat.
"""

from __future__ import annotations

import logging

from aiogram import Bot, F, Router
from aiogram.enums import ChatType
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Command, CommandObject
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.storage.base import BaseStorage
from aiogram.types import (
    CallbackQuery,
    ChatMemberAdministrator,
    ChatMemberUpdated,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    MessageOriginChannel,
)

from bot.db.models import Chat
from bot.i18n import Gettext, normalize_language
from bot.services.chats import ChatService
from bot.services.subscriptions import ChatInfo, SubscriptionService
from bot.settings import Settings
from bot.telegram.middlewares import ADMIN_STATUSES, set_managed_chat
from bot.telegram.texts import short

log = logging.getLogger(__name__)


class ChannelCb(CallbackData, prefix="ch"):
    action: str  # manage | back
    id: int = 0


def channels_keyboard(_: Gettext, channels: list[Chat], managing: Chat | None) -> InlineKeyboardMarkup:
    rows = [[InlineKeyboardButton(text=f"📣 {c.title or c.id}"[:60], callback_data=ChannelCb(action="manage",
                                                                                           id=c.id).pack())]
            for c in channels[:20] if c.active]
    if managing is not None:
        rows.append([InlineKeyboardButton(text=_("⬅️ Back to this chat"), callback_data=ChannelCb(action="back").pack())])
    return InlineKeyboardMarkup(inline_keyboard=rows)


async def channel_command(message: Message, command: CommandObject, bot: Bot, fsm_storage: BaseStorage,
                          chats: ChatService, user_chat: Chat, managing: Chat | None, _: Gettext) -> None:
    if message.chat.type != ChatType.PRIVATE or message.from_user is None:
        await message.answer(_("Link a channel from a private chat with me: open it and send /channel there."))
        return
    arg = (command.args or "").strip()
    if arg.lower() in ("off", "back", "retour", "stop"):
        await set_managed_chat(fsm_storage, bot.id, message.from_user.id, None)
        await message.answer(_("✅ Back to this chat: commands now manage your own alerts."))
        return
    if arg:
        reference: int | str = int(arg) if arg.lstrip("-").isdigit() else "@" + arg.lstrip("@").split("/")[-1]
        await link_channel(message, reference, bot, fsm_storage, chats, user_chat, _)
        return
    channels = list(await chats.channels_of(message.from_user.id))
    text = _("To send alerts to a channel: make me an administrator of the channel, allowed to post messages, "
             "then send <code>/channel @channelname</code> here, or forward me a message from the channel.")
    if managing is not None:
        text = _("You are managing 📣 <b>{title}</b>: /subscribe, /list and the other commands act on its alerts.",
                 title=short(managing.title or str(managing.id), 80)) + "\n\n" + text
    if channels:
        text += "\n\n" + _("Your channels: tap one to manage its alerts.")
    await message.answer(text, reply_markup=channels_keyboard(_, channels, managing))


async def forwarded_from_channel(message: Message, bot: Bot, fsm_storage: BaseStorage, chats: ChatService,
                                 user_chat: Chat, _: Gettext) -> None:
    origin = message.forward_origin
    if isinstance(origin, MessageOriginChannel):
        await link_channel(message, origin.chat.id, bot, fsm_storage, chats, user_chat, _)


async def link_channel(message: Message, reference: int | str, bot: Bot, storage: BaseStorage,
                       chats: ChatService, user_chat: Chat, _: Gettext) -> None:
    user = message.from_user
    assert user is not None
    cannot_see = _("I cannot reach {channel}. Add me to the channel as an administrator allowed to post "
                   "messages, then try again.", channel=short(str(reference), 64))
    try:
        channel = await bot.get_chat(reference)
    except TelegramAPIError:
        await message.answer(cannot_see)
        return
    if channel.type != ChatType.CHANNEL:
        await message.answer(_("That is not a channel. For a group, add me to it and use the commands there."))
        return
    try:
        me = await bot.get_chat_member(channel.id, bot.id)
        member = await bot.get_chat_member(channel.id, user.id)
    except TelegramAPIError:
        await message.answer(cannot_see)
        return
    if not (isinstance(me, ChatMemberAdministrator) and me.can_post_messages):
        await message.answer(_("I am not allowed to post in <b>{title}</b>. Make me an administrator with the "
                               "right to post messages, then try again.", title=short(channel.title or "", 80)))
        return
    if member.status not in ADMIN_STATUSES:
        await message.answer(_("Only the administrators of <b>{title}</b> can link it. Ask one of them.",
                               title=short(channel.title or "", 80)))
        return
    await chats.link_channel(
        ChatInfo(id=channel.id, type="channel", title=channel.title, username=channel.username),
        user.id, user_chat.language, user_chat.timezone,
    )
    await set_managed_chat(storage, bot.id, user.id, channel.id)
    await message.answer(_("✅ 📣 <b>{title}</b> is linked. You are now managing its alerts: /subscribe, /list and "
                           "the other commands here act on the channel, and alerts are posted there. "
                           "<code>/channel off</code> comes back to your own alerts.",
                           title=short(channel.title or str(channel.id), 80)))


async def channel_button(callback: CallbackQuery, callback_data: ChannelCb, bot: Bot, fsm_storage: BaseStorage,
                         chats: ChatService, _: Gettext) -> None:
    await callback.answer()
    user = callback.from_user
    if not isinstance(callback.message, Message):
        return
    if callback_data.action == "back":
        await set_managed_chat(fsm_storage, bot.id, user.id, None)
        await callback.message.edit_text(_("✅ Back to this chat: commands now manage your own alerts."))
        return
    channel = await chats.manageable_channel(callback_data.id, user.id)
    if channel is None:
        await callback.message.edit_text(_("This channel is no longer linked to you. Send /channel to link it again."))
        return
    await set_managed_chat(fsm_storage, bot.id, user.id, channel.id)
    await callback.message.edit_text(_("You are managing 📣 <b>{title}</b>: /subscribe, /list and the other "
                                       "commands act on its alerts. <code>/channel off</code> comes back.",
                                       title=short(channel.title or str(channel.id), 80)))


async def bot_membership(event: ChatMemberUpdated, chats: ChatService, subscriptions: SubscriptionService,
                         settings: Settings) -> None:
    chat, status = event.chat, event.new_chat_member.status
    log.info("bot membership changed", extra={"chat": chat.id, "status": status})
    if status in ("kicked", "left"):
        reason = "blocked by the user" if chat.type == ChatType.PRIVATE else f"bot {status}"
        await chats.bot_removed(chat.id, reason)
        return
    if status not in ("member", "administrator", "creator"):
        return
    user = event.from_user
    language = normalize_language(user.language_code if user else None, settings.default_language)
    stored = await subscriptions.register(
        ChatInfo(id=chat.id, type=chat.type, title=chat.title, username=chat.username, is_forum=bool(chat.is_forum)),
        None, language,
    )
    await chats.bot_added(chat.id)
    member = event.new_chat_member
    if (chat.type == ChatType.CHANNEL and isinstance(member, ChatMemberAdministrator) and member.can_post_messages
            and user is not None and not user.is_bot and stored.linked_by is None):
        await chats.link_channel(
            ChatInfo(id=chat.id, type="channel", title=chat.title, username=chat.username),
            user.id, stored.language, stored.timezone,
        )


async def group_migrated(message: Message, chats: ChatService) -> None:
    if message.migrate_to_chat_id is not None:
        old, new = message.chat.id, message.migrate_to_chat_id
    elif message.migrate_from_chat_id is not None:
        old, new = message.migrate_from_chat_id, message.chat.id
    else:
        return
    moved = await chats.migrate(old, new)
    log.info("group migrated", extra={"from": old, "to": new, "alerts": moved})


def make_router() -> Router:
    router = Router(name="channels")
    router.message.register(group_migrated, F.migrate_to_chat_id | F.migrate_from_chat_id)
    router.message.register(channel_command, Command("channel", "canal", "channels", "canaux"))
    router.message.register(forwarded_from_channel, F.chat.type == ChatType.PRIVATE,
                            F.forward_origin.type == "channel")
    router.callback_query.register(channel_button, ChannelCb.filter())
    router.my_chat_member.register(bot_membership)
    return router

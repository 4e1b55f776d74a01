"""/subscribe, /unsubscribe, /list: parse the command, call the subscription service, reply."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from bot.core.query import QueryError
from bot.core.render import escape
from bot.db.models import Chat
from bot.i18n import Gettext
from bot.services.subscriptions import AlertLimitReached, SubscriptionService
from bot.telegram.texts import query_error_text


async def subscribe(
    message: Message, command: CommandObject, subscriptions: SubscriptionService, chat_row: Chat, _: Gettext
) -> None:
    if not command.args or not command.args.strip():
        await message.answer(
            _("What should I follow? Send the words after the command, e.g. "
              "<code>/subscribe Azerbaïdjan</code>. /help explains the syntax.")
        )
        return
    try:
        result = await subscriptions.subscribe(
            chat_row.id,
            command.args,
            user_id=message.from_user.id if message.from_user else None,
            message_thread_id=message.message_thread_id if message.is_topic_message else None,
        )
    except QueryError as exc:
        await message.answer(query_error_text(_, exc, command.args))
        return
    except AlertLimitReached as exc:
        await message.answer(
            _("This chat already has {limit} alerts, the most allowed. Delete one with /unsubscribe first.",
              limit=exc.limit)
        )
        return
    query = escape(result.subscription.query)
    if result.created:
        await message.answer(
            _("✅ Alert #{id} created: <b>{query}</b>\nYou will get every new matching article here. "
              "/list shows your alerts.", id=result.subscription.id, query=query)
        )
    else:
        await message.answer(
            _("You already follow <b>{query}</b> (alert #{id}).", id=result.subscription.id, query=query)
        )


async def unsubscribe(
    message: Message, command: CommandObject, subscriptions: SubscriptionService, chat_row: Chat, _: Gettext
) -> None:
    if not command.args or not command.args.strip():
        await message.answer(
            _("Which alert? Send its id from /list, e.g. <code>/unsubscribe 3</code>, or its query.")
        )
        return
    removed = await subscriptions.unsubscribe(chat_row.id, command.args)
    if removed is None:
        await message.answer(
            _("No alert <b>{reference}</b> in this chat. /list shows your alerts and their ids.",
              reference=escape(command.args.strip()))
        )
        return
    await message.answer(_("🗑 Alert #{id} deleted: <b>{query}</b>", id=removed.id, query=escape(removed.query)))


async def list_alerts(message: Message, subscriptions: SubscriptionService, chat_row: Chat, _: Gettext) -> None:
    alerts = await subscriptions.list(chat_row.id)
    if not alerts:
        await message.answer(
            _("No alerts yet. Create one with <code>/subscribe Azerbaïdjan</code>.")
        )
        return
    lines = [_("<b>Your alerts</b> ({count})", count=len(alerts))]
    for alert in alerts:
        paused = _(" (paused)") if alert.paused else ""
        lines.append(f"#{alert.id} <code>{escape(alert.query)}</code>{paused}")
    lines.append(_("Delete one with <code>/unsubscribe ID</code>."))
    await message.answer(_join_within_limit(lines))


def make_router() -> Router:
    router = Router(name="alerts")
    router.message.register(subscribe, Command("subscribe", "sub", "suivre"))
    router.message.register(unsubscribe, Command("unsubscribe", "unsub", "desabonner"))
    router.message.register(list_alerts, Command("list", "liste", "alerts", "alertes"))
    return router


def _join_within_limit(lines: list[str], limit: int = 4000) -> str:
    out: list[str] = []
    size = 0
    for line in lines:
        if size + len(line) + 1 > limit:
            out.append("…")
            break
        out.append(line)
        size += len(line) + 1
    return "\n".join(out)

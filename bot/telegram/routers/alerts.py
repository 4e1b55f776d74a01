"""Alerts: /subscribe (at once or step by step), /preview, /list with its buttons (pause/resume, edit
the query, delivery mode, sources, delete), /unsubscribe, /pause, /resume, /cancel.

Handlers are thin: parse, call `SubscriptionService` / `PreviewService`, reply. Handlers that change
alerts carry the `changes_alerts` flag, so in groups only administrators reach them.
"""

from __future__ import annotations

from aiogram import F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, CommandObject, StateFilter
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, ForceReply, InlineKeyboardButton, InlineKeyboardMarkup, Message

from bot.core.query import QueryError
from bot.core.render import escape
from bot.db.models import Chat, Subscription
from bot.i18n import Gettext
from bot.services.chats import ChatService
from bot.services.preview import PreviewResult, PreviewService
from bot.services.subscriptions import (
    AlertLimitReached,
    AlertNotFound,
    AlertPage,
    DuplicateAlert,
    SubscriptionService,
    normalize_time,
)
from bot.telegram.texts import WEEKDAYS, alert_label, mode_text, query_error_text, short, sources_text

PER_PAGE = 5
SOURCES_PER_PAGE = 8
DIGEST_TIMES = ("0600", "0700", "0800", "0900", "1200", "1800", "2000")
CHANGES = {"changes_alerts": True}


def subscribe_flags() -> dict[str, bool]:
    return dict(CHANGES)


class AlertCb(CallbackData, prefix="al"):
    action: str
    id: int
    page: int = 0
    arg: str = ""


class ListCb(CallbackData, prefix="ls"):
    page: int


class NewAlertCb(CallbackData, prefix="na"):
    mode: str


class NewAlert(StatesGroup):
    query = State()
    mode = State()


class EditAlert(StatesGroup):
    query = State()
    digest_time = State()


# --- texts and keyboards -------------------------------------------------------------------------


def where_text(_: Gettext, managing: Chat | None) -> str:
    if managing is None:
        return ""
    return _("📣 Channel <b>{title}</b>\n", title=short(managing.title or str(managing.id), 80))


def preview_summary(_: Gettext, result: PreviewResult) -> str:
    return _("🔎 In the last {days} days it would have found <b>{count}</b> article(s).",
             days=result.days, count=result.count)


def preview_text(_: Gettext, result: PreviewResult) -> str:
    lines = [_("<b>Preview</b> of <code>{query}</code>", query=short(result.query.text, 200)),
             preview_summary(_, result)]
    if result.newest:
        lines.append(_("\n<b>Newest</b>"))
        for article in result.newest:
            title = short(article.title, 150)
            linked = f'<a href="{escape(article.url)}">{title}</a>' if article.url else title
            lines.append(f"• {linked} — <i>{short(article.source_name, 60)}</i>, "
                         f"{article.seen_at:%Y-%m-%d}")
    if result.per_source:
        lines.append(_("\n<b>Per source</b>"))
        lines.extend(f"• {short(name, 60)}: {count}" for name, count in result.per_source[:10])
        if len(result.per_source) > 10:
            lines.append(_("… and {count} more sources", count=len(result.per_source) - 10))
    if not result.count:
        lines.append(_("Nothing yet: it will alert you as soon as a matching article appears. "
                       "Try a broader query (fewer words, OR, a prefix like <code>arméni*</code>)."))
    lines.append(_("Create it with <code>/subscribe {query}</code>.", query=short(result.query.text, 200)))
    return "\n".join(lines)


def page_text(_: Gettext, page: AlertPage, managing: Chat | None) -> str:
    lines = [where_text(_, managing) + _("<b>Your alerts</b> ({count})", count=page.total)]
    if page.pages > 1:
        lines[0] += _(" — page {page}/{pages}", page=page.page + 1, pages=page.pages)
    for alert in page.alerts:
        paused = _(" · ⏸ paused") if alert.paused else ""
        lines.append(f"\n<b>#{alert.id}</b> {alert_label(alert)}\n"
                     f"{mode_text(_, alert)} · {sources_text(_, alert)}{paused}")
    lines.append(_("\n⏸/▶️ pause or resume · ✏️ edit the query · 📬 delivery · 📰 sources · 🗑 delete"))
    return "\n".join(lines)


def page_keyboard(page: AlertPage) -> InlineKeyboardMarkup:
    rows = []
    for alert in page.alerts:
        toggle = ("resume", "▶️") if alert.paused else ("pause", "⏸")
        rows.append([
            InlineKeyboardButton(text=f"#{alert.id} {toggle[1]}",
                                 callback_data=AlertCb(action=toggle[0], id=alert.id, page=page.page).pack()),
            *[InlineKeyboardButton(text=icon, callback_data=AlertCb(action=action, id=alert.id, page=page.page).pack())
              for action, icon in (("edit", "✏️"), ("mode", "📬"), ("src", "📰"), ("del", "🗑"))],
        ])
    nav = []
    if page.page > 0:
        nav.append(InlineKeyboardButton(text="◀️", callback_data=ListCb(page=page.page - 1).pack()))
    if page.page + 1 < page.pages:
        nav.append(InlineKeyboardButton(text="▶️", callback_data=ListCb(page=page.page + 1).pack()))
    if nav:
        rows.append(nav)
    return InlineKeyboardMarkup(inline_keyboard=rows)


def back_button(_: Gettext, page: int) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=_("⬅️ Back"), callback_data=ListCb(page=page).pack())


def mode_keyboard(_: Gettext, alert_id: int, page: int) -> InlineKeyboardMarkup:
    def button(text: str, action: str, arg: str = "") -> InlineKeyboardButton:
        return InlineKeyboardButton(text=text, callback_data=AlertCb(action=action, id=alert_id, page=page,
                                                                     arg=arg).pack())

    return InlineKeyboardMarkup(inline_keyboard=[
        [button(_("⚡ Instant"), "settime", "i")],
        [button(_("🗓 Daily digest"), "daily")],
        [button(_("📅 Weekly digest"), "weekly")],
        [back_button(_, page)],
    ])


def times_keyboard(_: Gettext, alert_id: int, page: int, prefix: str) -> InlineKeyboardMarkup:
    """`prefix` "d" (daily) or "w<weekday>"."""
    buttons = [InlineKeyboardButton(text=f"{t[:2]}:{t[2:]}",
                                    callback_data=AlertCb(action="settime", id=alert_id, page=page,
                                                          arg=f"{prefix}.{t}").pack())
               for t in DIGEST_TIMES]
    rows = [buttons[i:i + 4] for i in range(0, len(buttons), 4)]
    rows.append([InlineKeyboardButton(text=_("✏️ Another time"), callback_data=AlertCb(
        action="timeask", id=alert_id, page=page, arg=prefix).pack())])
    rows.append([back_button(_, page)])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def weekdays_keyboard(_: Gettext, alert_id: int, page: int) -> InlineKeyboardMarkup:
    buttons = [InlineKeyboardButton(text=_(day), callback_data=AlertCb(action="weekday", id=alert_id, page=page,
                                                                       arg=str(i)).pack())
               for i, day in enumerate(WEEKDAYS)]
    rows = [buttons[i:i + 3] for i in range(0, len(buttons), 3)]
    rows.append([back_button(_, page)])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def created_keyboard(_: Gettext, alert_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[
        InlineKeyboardButton(text=_("📬 Delivery mode"), callback_data=AlertCb(action="mode", id=alert_id).pack()),
        InlineKeyboardButton(text=_("↩️ Undo"), callback_data=AlertCb(action="undo", id=alert_id).pack()),
    ]])


# --- creating ----------------------------------------------------------------------------------


async def create_alert(
    message: Message,
    text: str,
    subscriptions: SubscriptionService,
    preview: PreviewService,
    chat_row: Chat,
    _: Gettext,
    *,
    user_id: int | None = None,
    mode: str = "instant",
) -> Subscription | None:
    """Creates the alert and answers in `message`'s chat (and topic); None when refused."""
    if user_id is None and message.from_user is not None and not message.from_user.is_bot:
        user_id = message.from_user.id
    try:
        result = await subscriptions.subscribe(
            chat_row.id,
            text,
            user_id=user_id,
            message_thread_id=message.message_thread_id if message.is_topic_message else None,
            mode=mode,
        )
    except QueryError as exc:
        await message.answer(query_error_text(_, exc, text))
        return None
    except AlertLimitReached as exc:
        await message.answer(
            _("This chat already has {limit} alerts, the most allowed. Delete one with /unsubscribe first.",
              limit=exc.limit)
        )
        return None
    alert = result.subscription
    if not result.created:
        await message.answer(
            _("You already follow <b>{query}</b> (alert #{id}).", id=alert.id, query=short(alert.query, 300))
        )
        return alert
    found = await preview.preview(alert.query)
    await message.answer(
        _("✅ Alert #{id} created: <b>{query}</b>\nDelivery: {mode}.", id=alert.id, query=short(alert.query, 300),
          mode=mode_text(_, alert))
        + "\n" + preview_summary(_, found) + "\n"
        + _("/list shows your alerts.")
        + ("\n" + where_text(_, chat_row).strip() if chat_row.id != message.chat.id else ""),
        reply_markup=created_keyboard(_, alert.id),
    )
    return alert


async def subscribe(
    message: Message,
    command: CommandObject,
    state: FSMContext,
    subscriptions: SubscriptionService,
    preview: PreviewService,
    chat_row: Chat,
    _: Gettext,
) -> None:
    if command.args and command.args.strip():
        await create_alert(message, command.args, subscriptions, preview, chat_row, _)
        return
    await state.set_state(NewAlert.query)
    await message.answer(
        _("What should I follow? Send the words, e.g. <code>Azerbaïdjan</code> or "
          "<code>(OTAN OR NATO) Arménie</code>. /help explains the syntax; /cancel stops."),
        reply_markup=ForceReply(selective=True),
    )


async def new_alert_query(message: Message, state: FSMContext, preview: PreviewService, _: Gettext) -> None:
    text = message.text or ""
    try:
        result = await preview.preview(text)
    except QueryError as exc:
        await message.answer(query_error_text(_, exc, text) + "\n" + _("Send another query, or /cancel."))
        return
    await state.update_data(query=result.query.text)
    await state.set_state(NewAlert.mode)
    keyboard = InlineKeyboardMarkup(inline_keyboard=[
        [InlineKeyboardButton(text=_("⚡ Instant"), callback_data=NewAlertCb(mode="instant").pack())],
        [InlineKeyboardButton(text=_("🗓 Daily digest"), callback_data=NewAlertCb(mode="daily").pack())],
        [InlineKeyboardButton(text=_("📅 Weekly digest"), callback_data=NewAlertCb(mode="weekly").pack())],
        [InlineKeyboardButton(text=_("✖️ Cancel"), callback_data=NewAlertCb(mode="cancel").pack())],
    ])
    await message.answer(
        preview_text(_, result).rsplit("\n", 1)[0] + "\n\n"
        + _("How should I send the matches? (Digests come at 08:00; change it later in /list.)"),
        reply_markup=keyboard,
    )


async def new_alert_mode(
    callback: CallbackQuery,
    callback_data: NewAlertCb,
    state: FSMContext,
    subscriptions: SubscriptionService,
    preview: PreviewService,
    chat_row: Chat,
    _: Gettext,
) -> None:
    await callback.answer()
    query = (await state.get_data()).get("query")
    await state.clear()
    if not isinstance(callback.message, Message):
        return
    if callback_data.mode == "cancel" or not query:
        await callback.message.edit_text(_("Cancelled: no alert was created."))
        return
    mode = callback_data.mode if callback_data.mode in ("instant", "daily", "weekly") else "instant"
    await callback.message.edit_reply_markup(reply_markup=None)
    await create_alert(callback.message, query, subscriptions, preview, chat_row, _,
                       user_id=callback.from_user.id, mode=mode)


async def preview_command(message: Message, command: CommandObject, preview: PreviewService, _: Gettext) -> None:
    text = (command.args or "").strip()
    if not text:
        await message.answer(_("Which query? Send it after the command, e.g. <code>/preview OTAN Azerbaïdjan</code>."))
        return
    try:
        result = await preview.preview(text)
    except QueryError as exc:
        await message.answer(query_error_text(_, exc, text))
        return
    await message.answer(preview_text(_, result))


async def cancel(message: Message, state: FSMContext, _: Gettext) -> None:
    had_state = await state.get_state() is not None
    await state.clear()
    await message.answer(_("Cancelled.") if had_state else _("Nothing to cancel."))


# --- listing and the alert buttons -------------------------------------------------------------


async def list_alerts(
    message: Message, subscriptions: SubscriptionService, chat_row: Chat, managing: Chat | None, _: Gettext
) -> None:
    page = await subscriptions.page(chat_row.id, 0, PER_PAGE)
    if not page.total:
        await message.answer(where_text(_, managing) + _(
            "No alerts yet. Create one with <code>/subscribe Azerbaïdjan</code>."))
        return
    await message.answer(page_text(_, page, managing), reply_markup=page_keyboard(page))


async def show_page(callback: CallbackQuery, subscriptions: SubscriptionService, chat_row: Chat,
                    managing: Chat | None, _: Gettext, page_number: int, toast: str | None = None) -> None:
    await callback.answer(toast)
    if not isinstance(callback.message, Message):
        return
    page = await subscriptions.page(chat_row.id, page_number, PER_PAGE)
    if not page.total:
        await _edit(callback.message, where_text(_, managing) + _(
            "No alerts left. Create one with <code>/subscribe Azerbaïdjan</code>."))
        return
    await _edit(callback.message, page_text(_, page, managing), page_keyboard(page))


async def list_page(callback: CallbackQuery, callback_data: ListCb, subscriptions: SubscriptionService,
                    chat_row: Chat, managing: Chat | None, _: Gettext) -> None:
    await show_page(callback, subscriptions, chat_row, managing, _, callback_data.page)


async def alert_action(
    callback: CallbackQuery,
    callback_data: AlertCb,
    state: FSMContext,
    subscriptions: SubscriptionService,
    chats: ChatService,
    chat_row: Chat,
    managing: Chat | None,
    _: Gettext,
) -> None:
    action, alert_id, page = callback_data.action, callback_data.id, callback_data.page
    message = callback.message if isinstance(callback.message, Message) else None
    try:
        alert = await subscriptions.get(chat_row.id, alert_id)
        if action in ("pause", "resume"):
            await subscriptions.set_paused(chat_row.id, alert_id, action == "pause")
            toast = _("⏸ Alert #{id} paused.", id=alert_id) if action == "pause" else _(
                "▶️ Alert #{id} resumed.", id=alert_id)
            await show_page(callback, subscriptions, chat_row, managing, _, page, toast)
            return
        if action == "settime":
            await _set_mode_from_arg(subscriptions, chat_row.id, alert_id, callback_data.arg)
            await show_page(callback, subscriptions, chat_row, managing, _, page, _("Saved."))
            return
        if action == "srcall":
            await subscriptions.set_sources(chat_row.id, alert_id, None)
            await show_page(callback, subscriptions, chat_row, managing, _, page, _("Saved: every source."))
            return
        if action == "delok":
            await subscriptions.delete(chat_row.id, alert_id)
            await show_page(callback, subscriptions, chat_row, managing, _, page,
                            _("🗑 Alert #{id} deleted.", id=alert_id))
            return
        await callback.answer()
        if message is None:
            return
        head = f"<b>#{alert.id}</b> {alert_label(alert)}\n"
        if action == "undo":
            await subscriptions.delete(chat_row.id, alert_id)
            await _edit(message, _("↩️ Undone: alert #{id} <b>{query}</b> is deleted.", id=alert_id,
                                   query=short(alert.query, 300)))
        elif action == "del":
            keyboard = InlineKeyboardMarkup(inline_keyboard=[[
                InlineKeyboardButton(text=_("🗑 Yes, delete it"),
                                     callback_data=AlertCb(action="delok", id=alert_id, page=page).pack()),
                back_button(_, page),
            ]])
            await _edit(message, head + _("Delete this alert? Its settings are lost."), keyboard)
        elif action == "mode":
            await _edit(message, head + _("Now: {mode}.\nHow should its matches be delivered?",
                                          mode=mode_text(_, alert)), mode_keyboard(_, alert_id, page))
        elif action == "daily":
            await _edit(message, head + _("Daily digest: at what time (your time zone)?"),
                        times_keyboard(_, alert_id, page, "d"))
        elif action == "weekly":
            await _edit(message, head + _("Weekly digest: on which day?"), weekdays_keyboard(_, alert_id, page))
        elif action == "weekday":
            day = int(callback_data.arg) if callback_data.arg.isdigit() and int(callback_data.arg) < 7 else 0
            await _edit(message, head + _("Weekly digest on {day}: at what time?", day=_(WEEKDAYS[day])),
                        times_keyboard(_, alert_id, page, f"w{day}"))
        elif action == "timeask":
            await state.set_state(EditAlert.digest_time)
            await state.update_data(alert_id=alert_id, prefix=callback_data.arg)
            await message.answer(_("Send the time for alert #{id}'s digest, e.g. <code>07:30</code>. /cancel stops.",
                                   id=alert_id), reply_markup=ForceReply(selective=True))
        elif action == "edit":
            await state.set_state(EditAlert.query)
            await state.update_data(alert_id=alert_id)
            await message.answer(
                _("Send the new query for alert #{id}. Now: <code>{query}</code>\n/cancel keeps it as it is.",
                  id=alert_id, query=short(alert.query, 300)),
                reply_markup=ForceReply(selective=True),
            )
        elif action in ("src", "srct"):
            source_page = page_arg = 0
            if action == "srct":
                source_id, _sep, page_arg_text = callback_data.arg.partition(".")
                if source_id.isdigit():
                    alert = await subscriptions.toggle_source(chat_row.id, alert_id, int(source_id))
                page_arg = int(page_arg_text) if page_arg_text.isdigit() else 0
            elif callback_data.arg.isdigit():
                page_arg = int(callback_data.arg)
            source_page = page_arg
            text, keyboard = await _sources_menu(_, chats, alert, page, source_page)
            await _edit(message, text, keyboard)
    except AlertNotFound:
        await callback.answer(_("This alert no longer exists. /list shows the current ones."), show_alert=True)


async def _sources_menu(_: Gettext, chats: ChatService, alert: Subscription, page: int,
                        source_page: int) -> tuple[str, InlineKeyboardMarkup]:
    sources = list(await chats.catalogue())
    pages = max(1, -(-len(sources) // SOURCES_PER_PAGE))
    source_page = min(max(source_page, 0), pages - 1)
    chosen = set(alert.source_ids or ())
    rows = []
    for source in sources[source_page * SOURCES_PER_PAGE:(source_page + 1) * SOURCES_PER_PAGE]:
        mark = "✅" if source.id in chosen else "▫️"
        name = source.name if len(source.name) <= 40 else source.name[:39] + "…"
        rows.append([InlineKeyboardButton(text=f"{mark} {name}", callback_data=AlertCb(
            action="srct", id=alert.id, page=page, arg=f"{source.id}.{source_page}").pack())])
    nav = []
    if source_page > 0:
        nav.append(InlineKeyboardButton(text="◀️", callback_data=AlertCb(
            action="src", id=alert.id, page=page, arg=str(source_page - 1)).pack()))
    if source_page + 1 < pages:
        nav.append(InlineKeyboardButton(text="▶️", callback_data=AlertCb(
            action="src", id=alert.id, page=page, arg=str(source_page + 1)).pack()))
    if nav:
        rows.append(nav)
    rows.append([InlineKeyboardButton(text=_("🌐 All sources"), callback_data=AlertCb(
        action="srcall", id=alert.id, page=page).pack()), back_button(_, page)])
    text = (f"<b>#{alert.id}</b> {alert_label(alert)}\n"
            + _("Sources: {sources}. Tap a source to choose it (✅); with none chosen, every source counts.",
                sources=sources_text(_, alert)))
    if not sources:
        text += "\n" + _("No sources yet: /sources explains how to propose one.")
    return text, InlineKeyboardMarkup(inline_keyboard=rows)


async def _set_mode_from_arg(subscriptions: SubscriptionService, chat_id: int, alert_id: int, arg: str) -> None:
    """`arg`: "i" (instant), "d.HHMM" (daily), "w<weekday>.HHMM" (weekly)."""
    if arg == "i":
        await subscriptions.set_mode(chat_id, alert_id, "instant")
        return
    kind, _sep, hhmm = arg.partition(".")
    time_of_day = normalize_time(f"{hhmm[:2]}:{hhmm[2:]}") if len(hhmm) == 4 else None
    if kind == "d":
        await subscriptions.set_mode(chat_id, alert_id, "daily", digest_time=time_of_day)
    elif kind.startswith("w") and kind[1:].isdigit():
        await subscriptions.set_mode(chat_id, alert_id, "weekly", digest_time=time_of_day,
                                     digest_weekday=int(kind[1:]))


async def edited_query(message: Message, state: FSMContext, subscriptions: SubscriptionService,
                       chat_row: Chat, _: Gettext) -> None:
    alert_id = (await state.get_data()).get("alert_id")
    text = message.text or ""
    try:
        alert = await subscriptions.edit_query(chat_row.id, int(alert_id or 0), text)
    except QueryError as exc:
        await message.answer(query_error_text(_, exc, text) + "\n" + _("Send another query, or /cancel."))
        return
    except DuplicateAlert as exc:
        await message.answer(_("Alert #{id} already follows this query. Send another one, or /cancel.",
                               id=exc.existing.id))
        return
    except AlertNotFound:
        await state.clear()
        await message.answer(_("This alert no longer exists. /list shows the current ones."))
        return
    await state.clear()
    await message.answer(_("✏️ Alert #{id} now follows <b>{query}</b>. /list shows your alerts.",
                           id=alert.id, query=short(alert.query, 300)))


async def edited_time(message: Message, state: FSMContext, subscriptions: SubscriptionService,
                      chat_row: Chat, _: Gettext) -> None:
    data = await state.get_data()
    time_of_day = normalize_time(message.text)
    if time_of_day is None:
        await message.answer(_("That is not a time: send it as <code>HH:MM</code>, e.g. <code>07:30</code>, "
                               "or /cancel."))
        return
    prefix = str(data.get("prefix") or "d")
    try:
        await _set_mode_from_arg(subscriptions, chat_row.id, int(data.get("alert_id") or 0),
                                 f"{prefix}.{time_of_day.replace(':', '')}")
        alert = await subscriptions.get(chat_row.id, int(data.get("alert_id") or 0))
    except AlertNotFound:
        await state.clear()
        await message.answer(_("This alert no longer exists. /list shows the current ones."))
        return
    await state.clear()
    await message.answer(_("✅ Alert #{id}: {mode}.", id=alert.id, mode=mode_text(_, alert)))


# --- deleting, pausing everything ----------------------------------------------------------------


async def unsubscribe(
    message: Message, command: CommandObject, subscriptions: SubscriptionService, chat_row: Chat, _: Gettext
) -> None:
    if not command.args or not command.args.strip():
        alerts = list(await subscriptions.list(chat_row.id))
        if not alerts:
            await message.answer(_("No alerts yet. Create one with <code>/subscribe Azerbaïdjan</code>."))
            return
        rows = [[InlineKeyboardButton(
            text=f"🗑 #{a.id} {a.query if len(a.query) <= 40 else a.query[:39] + '…'}",
            callback_data=AlertCb(action="del", id=a.id).pack())] for a in alerts[:30]]
        await message.answer(
            _("Which alert? Tap it, or send its id from /list, e.g. <code>/unsubscribe 3</code>."),
            reply_markup=InlineKeyboardMarkup(inline_keyboard=rows),
        )
        return
    removed = await subscriptions.unsubscribe(chat_row.id, command.args)
    if removed is None:
        await message.answer(
            _("No alert <b>{reference}</b> in this chat. /list shows your alerts and their ids.",
              reference=short(command.args.strip(), 200))
        )
        return
    await message.answer(_("🗑 Alert #{id} deleted: <b>{query}</b>", id=removed.id, query=short(removed.query, 300)))


async def pause_all(message: Message, subscriptions: SubscriptionService, chat_row: Chat, _: Gettext) -> None:
    changed = await subscriptions.set_all_paused(chat_row.id, True)
    if not changed:
        await message.answer(_("Nothing to pause: no alert is running. /resume starts them again."))
        return
    await message.answer(_("⏸ {count} alert(s) paused. /resume starts them again.", count=changed))


async def resume_all(message: Message, subscriptions: SubscriptionService, chat_row: Chat, _: Gettext) -> None:
    changed = await subscriptions.set_all_paused(chat_row.id, False)
    if not changed:
        await message.answer(_("Nothing to resume: no alert is paused. /list shows your alerts."))
        return
    await message.answer(_("▶️ {count} alert(s) resumed.", count=changed))


async def _edit(message: Message, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
    try:
        await message.edit_text(text, reply_markup=markup)
    except TelegramBadRequest as error:
        if "not modified" not in str(error):
            raise


def make_router() -> Router:
    router = Router(name="alerts")
    router.message.register(cancel, Command("cancel", "annuler"))
    router.message.register(subscribe, Command("subscribe", "sub", "suivre"), flags=CHANGES)
    router.message.register(preview_command, Command("preview", "apercu", "aperçu"))
    router.message.register(unsubscribe, Command("unsubscribe", "unsub", "desabonner"), flags=CHANGES)
    router.message.register(list_alerts, Command("list", "liste", "alerts", "alertes"))
    router.message.register(pause_all, Command("pause"), flags=CHANGES)
    router.message.register(resume_all, Command("resume", "reprendre"), flags=CHANGES)
    text_reply = F.text & ~F.text.startswith("/")
    router.message.register(new_alert_query, StateFilter(NewAlert.query), text_reply, flags=CHANGES)
    router.message.register(edited_query, StateFilter(EditAlert.query), text_reply, flags=CHANGES)
    router.message.register(edited_time, StateFilter(EditAlert.digest_time), text_reply, flags=CHANGES)
    router.callback_query.register(new_alert_mode, NewAlertCb.filter(), flags=CHANGES)
    router.callback_query.register(list_page, ListCb.filter())
    router.callback_query.register(alert_action, AlertCb.filter(), flags=CHANGES)
    return router

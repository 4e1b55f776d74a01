"""Admin commands (issue #8): /broadcast, /cancel_broadcast, /digest, /stats, /health, /ban, /unban.

Every handler and callback of this router sits behind router-level filters: the author is an admin
(`VEILLE_ADMIN_IDS`, read from the `admin_services` the dispatcher carries) and the chat is private.
A non-admin's update falls through to the other routers as if this router did not exist, forged
callback data included. The live broadcast report is a scheduler job (`schedule_admin_jobs`) that
edits the admin's report message every few seconds from what the outbox holds, so it survives a
restart.
"""

from __future__ import annotations

import logging
from datetime import datetime

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
from aiogram.filters import Command, CommandObject, Filter, StateFilter
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)

from bot.core.query import QueryError
from bot.core.render import escape
from bot.db.models import Broadcast
from bot.i18n import Gettext, translator
from bot.services.admin import AdminError, AdminServices, parse_schedule, render_digest
from bot.services.broadcasts import Audience, BroadcastError, BroadcastReport, parse_buttons, progress_bar
from bot.services.stats import SourceHealth, StatsSnapshot
from bot.telegram.texts import query_error_text

log = logging.getLogger(__name__)

HEALTH_LIST_LIMIT = 25
HEALTH_BUTTON_ROWS = 8


class IsAdmin(Filter):
    """The update's author is an admin. With no ids given, reads them from `admin_services`."""

    def __init__(self, admin_ids: frozenset[int] | None = None) -> None:
        self.admin_ids = admin_ids

    async def __call__(self, event: Message | CallbackQuery, admin_services: AdminServices | None = None) -> bool:
        ids = self.admin_ids if self.admin_ids is not None else (admin_services.admin_ids if admin_services else None)
        user = event.from_user
        return bool(ids) and user is not None and user.id in ids


class BroadcastCb(CallbackData, prefix="abc"):
    action: str  # aud | btn | send | drop | stop | csv | del | delok
    id: int
    value: str = ""


class SourceCb(CallbackData, prefix="asrc"):
    action: str  # retry | enable | disable | remove | rmok
    id: int


class Compose(StatesGroup):
    message = State()
    buttons = State()
    term = State()


# --- texts ---------------------------------------------------------------------------------------


def audience_label(_: Gettext, audience: Audience) -> str:
    if audience.kind == "language":
        return _("chats in {language}", language=escape(audience.value or ""))
    if audience.kind == "term":
        return _("chats following <code>{term}</code>", term=escape(audience.value or ""))
    if audience.kind == "groups":
        return _("groups and channels")
    if audience.kind == "chat":
        return _("the chat {chat}", chat=escape(audience.value or ""))
    return _("everyone")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "…"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def report_text(_: Gettext, report: BroadcastReport) -> str:
    c = report.counts
    if report.finished:
        title = _("📣 <b>Broadcast #{id}</b> — finished", id=report.id) if report.status == "done" else _(
            "📣 <b>Broadcast #{id}</b> — cancelled", id=report.id)
        took = (report.finished_at - report.started_at).total_seconds() if (
            report.finished_at and report.started_at) else None
        return "\n".join([
            title,
            _("✅ Sent: {n}", n=c.sent),
            _("🚫 Blocked: {n}", n=c.blocked),
            _("⚠️ Failed: {n}", n=c.failed),
            _("✖️ Not sent (cancelled): {n}", n=c.cancelled + c.pending),
            _("Total: {total} chats, in {duration}.", total=report.total, duration=_duration(took)),
        ])
    percent = round(100 * c.done / report.total) if report.total else 100
    return "\n".join([
        _("📣 <b>Broadcast #{id}</b> — sending", id=report.id),
        f"<code>{progress_bar(c.done, report.total)}</code> {percent}%",
        _("✅ sent {sent} · 🚫 blocked {blocked} · ⚠️ failed {failed} · ⏳ remaining {remaining}",
          sent=c.sent, blocked=c.blocked, failed=c.failed, remaining=c.pending),
        _("Time left: about {eta}", eta=_duration(report.eta_seconds)),
    ])


def report_keyboard(_: Gettext, report: BroadcastReport) -> InlineKeyboardMarkup | None:
    if not report.finished:
        return InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(
            text=_("⏹ Stop"), callback_data=BroadcastCb(action="stop", id=report.id).pack())]])
    row = []
    if report.counts.blocked or report.counts.failed:
        row.append(InlineKeyboardButton(text=_("📄 Failures (CSV)"),
                                        callback_data=BroadcastCb(action="csv", id=report.id).pack()))
    if report.counts.sent:
        row.append(InlineKeyboardButton(text=_("🗑 Delete sent messages"),
                                        callback_data=BroadcastCb(action="del", id=report.id).pack()))
    return InlineKeyboardMarkup(inline_keyboard=[row]) if row else None


def stats_text(_: Gettext, s: StatsSnapshot) -> str:
    chats = ", ".join(f"{kind} {active}" + (f" (+{inactive} inactive)" if inactive else "")
                      for kind, (active, inactive) in s.chats.items()) or "0"
    return "\n".join([
        _("📊 <b>Veille statistics</b>"),
        _("Users: {total} — active {active}, blocked {blocked}, banned {banned}", total=s.users.total,
          active=s.users.active, blocked=s.users.blocked, banned=s.users.banned),
        _("Chats: {chats}", chats=escape(chats)),
        _("Alerts: {alerts} ({paused} paused)", alerts=s.alerts, paused=s.alerts_paused),
        _("Sources: {ok} ok, {failing} failing, {disabled} disabled", ok=s.sources["ok"],
          failing=s.sources["failing"], disabled=s.sources["disabled"]),
        _("Today (UTC): {articles} articles, {alerts} alerts sent", articles=s.articles_today,
          alerts=s.alerts_today),
    ])


def _ago(now: datetime, when: datetime | None) -> str:
    if when is None:
        return "—"
    delta = (now - when).total_seconds()
    return _duration(abs(delta)) + (" ago" if delta >= 0 else "")


def health_line(h: SourceHealth, now: datetime) -> str:
    icon = {"ok": "🟢", "failing": "🔴", "disabled": "⚪"}[h.state]
    ratio = f"{h.not_modified_ratio:.0%}" if h.not_modified_ratio is not None else "—"
    interval = _duration(h.interval_seconds) if h.interval_seconds else "—"
    nxt = _duration((h.next_check_at - now).total_seconds()) if h.next_check_at and h.next_check_at > now else (
        "now" if h.next_check_at else "—")
    line = (f"{icon} #{h.id} <b>{escape(h.name[:60])}</b> · ok {_ago(now, h.last_success_at)} · "
            f"every {interval} · 304 {ratio} · next {nxt}")
    if h.error_streak:
        line += f"\n    ✗{h.error_streak} {escape((h.last_error or '')[:120])}"
    if h.state == "disabled" and h.disabled_reason:
        line += f"\n    {escape(h.disabled_reason[:120])}"
    return line


def source_buttons(_: Gettext, h: SourceHealth) -> list[InlineKeyboardButton]:
    toggle = (InlineKeyboardButton(text=_("▶️ Enable #{id}", id=h.id),
                                   callback_data=SourceCb(action="enable", id=h.id).pack())
              if h.state == "disabled" else
              InlineKeyboardButton(text=_("⏸ Disable #{id}", id=h.id),
                                   callback_data=SourceCb(action="disable", id=h.id).pack()))
    return [
        InlineKeyboardButton(text=_("🔄 Retry #{id}", id=h.id), callback_data=SourceCb(action="retry", id=h.id).pack()),
        toggle,
        InlineKeyboardButton(text=_("🗑 Remove #{id}", id=h.id), callback_data=SourceCb(action="remove", id=h.id).pack()),
    ]


# --- sending one broadcast message (the preview) -----------------------------------------------------


def markup_from_buttons(buttons: list | None) -> InlineKeyboardMarkup | None:
    if not buttons:
        return None
    return InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text=b["text"], url=b["url"]) for b in row]
                                                 for row in buttons])


async def send_broadcast_message(bot: Bot, chat_id: int, broadcast: Broadcast) -> Message:
    """Sends the broadcast exactly as its recipients will get it (used for the admin's preview)."""
    markup = markup_from_buttons(broadcast.buttons)
    if broadcast.photo_file_id:
        return await bot.send_photo(chat_id, broadcast.photo_file_id, caption=broadcast.text or None,
                                    reply_markup=markup)
    if broadcast.document_file_id:
        return await bot.send_document(chat_id, broadcast.document_file_id, caption=broadcast.text or None,
                                       reply_markup=markup)
    return await bot.send_message(chat_id, broadcast.text, reply_markup=markup)


async def panel(
    _: Gettext, services: AdminServices, broadcast: Broadcast
) -> tuple[str, InlineKeyboardMarkup]:
    """The draft's control panel: audience choice, buttons, send, cancel."""
    audience = Audience.from_json(broadcast.audience)
    count = await services.broadcasts.count_audience(audience)

    def button(text: str, action: str, value: str = "") -> InlineKeyboardButton:
        return InlineKeyboardButton(text=text, callback_data=BroadcastCb(action=action, id=broadcast.id,
                                                                         value=value).pack())

    rows = [
        [button(_("👥 Everyone"), "aud", "everyone"), button("🇫🇷 FR", "aud", "fr"),
         button("🇬🇧 EN", "aud", "en")],
        [button(_("👥 Groups and channels"), "aud", "groups"), button(_("🔎 By alert term"), "aud", "term")],
    ]
    if services.digest_chat:
        rows.append([button(_("📣 Channel {chat}", chat=services.digest_chat[:30]), "aud", "channel")])
    rows.append([button(_("🔗 Buttons"), "btn")])
    rows.append([button(_("✅ Send to {count} chats", count=count), "send"), button(_("✖️ Cancel"), "drop")])
    text = _(
        "📣 <b>Broadcast #{id}</b> — draft\nAudience: {audience} — <b>{count}</b> chats.\n"
        "The message above is exactly what they will receive.",
        id=broadcast.id, audience=audience_label(_, audience), count=count,
    )
    return text, InlineKeyboardMarkup(inline_keyboard=rows)


async def show_draft(message: Message, bot: Bot, _: Gettext, services: AdminServices, broadcast: Broadcast) -> None:
    try:
        await send_broadcast_message(bot, message.chat.id, broadcast)
    except TelegramBadRequest as exc:
        await message.answer(_("⚠️ Telegram refused this message: {error}", error=escape(exc.message)))
        return
    text, keyboard = await panel(_, services, broadcast)
    await message.answer(text, reply_markup=keyboard)


# --- handlers: broadcasts ----------------------------------------------------------------------------


async def broadcast_command(message: Message, state: FSMContext, _: Gettext) -> None:
    await state.set_state(Compose.message)
    await message.answer(_("Send me the message to broadcast: text (formatting is kept), or a photo or a "
                           "document with a caption. /cancel to stop."))


async def compose_message(
    message: Message, state: FSMContext, bot: Bot, _: Gettext, admin_services: AdminServices
) -> None:
    photo = message.photo[-1].file_id if message.photo else None
    document = message.document.file_id if message.document else None
    text = message.html_text if (message.text or message.caption) else ""
    try:
        broadcast = await admin_services.broadcasts.create_draft(
            message.from_user.id if message.from_user else 0, text, photo_file_id=photo, document_file_id=document,
        )
    except BroadcastError as exc:
        await message.answer(_("⚠️ {error}", error=escape(str(exc))))
        return
    await state.clear()
    await show_draft(message, bot, _, admin_services, broadcast)


async def compose_buttons(
    message: Message, state: FSMContext, bot: Bot, _: Gettext, admin_services: AdminServices
) -> None:
    broadcast_id = (await state.get_data()).get("broadcast_id")
    text = (message.text or "").strip()
    try:
        buttons = [] if text == "-" else parse_buttons(text)
    except BroadcastError as exc:
        await message.answer(_("⚠️ {error}", error=escape(str(exc))))
        return
    await state.clear()
    broadcast = await admin_services.broadcasts.update_draft(broadcast_id, buttons=buttons, clear_buttons=True)
    if broadcast is None:
        await message.answer(_("This broadcast is no longer a draft."))
        return
    await show_draft(message, bot, _, admin_services, broadcast)


async def compose_term(message: Message, state: FSMContext, _: Gettext, admin_services: AdminServices) -> None:
    broadcast_id = (await state.get_data()).get("broadcast_id")
    await state.clear()
    term = (message.text or "").strip()[:200]
    broadcast = await admin_services.broadcasts.update_draft(broadcast_id, audience=Audience("term", term))
    if broadcast is None:
        await message.answer(_("This broadcast is no longer a draft."))
        return
    text, keyboard = await panel(_, admin_services, broadcast)
    await message.answer(text, reply_markup=keyboard)


async def cancel_compose(message: Message, state: FSMContext, _: Gettext) -> None:
    await state.clear()
    await message.answer(_("Cancelled."))


async def broadcast_callback(
    query: CallbackQuery, callback_data: BroadcastCb, state: FSMContext, bot: Bot, _: Gettext,
    admin_services: AdminServices,
) -> None:
    services = admin_services
    action, broadcast_id = callback_data.action, callback_data.id
    message = query.message if isinstance(query.message, Message) else None
    if message is None:
        await query.answer()
        return
    if action == "aud":
        if callback_data.value == "term":
            await state.set_state(Compose.term)
            await state.update_data(broadcast_id=broadcast_id)
            await query.answer()
            await message.answer(_("Send the alert term: chats with an alert that contains it will receive the "
                                   "broadcast."))
            return
        if callback_data.value == "channel":
            chat = await _resolve_chat(bot, services, services.digest_chat or "")
            if chat is None:
                await query.answer(_("I cannot reach {chat}: add me to it as an admin.",
                                     chat=services.digest_chat or ""), show_alert=True)
                return
            audience = Audience("chat", str(chat))
        elif callback_data.value in ("fr", "en"):
            audience = Audience("language", callback_data.value)
        else:
            audience = Audience.parse(callback_data.value)
        broadcast = await services.broadcasts.update_draft(broadcast_id, audience=audience)
        if broadcast is None:
            await query.answer(_("This broadcast is no longer a draft."), show_alert=True)
            return
        text, keyboard = await panel(_, services, broadcast)
        await _edit(message, text, keyboard)
        await query.answer()
    elif action == "btn":
        await state.set_state(Compose.buttons)
        await state.update_data(broadcast_id=broadcast_id)
        await query.answer()
        await message.answer(_("Send the buttons, one per line: <code>Label - https://example.org</code> "
                               "(several on a line separated by <code>||</code>), or <code>-</code> for none."))
    elif action == "send":
        result = await services.broadcasts.confirm(broadcast_id, report_chat_id=message.chat.id,
                                                   report_message_id=message.message_id)
        if not result.started:
            await query.answer(_("This broadcast was already started."), show_alert=True)
            return
        await query.answer(_("Sending to {count} chats.", count=result.queued))
        report = await services.broadcasts.report(broadcast_id)
        if report is not None:
            await _edit(message, report_text(_, report), report_keyboard(_, report))
    elif action == "drop":
        await services.broadcasts.cancel(broadcast_id)
        await query.answer()
        await _edit(message, _("Broadcast #{id} cancelled.", id=broadcast_id), None)
    elif action == "stop":
        report = await services.broadcasts.cancel(broadcast_id)
        await query.answer()
        if report is not None:
            await _edit(message, report_text(_, report), report_keyboard(_, report))
    elif action == "csv":
        content = await services.broadcasts.failures_csv(broadcast_id)
        await query.answer()
        await message.answer_document(BufferedInputFile(content.encode("utf-8"),
                                                        filename=f"broadcast-{broadcast_id}-failures.csv"))
    elif action == "del":
        await query.answer()
        await message.answer(
            _("Delete every message of broadcast #{id} from the chats that received it?", id=broadcast_id),
            reply_markup=InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(
                text=_("🗑 Yes, delete them"), callback_data=BroadcastCb(action="delok", id=broadcast_id).pack())]]),
        )
    elif action == "delok":
        await query.answer(_("Deleting…"))
        await _edit(message, _("Deleting the messages of broadcast #{id}…", id=broadcast_id), None)
        deleted, failed = await services.broadcasts.delete_sent(broadcast_id, _deleter(bot))
        await message.answer(_("🗑 Broadcast #{id}: {deleted} messages deleted, {failed} could not be deleted.",
                               id=broadcast_id, deleted=deleted, failed=failed))
    else:
        await query.answer()


async def cancel_broadcast_command(
    message: Message, command: CommandObject, _: Gettext, admin_services: AdminServices
) -> None:
    arg = (command.args or "").strip().lstrip("#")
    broadcast_id = int(arg) if arg.isdigit() else await admin_services.broadcasts.latest_running_id()
    report = await admin_services.broadcasts.cancel(broadcast_id) if broadcast_id else None
    if report is None:
        await message.answer(_("No broadcast is running."))
        return
    await message.answer(report_text(_, report), reply_markup=report_keyboard(_, report))


def _deleter(bot: Bot):  # -> Deleter
    async def delete(chat_id: int, message_id: int) -> bool:
        try:
            return bool(await bot.delete_message(chat_id, message_id))
        except TelegramAPIError as exc:
            log.info("could not delete a broadcast message", extra={"chat": chat_id, "error": str(exc)})
            return False

    return delete


async def _edit(message: Message, text: str, markup: InlineKeyboardMarkup | None) -> None:
    try:
        await message.edit_text(text, reply_markup=markup)
    except TelegramBadRequest as exc:
        if "not modified" not in exc.message:
            raise


async def _resolve_chat(bot: Bot, services: AdminServices, reference: str) -> int | None:
    """A chat id or @username → its id, recorded as a chat the bot may send to; None if unreachable."""
    if not reference:
        return None
    try:
        chat = await bot.get_chat(int(reference) if reference.lstrip("-").isdigit() else reference)
    except TelegramAPIError as exc:
        log.warning("admin digest chat unreachable", extra={"chat": reference, "error": str(exc)})
        return None
    await services.broadcasts.ensure_chat(chat.id, chat.type, chat.title, chat.username)
    return chat.id


# --- the live report job ------------------------------------------------------------------------------


async def refresh_broadcast_reports(bot: Bot, services: AdminServices, shown: dict[int, str] | None = None) -> int:
    """Edits the report message of every running broadcast; the last edit is the final report.

    `shown` remembers the text last shown per broadcast, to skip edits that would change nothing.
    Returns how many messages were edited.
    """
    shown = shown if shown is not None else {}
    edited = 0
    for report in await services.broadcasts.running():
        if report.report_chat_id is None or report.report_message_id is None:
            continue
        _ = translator(await _chat_language(services, report.report_chat_id))
        text = report_text(_, report)
        if shown.get(report.id) == text:
            continue
        try:
            await bot.edit_message_text(text, chat_id=report.report_chat_id, message_id=report.report_message_id,
                                        reply_markup=report_keyboard(_, report))
            edited += 1
        except TelegramBadRequest as exc:
            if "not modified" not in exc.message:
                log.warning("broadcast report not updated", extra={"broadcast": report.id, "error": exc.message})
        except TelegramAPIError as exc:
            log.warning("broadcast report not updated", extra={"broadcast": report.id, "error": str(exc)})
        shown[report.id] = text
        if report.finished:
            shown.pop(report.id, None)
    return edited


async def _chat_language(services: AdminServices, chat_id: int) -> str:
    from bot.db.models import Chat

    async with services.broadcasts.session_factory() as session:
        chat = await session.get(Chat, chat_id)
    return chat.language if chat is not None else "en"


async def send_scheduled_digest(bot: Bot, services: AdminServices, *, owner: str = "") -> int | None:
    """The scheduled admin digest: the last 24 hours' top stories, broadcast to the configured chat.

    Every bot process runs this job; the first to claim today's run in the database sends it.
    """
    chat_id = await _resolve_chat(bot, services, services.digest_chat or "")
    if chat_id is None:
        return None
    _ = translator(await _chat_language(services, chat_id))
    digest = await services.admin.build_digest("24h")
    if not digest.stories:
        log.info("scheduled admin digest skipped: no stories")
        return None
    zone = parse_schedule(services.digest_schedule)[2] if services.digest_schedule else services.admin.timezone
    if not await services.admin.claim_daily_run("admin-digest", zone, owner=owner or "veille"):
        log.info("scheduled admin digest already sent today by another process")
        return None
    broadcast = await services.broadcasts.create_draft(0, render_digest(digest, _),
                                                       audience=Audience("chat", str(chat_id)))
    await services.broadcasts.confirm(broadcast.id)
    log.info("scheduled admin digest queued", extra={"broadcast": broadcast.id, "chat": chat_id})
    return broadcast.id


def schedule_admin_jobs(scheduler, bot: Bot, services: AdminServices, *, owner: str = "") -> None:  # noqa: ANN001
    """The live broadcast report (every `report_interval` s) and the scheduled admin digest, if set."""
    shown: dict[int, str] = {}

    async def reports() -> None:
        try:
            await refresh_broadcast_reports(bot, services, shown)
        except Exception:
            log.exception("broadcast report job failed")

    scheduler.add_job(reports, "interval", seconds=services.report_interval, id="broadcast-reports",
                      max_instances=1, coalesce=True)
    if services.digest_schedule and services.digest_chat:
        hour, minute, zone = parse_schedule(services.digest_schedule)

        async def digest() -> None:
            try:
                await send_scheduled_digest(bot, services, owner=owner)
            except Exception:
                log.exception("scheduled admin digest failed")

        scheduler.add_job(digest, "cron", hour=hour, minute=minute, timezone=zone, id="admin-digest",
                          max_instances=1, coalesce=True)


# --- handlers: digest, stats, health, bans --------------------------------------------------------------


async def digest_command(
    message: Message, command: CommandObject, bot: Bot, _: Gettext, admin_services: AdminServices
) -> None:
    words = (command.args or "").split(maxsplit=1)
    period = "24h"
    if words and words[0].lower() in ("today", "24h", "7d", "aujourdhui", "7j"):
        period = {"aujourdhui": "today", "7j": "7d"}.get(words[0].lower(), words[0].lower())
        words = words[1:]
    topic = words[0] if words else None
    try:
        digest = await admin_services.admin.build_digest(period, topic)
    except QueryError as exc:
        await message.answer(query_error_text(_, exc, topic or ""))
        return
    text = render_digest(digest, translator(admin_services.default_language))
    broadcast = await admin_services.broadcasts.create_draft(message.from_user.id if message.from_user else 0, text)
    await show_draft(message, bot, _, admin_services, broadcast)


async def stats_command(message: Message, _: Gettext, admin_services: AdminServices) -> None:
    snapshot = await admin_services.stats.snapshot()
    await message.answer(stats_text(_, snapshot))
    png = await admin_services.stats.chart_png(snapshot)
    await message.answer_photo(BufferedInputFile(png, filename="veille-stats.png"))


async def health_command(message: Message, command: CommandObject, _: Gettext, admin_services: AdminServices) -> None:
    text, keyboard = await health_view(_, admin_services, (command.args or "").strip().lstrip("#"))
    await message.answer(text, reply_markup=keyboard)


async def health_view(_: Gettext, services: AdminServices, only: str = "") -> tuple[str, InlineKeyboardMarkup | None]:
    health = await services.stats.sources_health()
    now = services.stats.clock()
    if only.isdigit():
        health = [h for h in health if h.id == int(only)]
    if not health:
        return _("No sources."), None
    counts = {state: sum(1 for h in health if h.state == state) for state in ("ok", "failing", "disabled")}
    lines = [_("🩺 <b>Sources</b>: {ok} ok, {failing} failing, {disabled} disabled", **counts)]
    lines += [health_line(h, now) for h in health[:HEALTH_LIST_LIMIT]]
    if len(health) > HEALTH_LIST_LIMIT:
        lines.append(_("… and {n} more (all ok). <code>/health ID</code> shows one.", n=len(health) - HEALTH_LIST_LIMIT))
    shown = [h for h in health if h.state != "ok"] if len(health) > 1 else health
    rows = [source_buttons(_, h) for h in shown[:HEALTH_BUTTON_ROWS]]
    return "\n".join(lines)[:4000], InlineKeyboardMarkup(inline_keyboard=rows) if rows else None


async def source_callback(
    query: CallbackQuery, callback_data: SourceCb, _: Gettext, admin_services: AdminServices
) -> None:
    message = query.message if isinstance(query.message, Message) else None
    if callback_data.action == "remove":
        await query.answer()
        if message is not None:
            await message.answer(
                _("Remove source #{id} and its articles?", id=callback_data.id),
                reply_markup=InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(
                    text=_("🗑 Yes, remove it"), callback_data=SourceCb(action="rmok", id=callback_data.id).pack())]]),
            )
        return
    action = "remove" if callback_data.action == "rmok" else callback_data.action
    try:
        name = await admin_services.admin.source_action(callback_data.id, action)
    except AdminError:
        await query.answer()
        return
    if name is None:
        await query.answer(_("No source #{id}.", id=callback_data.id), show_alert=True)
        return
    done = {"retry": _("🔄 {name}: checked now."), "enable": _("▶️ {name}: enabled."),
            "disable": _("⏸ {name}: disabled."), "remove": _("🗑 {name}: removed.")}[action]
    await query.answer(done.format(name=name)[:190])
    if message is not None and action != "remove":
        text, keyboard = await health_view(_, admin_services)
        await _edit(message, text, keyboard)


def _user_id(command: CommandObject) -> int | None:
    arg = (command.args or "").strip()
    return int(arg) if arg.lstrip("-").isdigit() else None


async def ban_command(message: Message, command: CommandObject, _: Gettext, admin_services: AdminServices) -> None:
    user_id = _user_id(command)
    if user_id is None:
        await message.answer(_("Usage: <code>/ban USER_ID</code>"))
        return
    try:
        result = await admin_services.admin.ban(user_id)
    except AdminError:
        await message.answer(_("An admin cannot be banned."))
        return
    await message.answer(_("⛔ User {user} is banned: their {alerts} alerts are stopped and their messages "
                           "ignored. /unban {user} undoes it.", user=user_id, alerts=result.alerts))


async def unban_command(message: Message, command: CommandObject, _: Gettext, admin_services: AdminServices) -> None:
    user_id = _user_id(command)
    if user_id is None:
        await message.answer(_("Usage: <code>/unban USER_ID</code>"))
        return
    result = await admin_services.admin.unban(user_id)
    if not result.changed:
        await message.answer(_("User {user} was not banned.", user=user_id))
        return
    await message.answer(_("✅ User {user} is no longer banned; their alerts run again.", user=user_id))


def make_router(admin_ids: frozenset[int] | None = None) -> Router:
    router = Router(name="admin")
    router.message.filter(F.chat.type == "private", IsAdmin(admin_ids))
    router.callback_query.filter(F.message.chat.type == "private", IsAdmin(admin_ids))
    router.message.register(cancel_compose, StateFilter(Compose), Command("cancel", "annuler"))
    router.message.register(broadcast_command, Command("broadcast", "diffuser"))
    router.message.register(cancel_broadcast_command, Command("cancel_broadcast"))
    router.message.register(digest_command, Command("digest"))
    router.message.register(stats_command, Command("stats"))
    router.message.register(health_command, Command("health", "sante"))
    router.message.register(ban_command, Command("ban"))
    router.message.register(unban_command, Command("unban"))
    router.message.register(compose_message, Compose.message)
    router.message.register(compose_buttons, Compose.buttons, F.text)
    router.message.register(compose_term, Compose.term, F.text)
    router.callback_query.register(broadcast_callback, BroadcastCb.filter())
    router.callback_query.register(source_callback, SourceCb.filter())
    return router


"""/export and /import: the chat's alerts as a JSON file and its sources as OPML, both ways, through
Telegram documents (https://core.telegram.org/bots/api#senddocument, #getfile)."""

from __future__ import annotations

import io

from aiogram import Bot, F, Router
from aiogram.filters import Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import BufferedInputFile, Document, Message

from bot.core.opml import OpmlError, OpmlSource, parse_opml, render_opml
from bot.db.models import Chat
from bot.i18n import Gettext
from bot.services.chats import ChatService, ProposalRefused
from bot.services.subscriptions import MAX_IMPORT_BYTES, BadImportFile, SubscriptionService
from bot.telegram.routers.alerts import CHANGES
from bot.telegram.texts import query_error_text, short

MAX_OPML_FEEDS = 50


class ImportFile(StatesGroup):
    document = State()


async def export_command(message: Message, subscriptions: SubscriptionService, chats: ChatService,
                         chat_row: Chat, _: Gettext) -> None:
    alerts = list(await subscriptions.list(chat_row.id))
    if not alerts:
        await message.answer(_("No alerts to export yet. Create one with <code>/subscribe Azerbaïdjan</code>."))
        return
    await message.answer_document(
        BufferedInputFile(await subscriptions.export_alerts(chat_row.id), filename="veille-alerts.json"),
        caption=_("Your {count} alert(s). Send this file with /import to restore them, here or elsewhere.",
                  count=len(alerts)),
    )
    sources = list(await chats.catalogue())
    if any(a.source_ids for a in alerts) and all(a.source_ids for a in alerts):
        used = {i for a in alerts for i in a.source_ids or ()}
        sources = [s for s in sources if s.id in used]
    if sources:
        opml = render_opml(OpmlSource(url=s.url, title=s.name, category=s.language, site_url=s.site_url)
                           for s in sources)
        await message.answer_document(
            BufferedInputFile(opml, filename="veille-sources.opml"),
            caption=_("The {count} source(s) your alerts read, as OPML for any feed reader.", count=len(sources)),
        )


async def import_command(message: Message, state: FSMContext, bot: Bot, subscriptions: SubscriptionService,
                         chats: ChatService, chat_row: Chat, _: Gettext) -> None:
    if message.document is not None:
        await import_document(message, state, bot, subscriptions, chats, chat_row, _)
        return
    await state.set_state(ImportFile.document)
    await message.answer(_("Send the file: a Veille export (.json) to add its alerts, or an OPML file (.opml) "
                           "to propose its feeds as sources. /cancel stops."))


async def import_document(message: Message, state: FSMContext, bot: Bot, subscriptions: SubscriptionService,
                          chats: ChatService, chat_row: Chat, _: Gettext) -> None:
    await state.clear()
    document: Document = message.document  # type: ignore[assignment]
    if document.file_size is not None and document.file_size > MAX_IMPORT_BYTES:
        await message.answer(_("This file is too large (at most 1 MB). Send a Veille export or an OPML file."))
        return
    buffer = io.BytesIO()
    await bot.download(document, destination=buffer)
    data = buffer.getvalue()[: MAX_IMPORT_BYTES + 1]
    name = (document.file_name or "").lower()
    if name.endswith((".opml", ".xml")) or data.lstrip()[:1] == b"<":
        await import_opml(message, data, chats, _)
        return
    try:
        report = await subscriptions.import_alerts(
            chat_row.id, data, user_id=message.from_user.id if message.from_user else None,
            message_thread_id=message.message_thread_id if message.is_topic_message else None,
        )
    except BadImportFile as error:
        await message.answer(_("I could not read this file ({reason}). Send a file made by /export.",
                               reason=short(str(error), 100)))
        return
    lines = [_("📥 Import: {created} new alert(s), {existing} already here.", created=len(report.created),
               existing=len(report.existing))]
    if report.over_limit:
        lines.append(_("{count} not added: this chat reached its limit of alerts.", count=len(report.over_limit)))
    for query, error in report.invalid[:5]:
        lines.append(query_error_text(_, error, query))
    if len(report.invalid) > 5:
        lines.append(_("… and {count} more invalid queries.", count=len(report.invalid) - 5))
    lines.append(_("/list shows your alerts."))
    await message.answer("\n".join(lines))


async def import_opml(message: Message, data: bytes, chats: ChatService, _: Gettext) -> None:
    user = message.from_user
    try:
        feeds = parse_opml(data)
    except OpmlError as error:
        await message.answer(_("I could not read this OPML file ({reason}).", reason=short(str(error), 150)))
        return
    if user is None or user.is_bot:
        await message.answer(_("Propose feeds from your own account, in a private chat with me."))
        return
    added, known, failed, quota = [], [], 0, False
    for feed in feeds[:MAX_OPML_FEEDS]:
        try:
            result = await chats.propose_source(feed.url, user.id)
        except ProposalRefused as refusal:
            if refusal.code == "quota":
                quota = True
                break
            failed += 1
            continue
        (added if result.created else known).append(result.source.name)
    lines = [_("📥 OPML: {added} new source(s), {known} already known, {failed} not usable.",
               added=len(added), known=len(known), failed=failed)]
    if quota:
        lines.append(_("The daily limit of proposals was reached: send the file again tomorrow for the rest."))
    lines.extend(f"• {short(name, 80)}" for name in added[:20])
    await message.answer("\n".join(lines))


def make_router() -> Router:
    router = Router(name="io")
    router.message.register(export_command, Command("export", "exporter"))
    router.message.register(import_command, Command("import", "importer"), flags=CHANGES)
    router.message.register(import_document, StateFilter(ImportFile.document), F.document, flags=CHANGES)
    return router

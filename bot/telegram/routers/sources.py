"""/sources: the catalogue of feeds per language, and proposing a new feed (`/sources add URL` or the
button), which goes through the fetcher's SSRF guard, feed discovery and parsing."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, CommandObject, StateFilter
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, ForceReply, InlineKeyboardButton, InlineKeyboardMarkup, Message

from bot.db.models import Source
from bot.i18n import Gettext
from bot.services.chats import ChatService, ProposalRefused
from bot.telegram.texts import short

PER_PAGE = 25
ADD_WORDS = ("add", "ajouter", "propose", "proposer")


class SourcesCb(CallbackData, prefix="so"):
    action: str  # page | propose
    page: int = 0


class ProposeSource(StatesGroup):
    url = State()


def catalogue_page(_: Gettext, sources: list[Source], page: int, lang: str) -> tuple[str, InlineKeyboardMarkup]:
    # The chat's language first, then the others, each by name.
    ordered = sorted(sources, key=lambda s: (s.language != lang, s.language or "~", s.name.casefold()))
    pages = max(1, -(-len(ordered) // PER_PAGE))
    page = min(max(page, 0), pages - 1)
    lines = [_("<b>Sources</b> ({count})", count=len(ordered))]
    if pages > 1:
        lines[0] += _(" — page {page}/{pages}", page=page + 1, pages=pages)
    current: str | None = "?"
    for source in ordered[page * PER_PAGE:(page + 1) * PER_PAGE]:
        if source.language != current:
            current = source.language
            lines.append(f"\n<b>{short((current or '—').upper(), 8)}</b>")
        lines.append(f"• {short(source.name, 60)}")
    if not ordered:
        lines.append(_("No sources yet."))
    lines.append(_("\nMissing one? Propose its feed or site: <code>/sources add https://example.org/feed</code>."))
    rows = []
    nav = []
    if page > 0:
        nav.append(InlineKeyboardButton(text="◀️", callback_data=SourcesCb(action="page", page=page - 1).pack()))
    if page + 1 < pages:
        nav.append(InlineKeyboardButton(text="▶️", callback_data=SourcesCb(action="page", page=page + 1).pack()))
    if nav:
        rows.append(nav)
    rows.append([InlineKeyboardButton(text=_("➕ Propose a feed"), callback_data=SourcesCb(action="propose").pack())])
    return "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=rows)


async def sources_command(message: Message, command: CommandObject, chats: ChatService, lang: str,
                          _: Gettext) -> None:
    words = (command.args or "").split()
    if words and words[0].lower() in ADD_WORDS:
        if len(words) < 2:
            await message.answer(_("Which feed? Send its address, e.g. "
                                   "<code>/sources add https://example.org/feed</code>."))
            return
        await propose(message, words[1], chats, _)
        return
    if words and ("." in words[0] or "://" in words[0]):
        await propose(message, words[0], chats, _)
        return
    text, keyboard = catalogue_page(_, list(await chats.catalogue()), 0, lang)
    await message.answer(text, reply_markup=keyboard)


async def sources_button(callback: CallbackQuery, callback_data: SourcesCb, state: FSMContext, chats: ChatService,
                         lang: str, _: Gettext) -> None:
    await callback.answer()
    if not isinstance(callback.message, Message):
        return
    if callback_data.action == "propose":
        await state.set_state(ProposeSource.url)
        await callback.message.answer(_("Send the address of the feed, or of the site that offers it. /cancel stops."),
                                      reply_markup=ForceReply(selective=True))
        return
    text, keyboard = catalogue_page(_, list(await chats.catalogue()), callback_data.page, lang)
    await callback.message.edit_text(text, reply_markup=keyboard)


async def proposed_url(message: Message, state: FSMContext, chats: ChatService, _: Gettext) -> None:
    await state.clear()
    await propose(message, (message.text or "").strip().split()[0] if message.text else "", chats, _)


async def propose(message: Message, url: str, chats: ChatService, _: Gettext) -> None:
    user = message.from_user
    if user is None or user.is_bot:
        await message.answer(_("Propose feeds from your own account, in a private chat with me."))
        return
    try:
        result = await chats.propose_source(url, user.id)
    except ProposalRefused as refusal:
        await message.answer(proposal_error(_, refusal))
        return
    name = short(result.source.name, 100)
    if result.created:
        await message.answer(_("✅ Thank you! <b>{name}</b> is now a source: its new articles count for every "
                               "alert.", name=name))
    else:
        await message.answer(_("<b>{name}</b> is already a source. Nothing to add.", name=name))


def proposal_error(_: Gettext, refusal: ProposalRefused) -> str:
    if refusal.code == "quota":
        return _("You have proposed {limit} feeds today, the most allowed. Try again tomorrow.",
                 limit=refusal.limit)
    if refusal.code == "bad_url":
        return _("That is not a web address. Send one like <code>https://example.org/feed</code>.")
    if refusal.code == "no_feed":
        return _("I found no news feed there. Send the feed’s own address (often ending in /feed or /rss).")
    return _("I could not fetch it: {reason}. Check the address and try again later.",
             reason=short(refusal.detail, 200))


def make_router() -> Router:
    router = Router(name="sources")
    router.message.register(sources_command, Command("sources"))
    router.callback_query.register(sources_button, SourcesCb.filter())
    router.message.register(proposed_url, StateFilter(ProposeSource.url), F.text & ~F.text.startswith("/"))
    return router

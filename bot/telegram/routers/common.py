"""/start (with example buttons and `sub_…` deep links), /help, /lang."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.dispatcher.event.bases import SkipHandler
from aiogram.filters import Command, CommandObject, CommandStart, StateFilter
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from bot.core.render import escape
from bot.db.models import Chat
from bot.i18n import N_, Gettext, translator
from bot.services.chats import ChatService
from bot.services.preview import PreviewService
from bot.services.subscriptions import SubscriptionService
from bot.telegram.routers.alerts import create_alert, subscribe_flags
from bot.telegram.texts import query_from_deep_link

LANG_SWITCHED = N_("✅ I will speak English here.")
EXAMPLES = ("Azerbaïdjan", "(OTAN OR NATO) Arménie", '"Caucase du Sud" -football')


class ExampleCb(CallbackData, prefix="ex"):
    index: int


class LangCb(CallbackData, prefix="lg"):
    lang: str


def welcome_text(_: Gettext, first_name: str | None) -> str:
    name = escape(first_name) if first_name else ""
    return _(
        "👋 Hello{name}! I am <b>Veille</b>, a news watcher.\n\n"
        "Tell me what to follow and I will send you every new article that mentions it, "
        "with a short summary and the link: at once, or as a daily or weekly digest.\n\n"
        "Write <code>/subscribe</code> and the words to follow, or tap an example below to add it.\n\n"
        "/list shows your alerts, /help explains the search syntax, /lang changes the language.",
        name=(" " + name) if name else "",
    )


def examples_keyboard() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[
        [InlineKeyboardButton(text=f"➕ {example}", callback_data=ExampleCb(index=i).pack())]
        for i, example in enumerate(EXAMPLES)
    ])


def help_text(_: Gettext) -> str:
    return _(
        "<b>How to write an alert</b>\n\n"
        "<code>OTAN Azerbaïdjan</code> — both words (in any order)\n"
        "<code>\"Caucase du Sud\"</code> — this exact phrase (« guillemets » work too)\n"
        "<code>(OTAN OR NATO) Arménie</code> — either word, plus Arménie\n"
        "<code>-football</code> — exclude articles with this word\n"
        "<code>azerbaïdjan*</code> — words starting with it (azerbaïdjanais…)\n"
        "<code>intitle:OTAN</code> — in the title only; <code>source:lemonde.fr</code>; <code>lang:fr</code>\n\n"
        "Case, accents and elisions do not matter: <i>Azerbaïdjan</i> finds <i>d’AZERBAIDJAN</i>; "
        "whole words only: <i>OTAN</i> never finds <i>botanique</i>. "
        "The full guide is docs/query-language.md in Veille’s repository.\n\n"
        "<b>Commands</b>\n"
        "/subscribe <i>query</i> — create an alert (without a query: step by step)\n"
        "/preview <i>query</i> — what it would have found in the last 7 days\n"
        "/list — your alerts, with buttons to pause, edit, choose delivery and sources, delete\n"
        "/unsubscribe <i>id or query</i> — delete an alert\n"
        "/pause, /resume — every alert at once\n"
        "/sources — the news sources, and how to propose a feed\n"
        "/timezone <i>Europe/Paris</i> — for digest times\n"
        "/quiet <i>22:00-07:00</i> — hold alerts at night, then send one digest\n"
        "/channel — send alerts to a channel you run\n"
        "/export, /import — your alerts as a file (JSON), sources as OPML\n"
        "/lang — français or English\n\n"
        "In a group, only administrators change the alerts; in a forum topic, alerts arrive in the topic "
        "where they were created."
    )


async def start(
    message: Message,
    command: CommandObject,
    subscriptions: SubscriptionService,
    preview: PreviewService,
    chat_row: Chat,
    _: Gettext,
) -> None:
    query = query_from_deep_link(command.args)
    if query is not None:
        await create_alert(message, query, subscriptions, preview, chat_row, _)
        return
    await message.answer(
        welcome_text(_, message.from_user.first_name if message.from_user else None),
        reply_markup=examples_keyboard(),
    )


async def add_example(
    callback: CallbackQuery,
    callback_data: ExampleCb,
    subscriptions: SubscriptionService,
    preview: PreviewService,
    chat_row: Chat,
    _: Gettext,
) -> None:
    await callback.answer()
    if not 0 <= callback_data.index < len(EXAMPLES) or not isinstance(callback.message, Message):
        return
    await create_alert(callback.message, EXAMPLES[callback_data.index], subscriptions, preview, chat_row, _,
                       user_id=callback.from_user.id)


async def end_conversation(message: Message, state: FSMContext) -> None:
    """Another command ends a conversation in progress (its question is no longer awaited)."""
    await state.clear()
    raise SkipHandler


async def help_command(message: Message, _: Gettext) -> None:
    await message.answer(help_text(_))


def language_keyboard() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[
        InlineKeyboardButton(text="🇫🇷 Français", callback_data=LangCb(lang="fr").pack()),
        InlineKeyboardButton(text="🇬🇧 English", callback_data=LangCb(lang="en").pack()),
    ]])


async def lang_command(message: Message, command: CommandObject, chats: ChatService, user_chat: Chat,
                       _: Gettext) -> None:
    wanted = (command.args or "").strip().lower()[:2]
    if wanted in ("fr", "en"):
        await chats.set_language(user_chat.id, wanted)
        await message.answer(translator(wanted)(LANG_SWITCHED))
        return
    await message.answer(_("Which language should I use here?"), reply_markup=language_keyboard())


async def lang_chosen(callback: CallbackQuery, callback_data: LangCb, chats: ChatService, user_chat: Chat) -> None:
    if callback_data.lang not in ("fr", "en"):
        await callback.answer()
        return
    await chats.set_language(user_chat.id, callback_data.lang)
    text = translator(callback_data.lang)(LANG_SWITCHED)
    await callback.answer()
    if isinstance(callback.message, Message):
        await callback.message.edit_text(text)


def make_router() -> Router:
    router = Router(name="common")
    router.message.register(end_conversation, ~StateFilter(None), F.text.startswith("/"),
                            ~Command("cancel", "annuler"))
    router.message.register(start, CommandStart(deep_link=True), flags=subscribe_flags())
    router.message.register(start, CommandStart())
    router.callback_query.register(add_example, ExampleCb.filter(), flags=subscribe_flags())
    router.message.register(help_command, Command("help", "aide"))
    router.message.register(lang_command, Command("lang", "langue", "language"), flags={"changes_alerts": True})
    router.callback_query.register(lang_chosen, LangCb.filter(), flags={"changes_alerts": True})
    return router

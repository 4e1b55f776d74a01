"""/start and /help."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandStart
from aiogram.types import Message

from bot.i18n import Gettext


def welcome_text(_: Gettext, first_name: str | None) -> str:
    from bot.core.render import escape

    name = escape(first_name) if first_name else ""
    return _(
        "👋 Hello{name}! I am <b>Veille</b>, a news watcher.\n\n"
        "Tell me what to follow and I will send you every new article that mentions it, "
        "with a short summary and the link.\n\n"
        "Try:\n<code>/subscribe Azerbaïdjan</code>\n<code>/subscribe (OTAN OR NATO) Arménie</code>\n"
        "<code>/subscribe \"Caucase du Sud\" -football</code>\n\n"
        "/list shows your alerts, /help explains the search syntax.",
        name=(" " + name) if name else "",
    )


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
        "whole words only: <i>OTAN</i> never finds <i>botanique</i>.\n\n"
        "<b>Commands</b>\n"
        "/subscribe <i>query</i> — create an alert\n"
        "/list — your alerts\n"
        "/unsubscribe <i>id or query</i> — delete an alert\n"
        "/help — this message"
    )


async def start(message: Message, _: Gettext) -> None:
    await message.answer(welcome_text(_, message.from_user.first_name if message.from_user else None))


async def help_command(message: Message, _: Gettext) -> None:
    await message.answer(help_text(_))


def make_router() -> Router:
    router = Router(name="common")
    router.message.register(start, CommandStart())
    router.message.register(help_command, Command("help", "aide"))
    return router

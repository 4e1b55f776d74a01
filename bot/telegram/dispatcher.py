"""The aiogram Dispatcher: routers, middlewares, and the bot's command menu."""

from __future__ import annotations

from aiogram import Bot, Dispatcher
from aiogram.types import BotCommand, BotCommandScopeDefault

from bot.services.subscriptions import SubscriptionService
from bot.settings import Settings
from bot.telegram.middlewares import ChatContextMiddleware
from bot.telegram.routers import get_routers
from bot.telegram.texts import COMMANDS


def build_dispatcher(subscriptions: SubscriptionService, settings: Settings) -> Dispatcher:
    dispatcher = Dispatcher()
    context = ChatContextMiddleware(subscriptions, settings.default_language)
    dispatcher.message.outer_middleware(context)
    dispatcher.callback_query.outer_middleware(context)
    dispatcher.include_routers(*get_routers())
    dispatcher["subscriptions"] = subscriptions
    return dispatcher


async def register_commands(bot: Bot) -> None:
    """The command menu in English by default and in French for French-speaking users."""
    await bot.set_my_commands(
        [BotCommand(command=c, description=d) for c, d in COMMANDS["en"]], scope=BotCommandScopeDefault()
    )
    await bot.set_my_commands(
        [BotCommand(command=c, description=d) for c, d in COMMANDS["fr"]],
        scope=BotCommandScopeDefault(),
        language_code="fr",
    )

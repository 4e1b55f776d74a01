"""The aiogram Dispatcher: FSM storage, middlewares, routers, the services handlers receive, and the
bot's command menu in English and French."""

from __future__ import annotations

from aiogram import Bot, Dispatcher
from aiogram.fsm.storage.base import BaseStorage
from aiogram.fsm.storage.memory import MemoryStorage
from aiogram.types import BotCommand, BotCommandScopeDefault

from bot.core.query import QueryLimits
from bot.fetcher.http import Fetcher
from bot.services.alert_views import AlertActions
from bot.services.chats import ChatService
from bot.services.preview import PreviewService
from bot.services.subscriptions import SubscriptionService
from bot.settings import Settings
from bot.telegram.ban import BanMiddleware
from bot.telegram.middlewares import AdminOnlyMiddleware, ChatContextMiddleware, ThrottlingMiddleware
from bot.telegram.routers import get_routers
from bot.telegram.texts import COMMANDS


def build_dispatcher(
    subscriptions: SubscriptionService,
    settings: Settings,
    *,
    fetcher: Fetcher | None = None,
    storage: BaseStorage | None = None,
    chats: ChatService | None = None,
    preview: PreviewService | None = None,
) -> Dispatcher:
    """`storage` holds conversations (FSM) and the channel a user manages; memory unless given."""
    chats = chats or ChatService(
        subscriptions.session_factory, subscriptions.matcher, clock=subscriptions.clock, fetcher=fetcher,
        proposals_per_day=settings.sources_proposed_per_day,
    )
    preview = preview or PreviewService(
        subscriptions.session_factory,
        limits=QueryLimits(max_length=settings.max_query_length, max_terms=settings.max_query_terms),
        clock=subscriptions.clock,
    )
    dispatcher = Dispatcher(storage=storage or MemoryStorage())
    dispatcher.update.outer_middleware(BanMiddleware(subscriptions.session_factory))  # banned users: ignored
    throttling = ThrottlingMiddleware(settings.commands_per_minute, settings.default_language)
    context = ChatContextMiddleware(subscriptions, chats, settings.default_language)
    admin_only = AdminOnlyMiddleware()
    for observer in (dispatcher.message, dispatcher.callback_query):
        observer.outer_middleware(throttling)  # first: a flood never reaches the database
        observer.outer_middleware(context)
        observer.middleware(admin_only)
    dispatcher.include_routers(*get_routers())
    dispatcher["subscriptions"] = subscriptions
    dispatcher["alert_actions"] = AlertActions(subscriptions.session_factory, subscriptions.matcher, clock=subscriptions.clock)  # noqa: E501
    dispatcher["chats"] = chats
    dispatcher["preview"] = preview
    dispatcher["settings"] = settings
    return dispatcher


async def register_commands(bot: Bot) -> None:
    """The command menu in English by default and with French names for French-speaking users
    (https://core.telegram.org/bots/api#setmycommands, `language_code`)."""
    await bot.set_my_commands(
        [BotCommand(command=c, description=d) for c, d in COMMANDS["en"]], scope=BotCommandScopeDefault()
    )
    await bot.set_my_commands(
        [BotCommand(command=c, description=d) for c, d in COMMANDS["fr"]],
        scope=BotCommandScopeDefault(),
        language_code="fr",
    )

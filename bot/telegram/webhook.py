"""Webhook mode (issue #9): Telegram POSTs updates to our HTTP server instead of being long-polled.

Several bot processes behind a load balancer can then take updates. Every request must carry the
secret given to setWebhook in `X-Telegram-Bot-Api-Secret-Token`
(https://core.telegram.org/bots/api#setwebhook); anything else is answered 401 and never reaches the
Dispatcher. The comparison is constant-time, on bytes (a non-ASCII header must not become a 500).
FSM state then lives in Redis (aiogram's RedisStorage), since a conversation's next update may reach
another process.
"""

from __future__ import annotations

import hmac
from typing import Any
from urllib.parse import urlsplit

from aiogram import Bot, Dispatcher
from aiogram.fsm.storage.redis import DefaultKeyBuilder, RedisStorage
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


class _SecretCheckingHandler(SimpleRequestHandler):
    def verify_secret(self, telegram_secret_token: str, bot: Bot) -> bool:
        if not self.secret_token:  # refused at configuration time; never accept unsigned updates
            return False
        return hmac.compare_digest(telegram_secret_token.encode("utf-8", "surrogateescape"),
                                   self.secret_token.encode("utf-8"))


def webhook_path(url: str) -> str:
    return urlsplit(url).path or "/"


def register_webhook(app: web.Application, dispatcher: Dispatcher, bot: Bot, *, url: str, secret: str,
                     **data: Any) -> None:
    """Adds the POST route for `url`'s path to `app`; `data` reaches handlers like polling's kwargs."""
    handler = _SecretCheckingHandler(
        dispatcher=dispatcher, bot=bot, secret_token=secret, handle_in_background=False, **data
    )
    handler.register(app, path=webhook_path(url))


async def set_webhook(bot: Bot, dispatcher: Dispatcher, *, url: str, secret: str) -> None:
    await bot.set_webhook(
        url=url, secret_token=secret, allowed_updates=dispatcher.resolve_used_update_types(),
        drop_pending_updates=False,
    )


def use_redis_fsm(dispatcher: Dispatcher, redis: Any, prefix: str = "veille:fsm") -> None:
    """Conversation state shared by every bot process."""
    dispatcher.fsm.storage = RedisStorage(redis=redis, key_builder=DefaultKeyBuilder(prefix=prefix, with_destiny=True))

"""The aiogram `Bot`, pointed at the configured Bot API server (Telegram, a self-hosted server, or a
test's fake on 127.0.0.1)."""

from __future__ import annotations

from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode


def make_bot(token: str, api_url: str, *, timeout: float = 30.0) -> Bot:
    session = AiohttpSession(api=TelegramAPIServer.from_base(api_url), timeout=timeout)
    return Bot(token=token, session=session, default=DefaultBotProperties(parse_mode=ParseMode.HTML))


async def check_bot(bot: Bot, api_url: str):  # noqa: ANN201 - aiogram's User
    """getMe, translated into one clear sentence when the token or the Bot API is wrong."""
    from aiogram.exceptions import TelegramUnauthorizedError

    from bot.errors import ConfigError, VeilleError
    from bot.telegram.sender import SEND_ERRORS

    try:
        return await bot.get_me()
    except TelegramUnauthorizedError:
        raise ConfigError(
            "VEILLE_BOT_TOKEN was refused by Telegram (401 Unauthorized): copy the token again from @BotFather"
        ) from None
    except SEND_ERRORS as exc:
        raise VeilleError(
            f"cannot reach the Telegram Bot API at {api_url} ({exc}); check the network or VEILLE_TELEGRAM_API_URL"
        ) from None

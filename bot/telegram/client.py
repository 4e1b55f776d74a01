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

"""Banned users are ignored: an outer middleware on every update drops those whose author is banned
(`users.banned`, set by `/ban`), before anything records or answers them (issue #8)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, Update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db import admin as db

log = logging.getLogger(__name__)


class BanMiddleware(BaseMiddleware):
    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self.session_factory = session_factory

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        inner = event.event if isinstance(event, Update) else event
        user = getattr(inner, "from_user", None)
        if user is not None and not user.is_bot:
            async with self.session_factory() as session:
                if await db.is_banned(session, user.id):
                    log.info("update from a banned user ignored", extra={"user": user.id})
                    return None
        return await handler(event, data)

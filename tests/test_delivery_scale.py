"""10,000 alerts to 2,000 chats through aiogram to a fake Bot API that enforces the rate limits, fails
at random and has blocked users: every alert arrives exactly once, in order per chat, and Veille's own
pacing provokes no 429. Limits are raised (the same in Veille and in the fake) so the test runs fast;
a smaller run keeps Telegram's real default limits."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert

from bot.core.ratelimit import ChatPacer, PacingSettings, RateLimiter
from bot.db import repo
from bot.db.models import Article, Chat, Source
from bot.services.delivery import Deliverer
from bot.telegram.client import make_bot
from bot.telegram.sender import TelegramSender
from tests.fakes.telegram_api import FakeTelegram

TITLE = re.compile(r"Alerte (-?\d+)-(\d+)")


def now() -> datetime:
    return datetime.now(UTC)


async def seed_chats(session_factory, chats: list[int], waves: int) -> dict[int, list[int]]:  # noqa: ANN001
    """Chats and, per wave, one article per chat; returns the article ids of each wave."""
    async with session_factory() as session, session.begin():
        stamp = now()
        await session.execute(insert(Chat), [
            {"id": c, "type": "private" if c > 0 else "group", "language": "fr", "timezone": "Europe/Paris",
             "link_preview": True, "active": True, "created_at": stamp, "updated_at": stamp} for c in chats
        ])
        source = Source(url="https://news.example/feed", name="Le Fil", enabled=True, next_check_at=stamp,
                        error_streak=0, polls=0, not_modified_polls=0, created_at=stamp)
        session.add(source)
        await session.flush()
        waves_ids: dict[int, list[int]] = {}
        for wave in range(waves):
            articles = [Article(source_id=source.id, key=f"{wave}-{c}", url=f"https://news.example/{wave}/{c}",
                                title=f"Alerte {c}-{wave}", summary="", first_seen_at=stamp) for c in chats]
            session.add_all(articles)
            await session.flush()
            waves_ids[wave] = [a.id for a in articles]
    return waves_ids


async def enqueue_wave(session_factory, chats: list[int], article_ids: list[int]) -> None:  # noqa: ANN001
    async with session_factory() as session, session.begin():
        await repo.enqueue_deliveries(session, [
            repo.NewDelivery(chat_id=c, kind="alert", dedup_key=f"article:{a}", article_id=a)
            for c, a in zip(chats, article_ids, strict=True)
        ], now=now())


async def run_until(deliverer: Deliverer, done, timeout: float) -> None:  # noqa: ANN001, ASYNC109
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not done():
        if loop.time() > deadline:
            raise TimeoutError("delivery did not finish in time")
        if await deliverer.drain_once() == 0:
            await asyncio.sleep(0.02)


def received(fake: FakeTelegram, chat: int) -> list[int]:
    return [int(m.group(2)) for message in fake.sent(chat) for m in TITLE.finditer(message.text)]


async def deliver_fan_out(session_factory, fake: FakeTelegram, *, chats: list[int], waves: int,  # noqa: ANN001
                          global_rate: int, private_rate: float, group_per_minute: int, timeout: float) -> None:
    fake.enforce_limits(global_per_second=global_rate, private_per_second=private_rate, private_burst=3,
                        group_per_minute=group_per_minute)
    fake.random_failures(rate=0.03, seed=7)
    blocked = set(chats[::97])
    for chat in blocked:
        fake.block(chat)
    flooded = chats[5:8]
    for chat in flooded:
        fake.flood_wait(chat, retry_after=1)
    wave_ids = await seed_chats(session_factory, chats, waves)
    bot = make_bot(fake.token, fake.base_url)
    limiter = RateLimiter(global_per_second=global_rate, pacer=ChatPacer(PacingSettings(
        private_per_second=private_rate, private_burst=3, group_per_minute=group_per_minute)))
    deliverer = Deliverer(session_factory=session_factory, sender=TelegramSender(bot), limiter=limiter, clock=now,
                          retry_base=0.05, retry_cap=0.5, alerts_per_hour=0)
    wanted = [c for c in chats if c not in blocked]
    try:
        for wave in range(waves):  # later waves arrive while the first ones are being delivered
            await enqueue_wave(session_factory, chats, wave_ids[wave])
            if wave == waves // 2:
                await deliverer.drain_once()
        await run_until(deliverer, lambda: all(len(received(fake, c)) >= waves for c in wanted), timeout)
    finally:
        await bot.session.close()
    for chat in wanted:
        assert received(fake, chat) == list(range(waves)), f"chat {chat}: not each alert once, in order"
    assert all(fake.sent(c) == [] for c in blocked)
    assert fake.too_many_requests == len(flooded), "Veille's own pacing provoked a 429"
    assert deliverer.stats.rows_sent == len(wanted) * waves


@pytest.mark.timeout(300)
async def test_ten_thousand_alerts_to_two_thousand_chats_arrive_once_in_order(session_factory) -> None:  # noqa: ANN001
    chats = [1_000 + n for n in range(1_900)] + [-5_000 - n for n in range(100)]
    async with FakeTelegram() as fake:
        await deliver_fan_out(session_factory, fake, chats=chats, waves=5, global_rate=600, private_rate=20,
                              group_per_minute=1200, timeout=240)


@pytest.mark.parametrize("waves", [2])
async def test_a_smaller_fan_out_at_telegrams_default_limits(session_factory, waves: int) -> None:  # noqa: ANN001
    chats = [2_000 + n for n in range(60)]
    async with FakeTelegram() as fake:
        await deliver_fan_out(session_factory, fake, chats=chats, waves=waves, global_rate=30, private_rate=1,
                              group_per_minute=20, timeout=60)

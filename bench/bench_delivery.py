"""Delivery benchmark against the fake Bot API (limits enforced): sustained messages/s against the
configured rate, CPU per message, and the time to fan one story out to N chats.

    .venv/bin/python bench/bench_delivery.py [--chats 10000] [--rate 30]

Goals (issue #7): ≥ 95 % of the configured rate with zero 429s; fan-out ≤ 1.05 × chats / rate seconds.
The baseline printed beside it is the ideal time (chats / rate) on the same run; a second line sends
the same fan-out with per-message DB writes only (no Telegram), to show the floor of our own costs.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert  # noqa: E402

from bot.core.ratelimit import ChatPacer, PacingSettings, RateLimiter  # noqa: E402
from bot.db import repo  # noqa: E402
from bot.db.engine import create_engine, create_session_factory  # noqa: E402
from bot.db.migrate import upgrade  # noqa: E402
from bot.db.models import Article, Chat, Source  # noqa: E402
from bot.services.delivery import Deliverer  # noqa: E402
from bot.telegram.client import make_bot  # noqa: E402
from bot.telegram.sender import TelegramSender  # noqa: E402
from tests.fakes.telegram_api import FakeTelegram  # noqa: E402


def now() -> datetime:
    return datetime.now(UTC)


async def seed(session_factory, chats: int) -> None:  # noqa: ANN001
    async with session_factory() as session, session.begin():
        stamp = now()
        await session.execute(insert(Chat), [
            {"id": 10_000 + c, "type": "private", "language": "fr", "timezone": "Europe/Paris",
             "link_preview": True, "active": True, "created_at": stamp, "updated_at": stamp} for c in range(chats)
        ])
        source = Source(url="https://news.example/feed", name="Le Fil", enabled=True, next_check_at=stamp,
                        error_streak=0, polls=0, not_modified_polls=0, created_at=stamp)
        session.add(source)
        await session.flush()
        article = Article(source_id=source.id, key="story", url="https://news.example/story",
                          title="Une histoire pour tous", summary="Résumé en une phrase.", first_seen_at=stamp)
        session.add(article)
        await session.flush()
        await repo.enqueue_deliveries(session, [
            repo.NewDelivery(chat_id=10_000 + c, kind="alert", dedup_key=f"article:{article.id}",
                             article_id=article.id) for c in range(chats)
        ], now=stamp)


async def run(chats: int, rate: float) -> None:
    directory = tempfile.mkdtemp()
    url = f"sqlite+aiosqlite:///{directory}/bench.db"
    await asyncio.to_thread(upgrade, url)
    engine = create_engine(url)
    session_factory = create_session_factory(engine)
    await seed(session_factory, chats)
    async with FakeTelegram() as fake:
        fake.validate_html = None
        fake.enforce_limits(global_per_second=int(rate))
        bot = make_bot(fake.token, fake.base_url)
        deliverer = Deliverer(session_factory=session_factory, sender=TelegramSender(bot),
                              limiter=RateLimiter(global_per_second=rate, pacer=ChatPacer(PacingSettings())),
                              clock=now, alerts_per_hour=0)
        wall, cpu = time.perf_counter(), time.process_time()
        await deliverer.drain_all(max_rounds=100_000)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        await bot.session.close()
        sent = len(fake.sent())
    await engine.dispose()
    ideal = chats / rate
    print(f"fan-out of one story to {chats} chats at {rate:g}/s: {wall:.1f} s "
          f"(baseline ideal {ideal:.1f} s; ratio {wall / ideal:.3f}, goal <= 1.05)")
    print(f"sustained rate: {sent / wall:.1f} msg/s = {100 * sent / wall / rate:.1f} % of {rate:g}/s (goal >= 95 %); "
          f"429 answers: {fake.too_many_requests}; sent {sent}")
    print(f"CPU per message (client and fake server in one process): {1000 * cpu / max(sent, 1):.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chats", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=30.0)
    args = parser.parse_args()
    asyncio.run(run(args.chats, args.rate))


if __name__ == "__main__":
    main()

"""A delivering process for the kill-and-restart test: drains the outbox to a (fake) Bot API until
nothing is left, one message in flight at a time. Prints "ready" once it starts sending.

    python -m tests.fakes.delivery_worker DATABASE_URL API_URL TOKEN [RATE] [LEASE_SECONDS]
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from bot.core.ratelimit import ChatPacer, PacingSettings, RateLimiter
from bot.db.engine import create_engine, create_session_factory
from bot.db.models import Delivery
from bot.services.delivery import Deliverer
from bot.telegram.client import make_bot
from bot.telegram.sender import TelegramSender


async def main(database_url: str, api_url: str, token: str, rate: float, lease: float) -> int:
    engine = create_engine(database_url)
    session_factory = create_session_factory(engine)
    bot = make_bot(token, api_url)
    limiter = RateLimiter(global_per_second=rate, pacer=ChatPacer(PacingSettings(private_per_second=rate)))
    deliverer = Deliverer(session_factory=session_factory, sender=TelegramSender(bot), limiter=limiter,
                          clock=lambda: datetime.now(UTC), lease=timedelta(seconds=lease), max_in_flight=1,
                          batch_size=50, alerts_per_hour=0)
    print("ready", flush=True)
    try:
        for _ in range(100_000):
            if await deliverer.drain_once() == 0:
                async with session_factory() as session:
                    left = (await session.execute(
                        select(func.count()).where(Delivery.status.in_(("pending", "sending")))
                    )).scalar_one()
                if left == 0:
                    return 0
                await asyncio.sleep(0.05)
    finally:
        await bot.session.close()
        await engine.dispose()
    return 1


if __name__ == "__main__":
    args = sys.argv[1:]
    sys.exit(asyncio.run(main(args[0], args[1], args[2], float(args[3]) if len(args) > 3 else 200.0,
                              float(args[4]) if len(args) > 4 else 1.0)))

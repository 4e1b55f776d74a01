"""The scheduled admin digest goes out once a day however many bot processes run its job (issue #8/#9):
the first process to claim the day's run in the database sends it, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.app import App
from bot.db.models import Broadcast, JobRun
from bot.services.admin import AdminServices
from bot.settings import Settings
from bot.telegram.routers.admin import send_scheduled_digest
from tests.fakes.telegram_api import FakeTelegram
from tests.test_admin_ops import NOW, seed_news

CHANNEL = -1001234


@pytest.fixture
async def fake():
    async with FakeTelegram() as server:
        server.add_chat(CHANNEL, "channel", title="Veille digest")
        yield server


async def _process(fake: FakeTelegram, database_url: str, tmp_path: Path, clock) -> tuple[App, AdminServices]:  # noqa: ANN001
    settings = Settings(bot_token=fake.token, telegram_api_url=fake.base_url, database_url=database_url,
                        sources_file=tmp_path / "none.toml", admin_ids=frozenset({1}),
                        admin_digest_schedule="08:00 Europe/Paris", admin_digest_chat=str(CHANNEL))
    app = App.build(settings)
    return app, AdminServices.build(settings, app.core.session_factory, clock=clock)


async def _broadcasts(app: App) -> int:
    async with app.core.session_factory() as session:
        return await session.scalar(select(func.count()).select_from(Broadcast))


async def test_three_processes_send_the_day_s_digest_once_and_the_next_day_again(
    fake: FakeTelegram, database_url: str, tmp_path: Path
) -> None:
    now = [NOW]
    processes = [await _process(fake, database_url, tmp_path, lambda: now[0]) for _ in range(3)]
    app = processes[0][0]
    try:
        await seed_news(app.core.session_factory)
        sent = await asyncio.gather(*(send_scheduled_digest(a.bot, services, owner=f"p{n}")
                                      for n, (a, services) in enumerate(processes)))
        assert sum(broadcast is not None for broadcast in sent) == 1, sent
        assert await _broadcasts(app) == 1

        # A process started later the same day (a restart) does not send it again.
        late, late_services = await _process(fake, database_url, tmp_path, lambda: now[0] + timedelta(hours=3))
        assert await send_scheduled_digest(late.bot, late_services, owner="late") is None
        await late.bot.session.close()
        await late.core.close()
        assert await _broadcasts(app) == 1

        now[0] = NOW + timedelta(hours=20)  # the next day in Paris
        sent = await asyncio.gather(*(send_scheduled_digest(a.bot, services, owner=f"p{n}")
                                      for n, (a, services) in enumerate(processes)))
        assert sum(broadcast is not None for broadcast in sent) == 1, sent
        assert await _broadcasts(app) == 2
        async with app.core.session_factory() as session:
            runs = (await session.scalars(select(JobRun.run_key).order_by(JobRun.run_key))).all()
        assert runs == ["2026-11-26", "2026-11-27"]
    finally:
        for a, _ in processes:
            await a.bot.session.close()
            await a.core.close()

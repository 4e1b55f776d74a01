"""Migrations: upgrade to head, downgrade to base, upgrade again; the models and the migrations agree."""

from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from bot.db.engine import create_engine
from bot.db.migrate import downgrade, upgrade
from bot.db.models import Base


async def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return set(await connection.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()


async def _diff(url: str) -> list:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda c: compare_metadata(MigrationContext.configure(c, opts={"compare_type": True}), Base.metadata)
            )
    finally:
        await engine.dispose()


async def test_upgrade_downgrade_upgrade_round_trip(database_url: str) -> None:
    expected = {t.name for t in Base.metadata.sorted_tables}
    assert expected <= await _tables(database_url)
    await asyncio.to_thread(downgrade, database_url, "base")
    assert not (expected & await _tables(database_url))
    await asyncio.to_thread(upgrade, database_url)
    assert expected <= await _tables(database_url)


async def test_models_and_migrations_agree(database_url: str) -> None:
    assert await _diff(database_url) == []

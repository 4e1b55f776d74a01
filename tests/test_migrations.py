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


async def test_db_commands_upgrade_and_downgrade_from_the_command_line(tmp_path) -> None:  # noqa: ANN001
    import os
    import sys

    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VEILLE_")}
    env.update(VEILLE_DATABASE_URL=url, VEILLE_CONFIG_FILE=str(tmp_path / "none.toml"))

    async def veille(*args: str) -> str:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "db", *args, env=env, cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), timeout=60)
        assert process.returncode == 0, err.decode()
        return out.decode()

    expected = {t.name for t in Base.metadata.sorted_tables}
    assert "upgraded to head" in await veille("upgrade")
    assert expected <= await _tables(url)
    assert "downgraded to base" in await veille("downgrade", "base")
    assert not (expected & await _tables(url))

"""Shared fixtures: a real, migrated database per test (SQLite by default, PostgreSQL when
`VEILLE_TEST_DATABASE_URL` is set), Redis when `VEILLE_TEST_REDIS_URL` is set.

SQLite: the schema is migrated once per session into a template file, copied for each test.
PostgreSQL: a database of its own is created for the session (never the one named in the URL, so a
developer's data is safe), migrated once, and every table is emptied between tests.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from bot.db.engine import create_engine, create_session_factory
from bot.db.migrate import upgrade
from bot.db.models import Base

DATA = Path(__file__).parent / "data"
TEST_DATABASE_URL = os.environ.get("VEILLE_TEST_DATABASE_URL", "").strip()
TEST_REDIS_URL = os.environ.get("VEILLE_TEST_REDIS_URL", "").strip()


def pytest_report_header(config: pytest.Config) -> str:
    backend = make_url(TEST_DATABASE_URL).render_as_string(hide_password=True) if TEST_DATABASE_URL else "SQLite"
    return f"veille test database: {backend}; redis: {TEST_REDIS_URL or 'not configured'}"


@pytest.fixture(autouse=True)
def _no_stray_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests never read the developer's .env or config/veille.toml, nor inherit VEILLE_* settings."""
    for key in list(os.environ):
        if key.startswith("VEILLE_") and not key.startswith("VEILLE_TEST_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("VEILLE_CONFIG_FILE", str(tmp_path / "no-such-veille.toml"))
    monkeypatch.chdir(tmp_path)


async def _create_postgres_database(base_url: str) -> str:
    import asyncpg

    url = make_url(base_url)
    name = f"veille_test_{uuid.uuid4().hex[:10]}"
    connection = await asyncpg.connect(
        host=url.host or "127.0.0.1", port=url.port or 5432, user=url.username or "postgres",
        password=url.password, database=url.database or "postgres",
    )
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return url.set(database=name).render_as_string(hide_password=False)


async def _drop_postgres_database(base_url: str, name: str) -> None:
    import asyncpg

    url = make_url(base_url)
    connection = await asyncpg.connect(
        host=url.host or "127.0.0.1", port=url.port or 5432, user=url.username or "postgres",
        password=url.password, database=url.database or "postgres",
    )
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def migrated_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database at the latest revision: a SQLite template file, or a PostgreSQL database."""
    if TEST_DATABASE_URL:
        url = asyncio.run(_create_postgres_database(TEST_DATABASE_URL))
        upgrade(url)
        yield url
        asyncio.run(_drop_postgres_database(TEST_DATABASE_URL, make_url(url).database))
    else:
        path = tmp_path_factory.mktemp("template") / "template.db"
        url = f"sqlite+aiosqlite:///{path}"
        upgrade(url)
        yield url


@pytest.fixture
async def database_url(migrated_database: str, tmp_path: Path) -> AsyncIterator[str]:
    """A migrated, empty database for one test."""
    if migrated_database.startswith("sqlite"):
        template = Path(make_url(migrated_database).database)
        target = tmp_path / "veille.db"
        shutil.copyfile(template, target)
        yield f"sqlite+aiosqlite:///{target}"
        return
    engine = create_engine(migrated_database)
    tables = ", ".join(f'"{t.name}"' for t in reversed(Base.metadata.sorted_tables))
    async with engine.begin() as connection:
        await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    await engine.dispose()
    yield migrated_database


@pytest.fixture
async def session_factory(database_url: str):  # -> async_sessionmaker
    engine = create_engine(database_url)
    try:
        yield create_session_factory(engine)
    finally:
        await engine.dispose()


@pytest.fixture
def sample_text() -> str:
    return (DATA / "eureporter-fr-otan-azerbaidjan.txt").read_text(encoding="utf-8")


@pytest.fixture
def sample_page() -> bytes:
    return (DATA / "eureporter-fr-otan-azerbaidjan.html").read_bytes()


@pytest.fixture
def sample_feed() -> bytes:
    return (DATA / "eureporter-fr-feed.xml").read_bytes()

"""A database Veille cannot use is one clear line from `veille run`, not a traceback (issue #10).

Each case runs the real command line (`python -m bot run`) with its settings in the environment and
checks the exit status and the last line of stderr: what is wrong and what to do. The database check
comes before Telegram is contacted, so the Bot API URL points nowhere: a check that let a bad database
through would end on "cannot reach the Telegram Bot API" instead, and fail the test.

We run as root, so chmod stops no write: read-only cases use SQLite's `mode=ro` URI, or a read-only bind
mount (skipped where mounting is not permitted); the full disk is a small tmpfs filled with a ballast
file. These cases are about SQLite files and PostgreSQL addresses of their own, so they run the same
whatever `VEILLE_TEST_DATABASE_URL` says.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

import pytest

from bot.db.migrate import upgrade
from tests.fakes.fault_tools import can_mount, fill_disk, free_port, read_only_view, small_tmpfs, veille_env

EXIT_CONFIG = 2


def sqlite_url(path: Path, query: str = "") -> str:
    return f"sqlite+aiosqlite:///{path}" if not query else f"sqlite+aiosqlite:///file:{path}?{query}&uri=true"


async def veille(tmp_path: Path, database_url: str, *command: str) -> tuple[int, str]:
    """Runs `python -m bot COMMAND` (default `run`); returns its exit status and stderr."""
    env = veille_env(
        bot_token="123456:unused-token", telegram_api_url=f"http://127.0.0.1:{free_port()}",
        database_url=database_url, sources_file=tmp_path / "no-sources.toml", config_file=tmp_path / "none.toml",
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *(command or ("run",)), cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, err = await asyncio.wait_for(process.communicate(), timeout=120)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, err.decode(errors="replace")


def assert_one_clear_line(code: int, stderr: str, expected_code: int, *expected: str) -> str:
    assert "Traceback" not in stderr, stderr[-3000:]
    last = stderr.strip().splitlines()[-1]
    assert code == expected_code, stderr[-1500:]
    for words in expected:
        assert words in last, f"{words!r} not in the last line: {last!r}"
    return last


async def migrated_file(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    await asyncio.to_thread(upgrade, sqlite_url(path))  # Alembic runs its own event loop
    return path


async def test_a_database_opened_read_only_is_refused_with_what_to_do(tmp_path: Path) -> None:
    database = await migrated_file(tmp_path / "data" / "veille.db")
    code, stderr = await veille(tmp_path, sqlite_url(database, "mode=ro"))
    assert_one_clear_line(code, stderr, 1, f"Database {database} cannot be written", "mode=ro",
                          "needs write access to the file and its directory", "VEILLE_DATABASE_URL")


@pytest.mark.skipif(not can_mount(), reason="a read-only bind mount needs root and mount")
async def test_a_database_on_a_read_only_mount_is_refused_with_what_to_do(tmp_path: Path) -> None:
    await migrated_file(tmp_path / "data" / "veille.db")
    with read_only_view(tmp_path / "data", tmp_path / "ro") as mounted:
        code, stderr = await veille(tmp_path, sqlite_url(mounted / "veille.db"))
    assert_one_clear_line(code, stderr, 1, f"Database {mounted / 'veille.db'} cannot be written",
                          "(read-only file system)", "for the -wal and -shm files",
                          "Check the mount and permissions, or set VEILLE_DATABASE_URL")


async def test_a_missing_database_directory_is_named_and_not_created(tmp_path: Path) -> None:
    directory = tmp_path / "volume" / "data"
    code, stderr = await veille(tmp_path, sqlite_url(directory / "veille.db"))
    assert_one_clear_line(code, stderr, EXIT_CONFIG, f"Database directory {directory} does not exist",
                          f"mkdir -p {directory}", "VEILLE_DATABASE_URL")
    assert not (tmp_path / "volume").exists(), "Veille created the missing directory"


async def test_a_database_path_under_a_file_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a directory", encoding="utf-8")
    code, stderr = await veille(tmp_path, sqlite_url(tmp_path / "notes.txt" / "veille.db"))
    assert_one_clear_line(code, stderr, EXIT_CONFIG, f"{tmp_path / 'notes.txt'} is a file, not a directory")


async def test_the_schema_commands_say_the_same(tmp_path: Path) -> None:
    directory = tmp_path / "missing"
    code, stderr = await veille(tmp_path, sqlite_url(directory / "veille.db"), "db", "upgrade")
    assert_one_clear_line(code, stderr, EXIT_CONFIG, f"Database directory {directory} does not exist")


@pytest.mark.skipif(not can_mount(), reason="mounting a small tmpfs needs root")
async def test_a_full_disk_at_start_is_refused_with_what_to_do(tmp_path: Path) -> None:
    template = await migrated_file(tmp_path / "template" / "veille.db")
    with small_tmpfs(tmp_path / "disk", 2 * 1024) as mount:
        shutil.copyfile(template, mount / "veille.db")
        fill_disk(mount)
        code, stderr = await veille(tmp_path, sqlite_url(mount / "veille.db"))
    assert_one_clear_line(code, stderr, 1, f"Database {mount / 'veille.db'} cannot be written",
                          "the disk is full", "Free some space")


async def test_an_unreachable_postgresql_is_one_line_naming_host_and_port(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    code, stderr = await veille(tmp_path, f"postgresql+asyncpg://veille:secret@127.0.0.1:{port}/veille")
    last = assert_one_clear_line(code, stderr, 1, f"Cannot reach PostgreSQL at 127.0.0.1:{port}",
                                 "connection refused", "check that the server is running")
    assert "secret" not in stderr and "secret" not in last

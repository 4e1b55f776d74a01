"""Engine and session factory. Built by the composition root from settings, never at import time.

Database faults (issue #10) are translated here, at the edge that knows the drivers:
- `database_fault(exc)` names what an exception says about the database itself — read-only, full,
  cannot be opened, unreachable, refused our login, has no such database — or None for anything else
  (a bug, a constraint, a lock timeout). The composition root uses it to log a broken database once
  per streak instead of a traceback per tick.
- `explain_database_error(url, exc)` turns such a fault into one sentence that says what is wrong and
  what to do, looking at the SQLite file's directory when SQLite's own words are vague ("unable to open
  database file" means a missing directory, a read-only mount and a full disk alike).
- `check_database_path(url)` refuses a SQLite path whose directory is missing before SQLite tries it;
  `check_writable(engine)` commits one no-op write at start, so a database that opens and reads but
  cannot be written is refused before Veille starts, not found out at the first poll.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from bot.errors import ConfigError, VeilleError


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    if url.startswith("sqlite"):
        # One writer at a time on SQLite: wait for the lock (another process or a long write) rather
        # than failing at once; WAL lets readers go on while a writer works.
        engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            if ":memory:" not in url:
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 10)
    return create_async_engine(url, **kwargs)


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


# --- faults -------------------------------------------------------------------------------------

FaultKind = Literal["read-only", "full", "cannot-open", "unreachable", "login-refused", "no-database"]

# Faults that only a successful write proves over (reads may work meanwhile).
WRITE_FAULTS: frozenset[str] = frozenset({"read-only", "full", "cannot-open"})

# Below this much free space on the SQLite file's file system, a failed write is blamed on a full disk:
# SQLite then fails with whatever step ran out first ("disk I/O error" while sizing its -shm index,
# "unable to open database file", "database or disk is full").
FULL_DISK_BYTES = 1024 * 1024


@dataclass(frozen=True)
class DatabaseFault:
    kind: FaultKind
    detail: str  # the driver's own words, for the log


def _sqlite_kind(error: sqlite3.Error) -> FaultKind | None:
    name = getattr(error, "sqlite_errorname", "") or ""
    if name.startswith(("SQLITE_READONLY", "SQLITE_PERM")):
        return "read-only"
    if name.startswith("SQLITE_FULL"):
        return "full"
    if name.startswith(("SQLITE_CANTOPEN", "SQLITE_IOERR")):
        return "cannot-open"
    return None


def _sqlstate_kind(sqlstate: str) -> FaultKind | None:
    # https://www.postgresql.org/docs/current/errcodes-appendix.html
    if sqlstate == "25006":  # read_only_sql_transaction: a hot standby, or default_transaction_read_only
        return "read-only"
    if sqlstate == "53100":  # disk_full
        return "full"
    if sqlstate.startswith("08") or sqlstate in ("57P01", "57P02", "57P03"):  # connection lost, shut down
        return "unreachable"
    if sqlstate.startswith("28"):  # invalid_authorization_specification, invalid_password
        return "login-refused"
    if sqlstate == "3D000":  # invalid_catalog_name
        return "no-database"
    return None


def _raised_by_asyncpg(error: BaseException) -> bool:
    """asyncpg lets socket errors through unwrapped (connection refused, unknown host): they are the
    database's only when they come out of asyncpg, not from aiohttp or Redis in the same tick."""
    return any("asyncpg" in frame.f_code.co_filename for frame, _ in traceback.walk_tb(error.__traceback__))


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, the driver error SQLAlchemy wrapped (`orig`), and their explicit causes. Not `__context__`:
    a bug raised while handling a database error is a bug, and must stay loud."""
    seen: set[int] = set()
    current: BaseException | None = exc
    for _ in range(10):  # bounded: a cause chain is a few links long
        if current is None or id(current) in seen:
            return
        seen.add(id(current))
        yield current
        current = getattr(current, "orig", None) or current.__cause__


def database_fault(exc: BaseException) -> DatabaseFault | None:
    """What `exc` says about the database itself, or None when it is about something else."""
    for error in _chain(exc):
        detail = str(error).split("\n")[0][:300]
        if isinstance(error, sqlite3.Error):
            kind = _sqlite_kind(error)
            if kind is not None:
                return DatabaseFault(kind, detail)
        sqlstate = getattr(error, "sqlstate", None)
        if isinstance(sqlstate, str) and (kind := _sqlstate_kind(sqlstate)) is not None:
            return DatabaseFault(kind, detail)
        if isinstance(error, DBAPIError) and error.connection_invalidated:
            return DatabaseFault("unreachable", detail)
        if isinstance(error, ConnectionError | socket.gaierror | TimeoutError) or (
            isinstance(error, OSError) and "Connect call failed" in str(error)
        ):
            if _raised_by_asyncpg(error):
                return DatabaseFault("unreachable", _network_words(error))
    return None


def _network_words(error: BaseException) -> str:
    if isinstance(error, ConnectionRefusedError) or "Connect call failed" in str(error):
        return "connection refused"
    if isinstance(error, socket.gaierror):
        return f"host name not resolved: {error.strerror or error}"
    if isinstance(error, TimeoutError):
        return "timed out"
    return str(error).split("\n")[0][:300] or type(error).__name__


# --- one sentence at start ----------------------------------------------------------------------


def sqlite_path(url: str) -> Path | None:
    """The file a SQLite URL names (`file:` URIs included), or None for an in-memory database."""
    parsed = make_url(url)
    database = parsed.database or ""
    if database.startswith("file:"):
        database = database.removeprefix("file:").split("?")[0]
    if not database or database == ":memory:" or parsed.query.get("mode") == "memory":
        return None
    return Path(database).absolute()


def _free_bytes(directory: Path) -> int | None:
    try:
        stats = os.statvfs(directory)
    except OSError:
        return None
    # root may use the blocks reserved for it; others only the available ones.
    blocks = stats.f_bfree if os.geteuid() == 0 else stats.f_bavail
    return blocks * stats.f_frsize


def _read_only_reason(path: Path, url: str) -> str | None:
    directory = path.parent
    try:
        if os.statvfs(directory).f_flag & os.ST_RDONLY:
            return "read-only file system"
    except OSError:
        return None
    if not os.access(directory, os.W_OK):
        return "directory not writable"
    if path.exists() and not os.access(path, os.W_OK):
        return "read-only file"
    if make_url(url).query.get("mode") == "ro":
        return "opened with mode=ro in VEILLE_DATABASE_URL"
    return None


def diagnose(url: str, fault: DatabaseFault) -> DatabaseFault:
    """For SQLite, what the file's directory says beyond SQLite's words: "unable to open database file"
    or "disk I/O error" on a read-only mount is `read-only`, on a full disk `full`."""
    path = sqlite_path(url) if url.startswith("sqlite") else None
    if path is None or fault.kind not in WRITE_FAULTS or not path.parent.is_dir():
        return fault
    reason = _read_only_reason(path, url)
    if reason is not None:
        return DatabaseFault("read-only", reason)
    free = _free_bytes(path.parent)
    if fault.kind == "full" or (free is not None and free < FULL_DISK_BYTES):
        return DatabaseFault("full", f"{free // 1024} KB free on {path.parent}" if free is not None else fault.detail)
    if fault.kind == "read-only":
        return DatabaseFault("read-only", f"SQLite: {fault.detail}")
    return fault


def _path_problem(path: Path) -> ConfigError | None:
    directory = path.parent
    if not directory.exists():
        # Not created for you: a missing directory is most often a volume that was not mounted, and a
        # database created in its place would be lost with the container.
        return ConfigError(
            f"Database directory {directory} does not exist: create it (mkdir -p {directory}) or set "
            "VEILLE_DATABASE_URL. Veille does not create it, so that a volume that was not mounted is noticed."
        )
    if not directory.is_dir():
        return ConfigError(f"Database path {path} is not usable: {directory} is a file, not a directory. "
                           "Set VEILLE_DATABASE_URL to a file in a directory.")
    if path.is_dir():
        return ConfigError(f"Database path {path} is a directory, not a file. "
                           "Set VEILLE_DATABASE_URL to a file name, e.g. sqlite+aiosqlite:///data/veille.db.")
    return None


def check_database_path(url: str) -> None:
    """Before the first connection: a SQLite file whose directory is missing or is not a directory is
    a `ConfigError` naming it (SQLite would only say "unable to open database file")."""
    path = sqlite_path(url) if url.startswith("sqlite") else None
    if path is not None and (problem := _path_problem(path)) is not None:
        raise problem


def _explain_sqlite(url: str, fault: DatabaseFault) -> VeilleError:
    path = sqlite_path(url)
    if path is None:
        return VeilleError(f"the in-memory database failed: {fault.detail}")
    if (problem := _path_problem(path)) is not None:
        return problem
    fault = diagnose(url, fault)
    if fault.kind == "read-only":
        return VeilleError(
            f"Database {path} cannot be written ({fault.detail}): Veille needs write access to the file and its "
            "directory (for the -wal and -shm files). Check the mount and permissions, or set VEILLE_DATABASE_URL."
        )
    if fault.kind == "full":
        return VeilleError(f"Database {path} cannot be written: the disk is full ({fault.detail}). Free some "
                           "space: Veille needs room for the database and its -wal file.")
    return VeilleError(
        f"Database {path} cannot be opened (SQLite: {fault.detail}). Check that the file is a Veille database "
        "and that the path, the mount and permissions are right, or set VEILLE_DATABASE_URL."
    )


def _explain_postgres(url: str, fault: DatabaseFault) -> VeilleError:
    parsed = make_url(url)
    where = f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
    if fault.kind == "unreachable":
        return VeilleError(
            f"Cannot reach PostgreSQL at {where} ({fault.detail}): check that the server is running and "
            "accepts connections from this host (address, port, firewall, listen_addresses), or set "
            "VEILLE_DATABASE_URL."
        )
    if fault.kind == "login-refused":
        return ConfigError(f"PostgreSQL at {where} refused user {parsed.username!r} ({fault.detail}): "
                           "check the user and password in VEILLE_DATABASE_URL, and pg_hba.conf.")
    if fault.kind == "no-database":
        return ConfigError(f"PostgreSQL at {where} has no database {parsed.database!r}: create it "
                           f"(createdb {parsed.database}) or fix VEILLE_DATABASE_URL.")
    if fault.kind == "read-only":
        return VeilleError(f"PostgreSQL at {where} is read-only ({fault.detail}): a standby? Point "
                           "VEILLE_DATABASE_URL at the primary.")
    return VeilleError(f"PostgreSQL at {where} cannot be written ({fault.detail}): free disk space on the "
                       "server.")


def explain_database_error(url: str, exc: BaseException) -> VeilleError | None:
    """One sentence for a database that cannot be used at all, or None when `exc` is something else."""
    fault = database_fault(exc)
    if fault is None:
        return None
    if url.startswith("sqlite"):
        return _explain_sqlite(url, fault)
    return _explain_postgres(url, fault)


@contextlib.contextmanager
def database_errors_explained(url: str) -> Iterator[None]:
    """Re-raises a database fault as one clear `VeilleError` (or `ConfigError`); anything else as is."""
    try:
        yield
    except VeilleError:
        raise
    except Exception as exc:
        explained = explain_database_error(url, exc)
        if explained is None:
            raise
        raise explained from exc


async def check_writable(engine: AsyncEngine) -> None:
    """Commits a write that changes nothing, so a database that opens and reads but refuses writes
    (a read-only file SQLite fell back to, mode=ro, a PostgreSQL standby) is refused at start."""
    async with engine.begin() as connection:
        await connection.execute(text("UPDATE alembic_version SET version_num = version_num"))

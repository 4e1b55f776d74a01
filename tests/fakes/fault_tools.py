"""Fault injection for the reliability tests (issue #10): a private PostgreSQL server to restart, a SQLite
file held locked by another process, a small tmpfs to fill, Veille as a real process to SIGKILL, and a
figures file the benchmark (`bench/reliability.py`) reads back.

Nothing here touches shared infrastructure: the PostgreSQL server is a fresh `initdb` in a temporary
directory on a free port, run as the `postgres` OS user (we are root in CI); the tmpfs is mounted under
the test's own temporary directory and unmounted after.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

FIGURES_ENV = "VEILLE_TEST_FIGURES"


# ---------------------------------------------------------------- figures and knobs


def env_int(name: str, default: int) -> int:
    """A test's size knob: the short CI value unless `name` is set (bench/reliability.py sets it)."""
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name, "").strip()
    return float(value) if value else default


def record_figure(test: str, **figures: object) -> None:
    """Appends one JSON line to the file named by `VEILLE_TEST_FIGURES` (no-op when unset)."""
    path = os.environ.get(FIGURES_ENV, "").strip()
    if not path:
        return
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps({"test": test, **figures}, ensure_ascii=False, default=str) + "\n")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# ---------------------------------------------------------------- a private PostgreSQL server


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


class PrivatePostgres:
    """`initdb` + `pg_ctl` in a temporary directory on a free port; restart it as often as a test needs."""

    def __init__(self) -> None:
        self.bin = postgres_bin()
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="veille-pg-"))
        self.data = self.dir / "data"

    @staticmethod
    def unavailable_reason() -> str | None:
        """Why a private server cannot run here, or None when it can."""
        if postgres_bin() is None:
            return "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin"
        if os.geteuid() != 0:
            return "starting a private PostgreSQL server needs root (to run it as the postgres user)"
        if shutil.which("runuser") is None:
            return "runuser is not installed"
        try:
            subprocess.run(["id", "postgres"], check=True, capture_output=True)
        except (subprocess.CalledProcessError, FileNotFoundError):
            return "there is no postgres OS user"
        return None

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["runuser", "-u", "postgres", "--", *args], check=True, capture_output=True,
                              text=True, timeout=timeout)

    def init(self) -> PrivatePostgres:
        assert self.bin is not None
        shutil.chown(self.dir, "postgres")
        self._as_postgres(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                          "--no-sync")
        return self

    def start(self) -> None:
        assert self.bin is not None
        options = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off")
        self._as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-l",
                          str(self.dir / "server.log"), "-w", "-t", "30", "start")

    def stop(self, mode: str = "fast") -> None:
        """`fast` drops every connection (what a restart does to clients); `immediate` is a crash."""
        assert self.bin is not None
        with contextlib.suppress(subprocess.CalledProcessError):
            self._as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "30",
                              "stop")

    def close(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> PrivatePostgres:
        self.init()
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------- SQLite held by another process

_LOCK_SCRIPT = """
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
connection.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
connection.execute("ROLLBACK")
connection.close()
print("released", flush=True)
"""


async def hold_sqlite_lock(path: Path, seconds: float) -> asyncio.subprocess.Process:
    """Another process takes an exclusive lock on the SQLite file for `seconds`; returns once it holds it."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _LOCK_SCRIPT, str(path), str(seconds), stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 30)
    assert line.strip() == b"locked", line
    return process


# ---------------------------------------------------------------- a small disk


def can_mount() -> bool:
    return os.geteuid() == 0 and shutil.which("mount") is not None


@contextlib.contextmanager
def small_tmpfs(where: Path, size_kb: int) -> Iterator[Path]:
    """A tmpfs of `size_kb` mounted at `where` (root only); unmounted (lazily if busy) on exit."""
    where.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k,mode=0777", "tmpfs", str(where)],
                   check=True, capture_output=True)
    try:
        yield where
    finally:
        result = subprocess.run(["umount", str(where)], capture_output=True)
        if result.returncode != 0:
            subprocess.run(["umount", "-l", str(where)], capture_output=True)


def remount(where: Path, *options: str) -> None:
    """`remount(path, "ro")` / `remount(path, "rw", "size=4096k")` on a tmpfs from `small_tmpfs`."""
    subprocess.run(["mount", "-o", ",".join(("remount", *options)), str(where)], check=True, capture_output=True)


def fill_disk(where: Path) -> Path:
    """Writes a file until the filesystem is full; returns it (delete it to free the space)."""
    ballast = where / "ballast.bin"
    descriptor = os.open(ballast, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for size in (1 << 20, 65536, 4096, 512, 1):  # big writes first, then fill the last corner
            for _ in range(1_000_000):  # bounded: far beyond any test tmpfs
                try:
                    os.write(descriptor, b"\0" * size)
                except OSError:
                    break
    finally:
        os.close(descriptor)
    return ballast


# ---------------------------------------------------------------- Veille as a real process


def veille_env(base: dict[str, str] | None = None, **settings: object) -> dict[str, str]:
    """The environment of a `python -m bot run` child: this one minus VEILLE_* plus `settings`."""
    env = {k: v for k, v in (base or os.environ).items() if not k.startswith("VEILLE_")}
    for key, value in settings.items():
        env["VEILLE_" + key.upper()] = str(value).lower() if isinstance(value, bool) else str(value)
    return env


class VeilleProcess:
    """`python -m bot run` whose stderr is collected line by line (for `wait_for_log`)."""

    def __init__(self, cwd: Path, env: dict[str, str], role: str = "all") -> None:
        self.cwd = cwd
        self.env = env
        self.role = role
        self.process: asyncio.subprocess.Process | None = None
        self.lines: list[str] = []
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> VeilleProcess:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", "--role", self.role, cwd=self.cwd, env=self.env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )
        self._reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        assert self.process is not None and self.process.stderr is not None
        while line := await self.process.stderr.readline():
            self.lines.append(line.decode(errors="replace"))

    @property
    def log(self) -> str:
        return "".join(self.lines)

    async def wait_for_log(self, needle: str, timeout: float = 60) -> None:  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        while not any(needle in line for line in self.lines):
            if self.process is not None and self.process.returncode is not None:
                raise AssertionError(f"process exited ({self.process.returncode}) before {needle!r}:\n"
                                     + "".join(self.lines[-30:]))
            if time.monotonic() > deadline:
                raise TimeoutError(f"{needle!r} never logged; last lines:\n" + "".join(self.lines[-30:]))
            await asyncio.sleep(0.02)

    async def kill(self) -> None:
        """SIGKILL: no handler runs, nothing is flushed."""
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        if self._reader is not None:
            await asyncio.wait([self._reader], timeout=5)

    async def terminate(self, timeout: float = 15) -> int:  # noqa: ASYNC109
        assert self.process is not None
        if self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), timeout)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        if self._reader is not None:
            await asyncio.wait([self._reader], timeout=5)
        return self.process.returncode or 0


# ---------------------------------------------------------------- a zygote: fork Veille without re-importing it
#
# Importing aiogram costs seconds of CPU (pydantic builds every Bot API type); fifty kill-and-restart cycles
# would spend most of their time there. The zygote imports Veille once, then forks one child per request:
# each child is a real, separate `veille run` process (its own PID, event loop, connections) that a test can
# SIGKILL, and that starts in a fraction of a second.

_ZYGOTE = r"""
import json, os, signal, sys, traceback
import bot.cli, bot.app, bot.db.migrate, alembic.command
import bot.services.admin, bot.services.digests, bot.telegram.client, bot.telegram.dispatcher
import bot.telegram.keyboards, bot.telegram.routers.delivery_buttons, bot.telegram.sender, bot.web
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel; kill(pid, 0) then fails
print("ready", flush=True)
for line in sys.stdin:
    request = json.loads(line)
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setsid()
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0); os.dup2(null, 1); os.dup2(log, 2)
        sys.stdin = open(os.devnull)
        os.chdir(request["cwd"])
        os.environ.clear(); os.environ.update(request["env"])
        code = 1
        try:
            code = bot.cli.main(request["argv"])
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else 1
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stderr.flush()
            os._exit(code or 0)
    print(pid, flush=True)
"""


class Zygote:
    """A process that has imported Veille and forks `veille run` children on request."""

    def __init__(self) -> None:
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, timeout: float = 180) -> Zygote:  # noqa: ASYNC109
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _ZYGOTE, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            env=veille_env(),
        )
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), timeout)
        assert line.strip() == b"ready", line
        return self

    async def fork(self, *, cwd: Path, env: dict[str, str], log: Path, argv: list[str]) -> int:
        assert self.process is not None and self.process.stdin is not None and self.process.stdout is not None
        request = {"cwd": str(cwd), "env": env, "log": str(log), "argv": argv}
        self.process.stdin.write((json.dumps(request) + "\n").encode())
        await self.process.stdin.drain()
        return int(await asyncio.wait_for(self.process.stdout.readline(), 30))

    async def close(self) -> None:
        if self.process is not None and self.process.returncode is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class ForkedVeille:
    """One `veille run` child of a `Zygote`; its stderr goes to a file the test reads."""

    def __init__(self, zygote: Zygote, cwd: Path, env: dict[str, str], log: Path, role: str = "all") -> None:
        self.zygote, self.cwd, self.env, self.log_path, self.role = zygote, cwd, env, log, role
        self.pid: int | None = None
        self._offset = log.stat().st_size if log.exists() else 0

    async def start(self) -> ForkedVeille:
        self.pid = await self.zygote.fork(cwd=self.cwd, env=self.env, log=self.log_path,
                                          argv=["run", "--role", self.role])
        return self

    @property
    def log(self) -> str:
        """What this child logged (the file may hold earlier children's lines before it)."""
        if not self.log_path.exists():
            return ""
        with open(self.log_path, encoding="utf-8", errors="replace") as source:
            source.seek(self._offset)
            return source.read()

    @property
    def alive(self) -> bool:
        return self.pid is not None and pid_alive(self.pid)

    async def wait_for_log(self, needle: str, timeout: float = 60) -> None:  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        while needle not in self.log:
            if not self.alive:
                raise AssertionError(f"veille exited before logging {needle!r}:\n{self.log[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{needle!r} never logged:\n{self.log[-3000:]}")
            await asyncio.sleep(0.02)

    async def _gone(self, timeout: float) -> bool:  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        while self.alive:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    async def kill(self) -> None:
        """SIGKILL: no handler runs, nothing is flushed, no transaction is finished."""
        if self.alive:
            assert self.pid is not None
            os.kill(self.pid, 9)
            assert await self._gone(10), "the process survived SIGKILL"

    async def terminate(self, timeout: float = 15) -> bool:  # noqa: ASYNC109
        """SIGTERM; True when it exited by itself within `timeout` (else it is killed)."""
        if not self.alive:
            return True
        assert self.pid is not None
        os.kill(self.pid, 15)
        if await self._gone(timeout):
            return True
        await self.kill()
        return False


@contextlib.contextmanager
def read_only_view(source: Path, where: Path) -> Iterator[Path]:
    """`source` bind-mounted read-only at `where` (root only): the same files, every write refused (EROFS)."""
    where.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "--bind", str(source), str(where)], check=True, capture_output=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(where)], check=True, capture_output=True)
        yield where
    finally:
        result = subprocess.run(["umount", str(where)], capture_output=True)
        if result.returncode != 0:
            subprocess.run(["umount", "-l", str(where)], capture_output=True)

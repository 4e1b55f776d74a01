"""Database faults (issue #10): PostgreSQL restarted mid-run, the SQLite file locked by another process,
the disk full, the database read-only. The real App runs in-process against the fake Bot API and a feed
server, with its ops HTTP server (`/readyz`) on.

- PostgreSQL: a private server (initdb + pg_ctl in a temporary directory, never the shared one) is
  stopped (every connection dropped) while news arrives, then started again: /readyz answers 503
  while it is down and 200 after; every alert published meanwhile arrives.
- SQLite: another process holds an exclusive lock for `VEILLE_TEST_LOCK_SECONDS` (CI 3, bench 10):
  nothing crashes, and the alert published meanwhile arrives after the lock is released.
- Disk full, then read-only: the SQLite file lives on a small tmpfs (we are root) that is filled with a
  ballast file while Veille runs: the error is logged once ("database is full"), and once the ballast
  is deleted the alerts arrive. Then Veille is started on the same file through a read-only bind mount
  (a live `remount,ro` of the tmpfs is refused while the file is open for writing): it refuses to start
  with one sentence ("cannot be written (read-only file system)"); restarted on the writable path, it
  resumes. Finally `PRAGMA integrity_check` answers ok.
- Read-only while running (SQLite and PostgreSQL): every connection the App checks out is switched
  read-only (`PRAGMA query_only` / `SET TRANSACTION READ ONLY`: the errors SQLite and PostgreSQL give
  for a read-only file or a standby) while news arrives: one "database is read-only" line for the whole
  streak, no traceback per tick; switched back, the alerts arrive and "database works again" is logged.
"""

from __future__ import annotations

import asyncio
import logging
import random
import shutil
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import event, func, select
from sqlalchemy.engine import make_url

from bot.app import App
from bot.db.models import Delivery
from bot.errors import VeilleError
from bot.settings import Settings
from tests.fakes.fault_tools import (
    PrivatePostgres,
    can_mount,
    env_float,
    env_int,
    fill_disk,
    free_port,
    hold_sqlite_lock,
    read_only_view,
    record_figure,
    small_tmpfs,
)
from tests.fakes.feed_server import FeedServer
from tests.fakes.telegram_api import FakeTelegram
from tests.test_reliability_kill import WORDS

CHAT = 9501


class Newsroom:
    """One feed whose items all carry the subscribed word and a token; `publish()` adds one."""

    def __init__(self, feeds: FeedServer) -> None:
        self.feeds = feeds
        self.items: list[dict] = []
        self.rng = random.Random(77)
        feeds.set_rss("/db.xml", [])

    def publish(self) -> str:
        number = len(self.items) + 1
        words = self.rng.sample(WORDS, 6)
        token = f"db{number:04d}x"
        self.items.append({"title": f"Zorglub {token} {' '.join(words[:3])}", "guid": token,
                           "link": f"https://news.example.org/db/{number}",
                           "description": f"Le {words[3]} et la {words[4]} face au {words[5]}.",
                           "pub_date": datetime.now(UTC)})
        self.feeds.set_rss("/db.xml", self.items[-30:])
        return token


async def start_app(tmp_path: Path, fake: FakeTelegram, feeds: FeedServer, database_url: str) -> App:
    sources = tmp_path / "sources.toml"
    sources.write_text(f'[[source]]\nname = "DB"\nurl = "{feeds.url("/db.xml")}"\nlanguage = "fr"\n',
                       encoding="utf-8")
    app = App.build(Settings(
        bot_token=fake.token, telegram_api_url=fake.base_url, database_url=database_url, sources_file=sources,
        poll_interval=1, poll_max_interval=2, poll_tick=0.2, delivery_tick=0.2, allow_private_networks=True,
        fetch_full_text=False, alerts_per_hour=0, http_port=free_port(), delivery_lease=5, poll_lease=5,
    ))
    await app.start()
    fake.push_message(CHAT, "/subscribe Zorglub", language_code="fr")
    await fake.wait_for_messages(1, chat_id=CHAT, timeout=30)
    await fake.wait_until(lambda: feeds.hits("/db.xml") >= 2, timeout=30, what="the first polls")
    return app


def arrived(fake: FakeTelegram, token: str) -> bool:
    return any(token in (m.text or "") for m in fake.sent(CHAT))


async def readiness(app: App) -> int:
    async with aiohttp.ClientSession() as client, client.get(
        f"http://127.0.0.1:{app.core.settings.http_port}/readyz", timeout=aiohttp.ClientTimeout(total=20)
    ) as answer:
        return answer.status


async def wait_ready(app: App, status: int, timeout: float = 60) -> float:  # noqa: ASYNC109
    started = time.monotonic()
    while await readiness(app) != status:
        assert time.monotonic() - started < timeout, f"/readyz never answered {status}"
        await asyncio.sleep(0.2)
    return time.monotonic() - started


# ---- PostgreSQL restarted mid-run --------------------------------------------------------------


async def test_postgresql_restart_mid_run_loses_nothing_and_readiness_follows(tmp_path: Path) -> None:
    reason = PrivatePostgres.unavailable_reason()
    if reason:
        pytest.skip(f"private PostgreSQL server: {reason}")
    restarts = env_int("VEILLE_TEST_PG_RESTARTS", 1)
    downtime = env_float("VEILLE_TEST_PG_DOWNTIME", 3)
    figures: list[dict] = []
    with PrivatePostgres() as pg:
        async with FakeTelegram() as fake, FeedServer() as feeds:
            news = Newsroom(feeds)
            app = await start_app(tmp_path, fake, feeds, pg.url)
            try:
                assert await readiness(app) == 200
                for _ in range(restarts):
                    before = news.publish()
                    await fake.wait_until(lambda t=before: arrived(fake, t), timeout=30, what="alert before")
                    await asyncio.to_thread(pg.stop, "fast")
                    not_ready_after = await wait_ready(app, 503)
                    during = [news.publish()]
                    await asyncio.sleep(downtime)
                    during.append(news.publish())
                    await asyncio.to_thread(pg.start)
                    ready_after = await wait_ready(app, 200)
                    started = time.monotonic()
                    await fake.wait_until(lambda d=during: all(arrived(fake, t) for t in d), timeout=60,
                                          what="the alerts published while PostgreSQL was down")
                    figures.append({"not_ready_within_s": round(not_ready_after, 1),
                                    "ready_again_within_s": round(ready_after, 1),
                                    "alerts_after_restart_s": round(time.monotonic() - started, 1)})
            finally:
                await app.stop()
    tokens = [item["guid"] for item in news.items]
    counts = {t: sum(t in (m.text or "") for m in fake.sent(CHAT)) for t in tokens}
    assert all(n >= 1 for n in counts.values()), counts
    record_figure("postgres_restart", restarts=restarts, downtime_s=downtime, alerts=len(tokens),
                  delivered=sum(n >= 1 for n in counts.values()), duplicates=sum(n - 1 for n in counts.values()),
                  per_restart=figures)


# ---- SQLite locked by another process ----------------------------------------------------------


async def test_sqlite_file_locked_by_another_process_delays_but_loses_nothing(
    tmp_path: Path, database_url: str
) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("the SQLite lock test needs the SQLite test database")
    seconds = env_float("VEILLE_TEST_LOCK_SECONDS", 3)
    async with FakeTelegram() as fake, FeedServer() as feeds:
        news = Newsroom(feeds)
        app = await start_app(tmp_path, fake, feeds, database_url)
        try:
            locker = await hold_sqlite_lock(Path(make_url(database_url).database), seconds)
            locked_at = time.monotonic()
            token = news.publish()
            ready_during = await readiness(app)
            await asyncio.wait_for(locker.wait(), seconds + 30)
            released_at = time.monotonic()
            await fake.wait_until(lambda: arrived(fake, token), timeout=60, what="the alert after the lock")
            delivered_after = time.monotonic() - released_at
            assert await readiness(app) == 200
        finally:
            await app.stop()
    record_figure("sqlite_lock", lock_seconds=seconds, lock_held_s=round(released_at - locked_at, 1),
                  readyz_during_lock=ready_during, alert_after_release_s=round(delivered_after, 1))


# ---- disk full, then read-only -----------------------------------------------------------------


@pytest.mark.skipif(not can_mount(), reason="mounting a small tmpfs needs root")
async def test_disk_full_and_read_only_database_fail_clearly_and_recover_without_corruption(
    tmp_path: Path, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("the disk tests put a SQLite file on a small tmpfs")
    disk = tmp_path / "disk"
    with small_tmpfs(disk, 8 * 1024) as mount:
        shutil.copyfile(make_url(database_url).database, mount / "veille.db")
        url = f"sqlite+aiosqlite:///{mount / 'veille.db'}"
        async with FakeTelegram() as fake, FeedServer() as feeds:
            news = Newsroom(feeds)
            app = await start_app(tmp_path, fake, feeds, url)
            try:
                # Disk full.
                ballast = fill_disk(mount)
                full = [news.publish() for _ in range(3)]
                await fake.wait_until(lambda: "full" in caplog.text, timeout=30, what="a disk-full error")
                ballast.unlink()
                await fake.wait_until(lambda: all(arrived(fake, t) for t in full), timeout=60,
                                      what="the alerts once space returned")
            finally:
                await app.stop()
            # Read-only: the same file through a read-only bind mount (a live tmpfs remount is refused
            # while the file is open for writing). Veille must refuse to start with a clear error.
            with read_only_view(mount, tmp_path / "ro") as view:
                ro_app = App.build(Settings(
                    bot_token=fake.token, telegram_api_url=fake.base_url,
                    database_url=f"sqlite+aiosqlite:///{view / 'veille.db'}", sources_file=tmp_path / "sources.toml",
                    allow_private_networks=True))
                with pytest.raises(VeilleError) as refused:
                    await ro_app.start()
                await ro_app.stop()
            read_only_error = str(refused.value)
            # SQLite in WAL mode cannot even open a file it may not write (its -shm index): SQLite says
            # "unable to open database file"; Veille looks at the mount and says what is wrong.
            assert f"Database {view / 'veille.db'} cannot be written (read-only file system)" in read_only_error
            # Back on the writable path: everything resumes.
            app = await start_app(tmp_path, fake, feeds, url)
            try:
                read_only = [news.publish() for _ in range(2)]
                await fake.wait_until(lambda: all(arrived(fake, t) for t in read_only), timeout=60,
                                      what="the alerts once the database was writable again")
            finally:
                await app.stop()
        check = sqlite3.connect(mount / "veille.db")
        try:
            integrity = check.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            check.close()
    assert integrity == "ok"
    errors = [r.getMessage() for r in caplog.records if r.levelname in ("ERROR", "WARNING")]
    record_figure("disk", tmpfs_kb=8 * 1024, alerts_after_disk_full=len(full), alerts_after_read_only=len(read_only),
                  integrity=integrity, error_lines=len(errors), read_only_error=read_only_error[:200],
                  disk_full_log=next((e for e in errors if "full" in e), "")[:200])


# ---- read-only while running ------------------------------------------------------------------


async def wait_outbox_settled(app: App, timeout: float = 30) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while True:
        async with app.core.session_factory() as session:
            unsettled = await session.scalar(select(func.count()).select_from(Delivery).where(
                Delivery.status.in_(("pending", "sending"))))
        if not unsettled:
            return
        assert time.monotonic() < deadline, f"{unsettled} outbox rows never settled"
        await asyncio.sleep(0.05)


class ReadOnlySwitch:
    """Makes every connection the App checks out read-only while `on`: SQLite answers "attempt to
    write a readonly database" (as for a read-only file), PostgreSQL "cannot execute UPDATE in a
    read-only transaction" (as a standby does). Reads keep working, as on a read-only mount."""

    def __init__(self, app: App) -> None:
        self.on = False
        self.sqlite = app.core.settings.is_sqlite
        event.listen(app.core.engine.sync_engine, "checkout", self._checkout)

    def _checkout(self, dbapi_connection, _record, _proxy) -> None:  # noqa: ANN001
        cursor = dbapi_connection.cursor()
        try:
            if self.sqlite:
                cursor.execute(f"PRAGMA query_only={'ON' if self.on else 'OFF'}")
            elif self.on:  # the first statement of the transaction the driver begins
                cursor.execute("SET TRANSACTION READ ONLY")
        finally:
            cursor.close()


async def test_a_database_turning_read_only_while_running_is_one_line_and_veille_resumes(
    tmp_path: Path, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="veille")
    failed_ticks = env_int("VEILLE_TEST_READ_ONLY_TICKS", 10)
    async with FakeTelegram() as fake, FeedServer() as feeds:
        news = Newsroom(feeds)
        app = await start_app(tmp_path, fake, feeds, database_url)
        switch = ReadOnlySwitch(app)
        try:
            before = news.publish()
            await fake.wait_until(lambda: arrived(fake, before), timeout=30, what="the alert before")
            # Its "sent" is committed just after Telegram answered: switch once it is, so that the only
            # writes refused are the ticks' (a send caught mid-way is the delivery owner's traceback).
            await wait_outbox_settled(app)
            switch.on = True
            first_record = len(caplog.records)
            during = [news.publish(), news.publish()]
            await fake.wait_until(lambda: app.database_watch.failures >= failed_ticks, timeout=60,
                                  what=f"{failed_ticks} ticks failing on the read-only database")
            streak = [r for r in caplog.records[first_record:] if r.name == "veille"]
            switch.on = False
            await fake.wait_until(lambda: all(arrived(fake, t) for t in during), timeout=60,
                                  what="the alerts published while the database was read-only")
            await fake.wait_until(lambda: app.database_watch.fault is None, timeout=30,
                                  what="the database watch seeing a write succeed")
        finally:
            await app.stop()
    said = [r for r in streak if "database is read-only" in r.getMessage()]
    assert len(said) == 1, [r.getMessage() for r in said]
    assert said[0].levelname == "ERROR" and said[0].exc_info is None
    tick_tracebacks = [r.getMessage() for r in streak if r.getMessage().endswith("tick failed")]
    assert tick_tracebacks == []
    recovered = [r for r in caplog.records if r.getMessage() == "database works again"]
    assert len(recovered) == 1
    record_figure("read_only_while_running", database="sqlite" if app.core.settings.is_sqlite else "postgresql",
                  failed_ticks=recovered[0].__dict__.get("failed_ticks"), lines_logged=len(said),
                  alerts_after=len(during), error=said[0].__dict__.get("error"))

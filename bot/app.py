"""The composition root: builds every component from settings and runs them together.

Nothing is built at import time; tests build an `App` with their own settings (a fake Bot API URL,
a temporary database, a fixed clock) and drive it through the same `start`/`stop` as `veille run`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.core.catalogue import SourceSpec, parse_catalogue
from bot.core.polling import PollPolicy
from bot.core.query import QueryLimits
from bot.core.ratelimit import ChatPacer, PacingSettings, RateLimiter
from bot.db import repo
from bot.db.engine import (
    WRITE_FAULTS,
    DatabaseFault,
    check_database_path,
    check_writable,
    create_engine,
    create_session_factory,
    database_errors_explained,
    database_fault,
    diagnose,
    sqlite_path,
)
from bot.db.migrate import upgrade
from bot.errors import ConfigError
from bot.fetcher.http import Fetcher, FetcherConfig
from bot.metrics import MeteredSender, Metrics, watch_event_loop
from bot.services.delivery import Deliverer
from bot.services.index_sync import IndexSync, SyncedMatcher
from bot.services.matcher import Matcher
from bot.services.poller import Poller, PollerConfig
from bot.services.subscriptions import SubscriptionService
from bot.settings import Settings

if TYPE_CHECKING:  # aiogram takes seconds to import: commands that never talk to Telegram skip it
    from aiogram import Bot, Dispatcher

log = logging.getLogger("veille")

Role = Literal["all", "bot", "poller", "sender"]
ROLES: tuple[str, ...] = ("all", "bot", "poller", "sender")
# A process of role X runs these parts; "all" is the single-process bot of the README's quick start.
ROLE_PARTS: dict[str, frozenset[str]] = {
    "all": frozenset({"bot", "poller", "sender"}),
    "bot": frozenset({"bot"}),
    "poller": frozenset({"poller"}),
    "sender": frozenset({"sender"}),
}


def role_parts(role: str) -> frozenset[str]:
    """`all`, one role, or several joined by commas (`poller,sender`); ConfigError otherwise."""
    names = [name.strip() for name in role.split(",") if name.strip()]
    if not names or any(name not in ROLE_PARTS for name in names):
        raise ConfigError(f"--role {role!r}: expected one of {', '.join(ROLES)}, or several joined by commas")
    return frozenset().union(*(ROLE_PARTS[name] for name in names))

VERSION = "0.1.0"


def utcnow() -> datetime:
    return datetime.now(UTC)


def user_agent(settings: Settings) -> str:
    contact = f"; +{settings.contact_url}" if settings.contact_url else ""
    return f"Veille/{VERSION} (news alerts for Telegram{contact})"


def process_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class _MeteredFetcher(Fetcher):
    """Times every fetch for `veille_fetch_seconds`."""

    metrics: Metrics | None = None

    async def fetch(self, url: str, **options: Any) -> Any:
        started = asyncio.get_running_loop().time()
        try:
            return await super().fetch(url, **options)
        finally:
            if self.metrics is not None:
                self.metrics.fetch_seconds.observe(asyncio.get_running_loop().time() - started)


class _MeteredPoller(Poller):
    """Counts each poll's outcome, new articles and alerts (the poller itself knows no metrics)."""

    metrics: Metrics | None = None

    async def poll_source(self, state: Any) -> Any:
        report = await super().poll_source(state)
        if self.metrics is not None:
            self.metrics.observe_poll(report.outcome, elapsed_s=report.elapsed_ms / 1000,
                                      new_articles=report.new_articles, alerts=report.alerts)
        return report


# What each database fault means for a running bot, in the one log line of its streak.
_FAULT_LINES: dict[str, str] = {
    "read-only": "database is read-only: writes fail until it is writable again (check the mount and permissions)",
    "full": "database is full: writes fail until disk space is freed",
    "cannot-open": "database cannot be opened: writes fail (check the path, the mount and permissions)",
    "unreachable": "database is unreachable: check the server and the network",
    "login-refused": "database refused the login: check the user and password in VEILLE_DATABASE_URL",
    "no-database": "database does not exist: check its name in VEILLE_DATABASE_URL",
}


@dataclass
class DatabaseWatch:
    """Logs a broken database once per streak, not a traceback per tick (issue #10).

    A periodic job that fails on a database fault (`bot.db.engine.database_fault`) reports it here: the
    first failure of a streak (or a change of fault) is one ERROR line saying what is wrong; the next
    ones are only counted. The streak ends when a job succeeds having written something (for a write
    fault: read-only, full, cannot open — reads may work meanwhile) or at all (unreachable), with one
    INFO line. Nothing else is needed to recover: every job simply runs again at its next tick.
    """

    url: str
    fault: DatabaseFault | None = None
    failures: int = 0  # in the current streak
    since: float = 0.0

    def failed(self, job: str, exc: BaseException) -> bool:
        """True when `exc` was a database fault (now logged or counted); False for anything else."""
        fault = database_fault(exc)
        if fault is None:
            return False
        fault = diagnose(self.url, fault)
        if self.fault is None or fault.kind != self.fault.kind:
            self.fault, self.failures, self.since = fault, 0, time.monotonic()
            path = sqlite_path(self.url) if self.url.startswith("sqlite") else None
            log.error(f"{_FAULT_LINES[fault.kind]}; Veille retries every tick and resumes by itself",
                      extra={"database": str(path) if path else _safe_url(self.url), "job": job,
                             "error": fault.detail})
        self.failures += 1
        return True

    def succeeded(self, *, wrote: bool) -> None:
        if self.fault is None or (self.fault.kind in WRITE_FAULTS and not wrote):
            return
        log.info("database works again", extra={"was": self.fault.kind, "failed_ticks": self.failures,
                                                "seconds": round(time.monotonic() - self.since, 1)})
        self.fault, self.failures = None, 0


@dataclass
class Core:
    """What every command needs: storage, fetching, matching, polling (no Telegram)."""

    settings: Settings
    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    fetcher: Fetcher
    matcher: Matcher
    poller: Poller
    subscriptions: SubscriptionService
    clock: Callable[[], datetime]
    metrics: Metrics = field(default_factory=Metrics)

    @classmethod
    def build(
        cls, settings: Settings, *, clock: Callable[[], datetime] = utcnow, metrics: Metrics | None = None
    ) -> Core:
        metrics = metrics if metrics is not None else Metrics()
        engine = create_engine(settings.database_url)
        session_factory = create_session_factory(engine)
        fetcher = _MeteredFetcher(
            FetcherConfig(
                user_agent=user_agent(settings),
                contact_url=settings.contact_url,
                connect_timeout=settings.fetch_connect_timeout,
                total_timeout=settings.fetch_timeout,
                max_body_bytes=settings.fetch_max_bytes,
                max_connections=settings.fetch_concurrency,
                max_per_host=settings.fetch_per_host,
                allow_private_networks=settings.allow_private_networks,
            )
        )
        fetcher.metrics = metrics
        matcher: Matcher = SyncedMatcher()
        poller = _MeteredPoller(
            session_factory=session_factory,
            fetcher=fetcher,
            matcher=matcher,
            config=PollerConfig(
                policy=PollPolicy(
                    default_interval=settings.poll_interval,
                    min_interval=settings.effective_min_interval,
                    max_interval=settings.poll_max_interval,
                ),
                error_limit=settings.source_error_limit,
                summary_max_chars=settings.summary_max_chars,
                fetch_full_text=settings.fetch_full_text,
                concurrency=settings.fetch_concurrency,
                admin_ids=settings.admin_ids,
                lease=timedelta(seconds=settings.poll_lease),
            ),
            clock=clock,
            owner=process_name(),
        )
        poller.metrics = metrics
        subscriptions = SubscriptionService(
            session_factory,
            matcher,
            limits=QueryLimits(max_length=settings.max_query_length, max_terms=settings.max_query_terms),
            max_alerts_per_chat=settings.max_alerts_per_chat,
            default_language=settings.default_language,
            default_timezone=settings.default_timezone,
            clock=clock,
        )
        return cls(settings, engine, session_factory, fetcher, matcher, poller, subscriptions, clock, metrics)

    async def prepare(self, *, migrate: bool = True, load_sources: bool = True) -> None:
        """Upgrades the schema, loads the sources file, builds the subscription index."""
        check_database_path(self.settings.database_url)
        if migrate:
            url = self.settings.database_url
            with database_errors_explained(url):
                await asyncio.to_thread(upgrade, url)
                await check_writable(self.engine)
            log.info("database ready", extra={"url": _safe_url(url)})
        if load_sources:
            added, updated = await self.load_sources_file(self.settings.sources_file)
            log.info("sources loaded", extra={"file": str(self.settings.sources_file), "added": added,
                                              "updated": updated})
        await self.reload_index()
        await self.poller.stories.load()
        await self.fetcher.start()

    async def reload_index(self) -> None:
        async with self.session_factory() as session:
            subscriptions = await repo.active_subscriptions(session)
        self.matcher.load(subscriptions)
        log.info("subscription index built", extra={"subscriptions": len(self.matcher)})

    async def load_sources_file(self, path: Path) -> tuple[int, int]:
        if not path.is_file():
            log.warning("sources file not found; starting with the sources already stored",
                        extra={"file": str(path)})
            return 0, 0
        specs = parse_catalogue(path.read_text(encoding="utf-8"), origin=str(path))
        return await self.upsert_sources(specs)

    async def upsert_sources(self, specs: list[SourceSpec]) -> tuple[int, int]:
        added = updated = 0
        async with self.session_factory() as session, session.begin():
            for spec in specs:
                _, created = await repo.upsert_source(
                    session, url=spec.url, name=spec.name, language=spec.language, category=spec.category,
                    now=self.clock(),
                )
                added += created
                updated += not created
        return added, updated

    async def close(self) -> None:
        await self.fetcher.close()
        await self.engine.dispose()


@dataclass
class App:
    """The running bot: core + Telegram (long polling or webhook) + scheduler (poll tick, delivery tick).

    `role` (issue #9) picks the parts this process runs: "bot" takes Telegram updates, "poller" polls
    sources, "sender" drains the outbox, "all" (the default) does the three. Any number of pollers
    and senders share the work through leases in the database; with Redis (`VEILLE_REDIS_URL`) they
    also share the Telegram rate limit and the subscription index's changes. With `VEILLE_HTTP_PORT`
    the process serves /healthz, /readyz, /metrics (and the webhook in webhook mode).
    """

    core: Core
    bot: Bot
    dispatcher: Dispatcher
    deliverer: Deliverer
    scheduler: AsyncIOScheduler = field(default_factory=lambda: AsyncIOScheduler(timezone=UTC))
    _polling_task: asyncio.Task[None] | None = None
    _stopped: asyncio.Event = field(default_factory=asyncio.Event)
    _executor: ThreadPoolExecutor | None = None
    role: str = "all"
    redis: Any = None
    index_sync: IndexSync | None = None
    web: Any = None  # bot.web.OpsServer when VEILLE_HTTP_PORT is set
    _background: list[asyncio.Task[Any]] = field(default_factory=list)
    _loop_watch_stop: asyncio.Event = field(default_factory=asyncio.Event)
    database_watch: DatabaseWatch = field(init=False)

    def __post_init__(self) -> None:
        self.database_watch = DatabaseWatch(self.core.settings.database_url)

    @property
    def parts(self) -> frozenset[str]:
        return role_parts(self.role)

    @classmethod
    def build(cls, settings: Settings, *, clock: Callable[[], datetime] = utcnow, role: str = "all") -> App:
        from bot.services.admin import AdminServices
        from bot.services.digests import DigestService
        from bot.settings import require_token
        from bot.telegram.client import make_bot
        from bot.telegram.dispatcher import build_dispatcher
        from bot.telegram.keyboards import alert_keyboards
        from bot.telegram.routers.delivery_buttons import TelegramButtons
        from bot.telegram.sender import TelegramSender

        role_parts(role)  # raises ConfigError for an unknown role
        token = require_token(settings)
        if settings.webhook_url and (settings.webhook_secret is None or settings.http_port is None):
            raise ConfigError("VEILLE_WEBHOOK_URL needs VEILLE_WEBHOOK_SECRET (Telegram sends it back with "
                              "every update) and VEILLE_HTTP_PORT (where the webhook listens)")
        core = Core.build(settings, clock=clock, metrics=Metrics(role=role))
        bot = make_bot(token, settings.telegram_api_url)
        dispatcher = build_dispatcher(core.subscriptions, settings, fetcher=core.fetcher)
        dispatcher["digests"] = DigestService(core.session_factory, clock, buttons=TelegramButtons())  # issue #7
        dispatcher["admin_services"] = AdminServices.build(settings, core.session_factory, clock=clock, reload_index=core.reload_index)  # noqa: E501
        redis = None
        if settings.redis_url:
            from redis.asyncio import Redis

            redis = Redis.from_url(settings.redis_url)
        limiter = RateLimiter(
            global_per_second=settings.send_rate,
            pacer=ChatPacer(
                PacingSettings(
                    private_per_second=settings.private_chat_rate,
                    group_per_minute=settings.group_chat_per_minute,
                )
            ),
        )
        deliverer = Deliverer(
            session_factory=core.session_factory,
            sender=MeteredSender(TelegramSender(bot, keyboards=alert_keyboards(core)), core.metrics),
            limiter=_shared_limiter(settings, redis, limiter, core.metrics),
            clock=clock,
            owner=process_name(),
            lease=timedelta(seconds=settings.delivery_lease),
            max_in_flight=settings.delivery_max_in_flight,
            alerts_per_hour=settings.alerts_per_hour,
            buttons=TelegramButtons(),
        )
        app = cls(core=core, bot=bot, dispatcher=dispatcher, deliverer=deliverer, role=role, redis=redis)
        core.poller.on_alerts = app.wake_delivery
        if redis is not None and "bot" in app.parts:
            from bot.telegram.webhook import use_redis_fsm

            use_redis_fsm(dispatcher, redis)
        if redis is not None or role != "all":
            assert isinstance(core.matcher, SyncedMatcher)
            app.index_sync = IndexSync(redis, core.matcher, core.reload_index, origin=process_name())
        return app

    def wake_delivery(self) -> None:
        """New alerts were queued: drain now instead of waiting for the next tick."""
        if self.scheduler.running and "sender" in self.parts:
            asyncio.get_running_loop().create_task(self._delivery_tick())

    async def start(self) -> None:
        settings = self.core.settings
        # CPU work (parsing, extraction, summaries) runs in this pool; owning it lets stop() drop the
        # queued jobs instead of making the process wait for all of them before it can exit.
        self._executor = ThreadPoolExecutor(max_workers=min(4, (os.cpu_count() or 1) + 1),
                                            thread_name_prefix="veille-cpu")
        asyncio.get_running_loop().set_default_executor(self._executor)
        with database_errors_explained(settings.database_url):  # PostgreSQL: the lock is the first connection
            async with self._startup_lock():
                await self.core.prepare()
        from bot.telegram.client import check_bot

        me = await check_bot(self.bot, settings.telegram_api_url)
        log.info("telegram ready", extra={"bot": f"@{me.username}", "api": settings.telegram_api_url,
                                          "role": self.role})
        if "bot" in self.parts:
            from bot.telegram.routers.admin import schedule_admin_jobs

            if not await self._register_commands():
                # The command menu is a convenience: a Telegram hiccup at start must not stop the bot.
                self.scheduler.add_job(self._register_commands_until_done, "interval", seconds=60,
                                       id="register-commands", max_instances=1, coalesce=True)
            schedule_admin_jobs(self.scheduler, self.bot, self.dispatcher["admin_services"], owner=process_name())
            if not settings.webhook_url:
                await self.bot.delete_webhook(drop_pending_updates=False)
        if "poller" in self.parts:
            self.scheduler.add_job(
                self._poll_tick, "interval", seconds=settings.poll_tick, id="poll", max_instances=1,
                coalesce=True, next_run_time=datetime.now(UTC),
            )
        if "sender" in self.parts:
            self.scheduler.add_job(
                self._delivery_tick, "interval", seconds=settings.delivery_tick, id="deliver", max_instances=1,
                coalesce=True, next_run_time=datetime.now(UTC) + timedelta(seconds=0.2),
            )
            self.scheduler.add_job(
                self._digest_tick, "interval", seconds=60, id="digests", max_instances=1, coalesce=True,
                next_run_time=datetime.now(UTC) + timedelta(seconds=1),
            )
        self.scheduler.add_job(
            self._outbox_gauges, "interval", seconds=5, id="ops-outbox", max_instances=1, coalesce=True,
            next_run_time=datetime.now(UTC) + timedelta(seconds=0.5),
        )
        await self._start_operations()
        self.scheduler.start()
        log.info("scheduler started", extra={"poll_tick_s": settings.poll_tick,
                                             "delivery_tick_s": settings.delivery_tick, "role": self.role})
        if "bot" not in self.parts:
            return
        if settings.webhook_url:
            from bot.telegram.webhook import set_webhook

            assert settings.webhook_secret is not None
            await set_webhook(self.bot, self.dispatcher, url=settings.webhook_url,
                              secret=settings.webhook_secret.get_secret_value())
            log.info("webhook set", extra={"url": settings.webhook_url})
            return
        self._polling_task = asyncio.create_task(
            self.dispatcher.start_polling(
                self.bot, handle_signals=False, close_bot_session=False, polling_timeout=10,
                subscriptions=self.core.subscriptions,
            ),
            name="telegram-polling",
        )
        log.info("long polling started")

    async def _start_operations(self) -> None:
        """Index sync, event-loop watch, and the HTTP server (with the webhook route in webhook mode)."""
        settings = self.core.settings
        if self.index_sync is not None:
            self._background.append(asyncio.create_task(self.index_sync.run(), name="index-sync"))
        self._background.append(asyncio.create_task(
            watch_event_loop(self.core.metrics, stop=self._loop_watch_stop), name="loop-lag"))
        if settings.http_port is None:
            return
        from bot.web import OpsServer

        checks: dict[str, Callable[[], Any]] = {"database": self._check_database, "telegram": self.bot.get_me}
        if self.redis is not None:
            checks["redis"] = self.redis.ping
        self.web = OpsServer(metrics=self.core.metrics, checks=checks, port=settings.http_port)
        if settings.webhook_url:  # WebSub: hubs call back on this server; leases renewed by a job (issue #3)
            from bot.services.websub import attach_websub

            attach_websub(self.web.app, self.scheduler, session_factory=self.core.session_factory,
                          public_url=settings.webhook_url, clock=self.core.clock, user_agent=user_agent(settings),
                          allow_private_networks=settings.allow_private_networks)
        if settings.webhook_url and "bot" in self.parts:
            from bot.telegram.webhook import register_webhook

            assert settings.webhook_secret is not None
            register_webhook(self.web.app, self.dispatcher, self.bot, url=settings.webhook_url,
                             secret=settings.webhook_secret.get_secret_value(),
                             subscriptions=self.core.subscriptions)
        await self.web.start()

    async def _check_database(self) -> None:
        from bot.db import ops

        async with self.core.session_factory() as session:
            await ops.ping(session)

    async def _outbox_gauges(self) -> None:
        from bot.db import ops

        try:
            async with self.core.session_factory() as session:
                depth, age = await ops.outbox_backlog(session, now=self.core.clock())
            self.core.metrics.set_outbox(depth, age)
        except Exception as exc:
            if not self.database_watch.failed("outbox-gauges", exc):
                log.exception("outbox gauges not refreshed")
        else:
            self.database_watch.succeeded(wrote=False)

    @contextlib.asynccontextmanager
    async def _startup_lock(self) -> AsyncIterator[None]:
        """On PostgreSQL, processes starting together migrate and load sources one at a time."""
        if self.core.settings.is_sqlite:
            yield
            return
        from sqlalchemy import text

        async with self.core.engine.connect() as connection:
            await connection.execute(text("SELECT pg_advisory_lock(726574)"))
            await connection.commit()
            try:
                yield
            finally:
                await connection.execute(text("SELECT pg_advisory_unlock(726574)"))
                await connection.commit()

    async def _register_commands(self) -> bool:
        from bot.telegram.dispatcher import register_commands
        from bot.telegram.sender import SEND_ERRORS

        try:
            await register_commands(self.bot)
        except SEND_ERRORS as exc:
            log.warning("command menu not registered yet; retrying in 60 s", extra={"error": repr(exc)[:300]})
            return False
        return True

    async def _register_commands_until_done(self) -> None:
        if await self._register_commands():
            self.scheduler.remove_job("register-commands")

    # The periodic jobs: a database fault is one line per streak (DatabaseWatch); anything else is a
    # bug, logged with its traceback. A job "wrote" when it claimed or made something (a committed write).

    async def _poll_tick(self) -> None:
        try:
            started = await self.core.poller.tick()
        except Exception as exc:
            if not self.database_watch.failed("poll", exc):
                log.exception("poll tick failed")
        else:
            self.database_watch.succeeded(wrote=started > 0)

    async def _digest_tick(self) -> None:
        """Bundles held alerts whose digest is due (issue #7); the deliverer sends them."""
        try:
            made = await self.dispatcher["digests"].tick()
        except Exception as exc:
            if not self.database_watch.failed("digests", exc):
                log.exception("digest tick failed")
        else:
            self.database_watch.succeeded(wrote=bool(made))
            if made:
                self.wake_delivery()

    async def _delivery_tick(self) -> None:
        try:
            handled = await self.deliverer.drain_once()
        except Exception as exc:
            if not self.database_watch.failed("delivery", exc):
                log.exception("delivery tick failed")
        else:
            self.database_watch.succeeded(wrote=handled > 0)

    async def stop(self, timeout: float = 4.0) -> None:
        """Stops within `timeout` seconds: no new work, in-flight sends finish or stay in the outbox.

        One deadline for everything: waits run side by side, never one budget after another, so a
        slow part cannot push the whole stop past the 5 s the issue promises."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        deadline = time.monotonic() + timeout
        log.info("stopping")
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self._polling_task is not None:
            self._polling_task.cancel()
        self._loop_watch_stop.set()
        self.deliverer.stop()

        async def delivery_settled() -> None:
            try:
                await asyncio.wait_for(self.deliverer.drain_lock_released(), timeout=_left(deadline, 0.5))
            except TimeoutError:
                log.warning("delivery still in flight at shutdown; its rows stay leased and will be retried")

        async def background_settled() -> None:
            if self._background:
                await asyncio.wait(self._background, timeout=_left(deadline, 0.5))

        parts = [
            self.core.poller.drain(timeout=_left(deadline, 1.0)),
            delivery_settled(),
            background_settled(),
        ]
        if self._polling_task is not None:
            parts.append(asyncio.wait({self._polling_task}, timeout=_left(deadline, 0.5)))
        if self.web is not None:
            parts.append(self.web.stop())
        if self.index_sync is not None:
            parts.append(self.index_sync.stop())
        results = await asyncio.gather(*parts, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                log.warning("shutdown step failed", extra={"error": repr(result)})
        await self.bot.session.close()
        await self.core.close()
        if self.redis is not None:
            await self.redis.aclose()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        log.info("stopped", extra={"elapsed_s": round(timeout - (deadline - time.monotonic()), 2)})


def _left(deadline: float, reserve: float) -> float:
    """Seconds left before `deadline`, keeping `reserve` for closing sessions; never negative."""
    return max(0.05, deadline - time.monotonic() - reserve)


def _shared_limiter(settings: Settings, redis: Any, local: RateLimiter, metrics: Metrics) -> Any:
    """The Telegram rate limit: shared through Redis when configured, else this process's own."""
    from bot.services.redis_limiter import MeteredLimiter, RedisRateLimiter, SharedRateLimiter

    if redis is None:
        return MeteredLimiter(local, metrics.observe_limiter_wait)
    remote = RedisRateLimiter(
        redis,
        global_per_second=settings.send_rate,
        pacing=PacingSettings(private_per_second=settings.private_chat_rate,
                              group_per_minute=settings.group_chat_per_minute),
    )
    return SharedRateLimiter(remote, fallback=local, on_wait=metrics.observe_limiter_wait)


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


async def run(settings: Settings, role: str = "all") -> None:
    """`veille run`: start this role's parts, wait for SIGINT/SIGTERM, stop cleanly."""
    import signal

    try:
        app = App.build(settings, role=role)
    except ConfigError:
        raise
    stop_requested = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop_requested.set)
    try:
        await app.start()
        log.info("veille running; Ctrl-C to stop")
        await stop_requested.wait()
    finally:
        await app.stop()

"""The composition root: builds every component from settings and runs them together.

Nothing is built at import time; tests build an `App` with their own settings (a fake Bot API URL,
a temporary database, a fixed clock) and drive it through the same `start`/`stop` as `veille run`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiogram import Bot, Dispatcher
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.core.catalogue import SourceSpec, parse_catalogue
from bot.core.polling import PollPolicy
from bot.core.query import QueryLimits
from bot.core.ratelimit import ChatPacer, PacingSettings, RateLimiter
from bot.db import repo
from bot.db.engine import create_engine, create_session_factory
from bot.db.migrate import upgrade
from bot.errors import ConfigError
from bot.fetcher.http import Fetcher, FetcherConfig
from bot.services.delivery import Deliverer
from bot.services.matcher import Matcher
from bot.services.poller import Poller, PollerConfig
from bot.services.subscriptions import SubscriptionService
from bot.settings import Settings

log = logging.getLogger("veille")

VERSION = "0.1.0"


def utcnow() -> datetime:
    return datetime.now(UTC)


def user_agent(settings: Settings) -> str:
    contact = f"; +{settings.contact_url}" if settings.contact_url else ""
    return f"Veille/{VERSION} (news alerts for Telegram{contact})"


def process_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


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

    @classmethod
    def build(cls, settings: Settings, *, clock: Callable[[], datetime] = utcnow) -> Core:
        engine = create_engine(settings.database_url)
        session_factory = create_session_factory(engine)
        fetcher = Fetcher(
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
        matcher = Matcher()
        poller = Poller(
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
            ),
            clock=clock,
            owner=process_name(),
        )
        subscriptions = SubscriptionService(
            session_factory,
            matcher,
            limits=QueryLimits(max_length=settings.max_query_length, max_terms=settings.max_query_terms),
            max_alerts_per_chat=settings.max_alerts_per_chat,
            default_language=settings.default_language,
            default_timezone=settings.default_timezone,
            clock=clock,
        )
        return cls(settings, engine, session_factory, fetcher, matcher, poller, subscriptions, clock)

    async def prepare(self, *, migrate: bool = True, load_sources: bool = True) -> None:
        """Upgrades the schema, loads the sources file, builds the subscription index."""
        if migrate:
            await asyncio.to_thread(upgrade, self.settings.database_url)
            log.info("database ready", extra={"url": _safe_url(self.settings.database_url)})
        if load_sources:
            added, updated = await self.load_sources_file(self.settings.sources_file)
            log.info("sources loaded", extra={"file": str(self.settings.sources_file), "added": added,
                                              "updated": updated})
        await self.reload_index()
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
    """The running bot: core + Telegram (long polling) + scheduler (poll tick, delivery tick)."""

    core: Core
    bot: Bot
    dispatcher: Dispatcher
    deliverer: Deliverer
    scheduler: AsyncIOScheduler = field(default_factory=lambda: AsyncIOScheduler(timezone=UTC))
    _polling_task: asyncio.Task[None] | None = None
    _stopped: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    def build(cls, settings: Settings, *, clock: Callable[[], datetime] = utcnow) -> App:
        from bot.settings import require_token
        from bot.telegram.client import make_bot
        from bot.telegram.dispatcher import build_dispatcher
        from bot.telegram.sender import TelegramSender

        token = require_token(settings)
        core = Core.build(settings, clock=clock)
        bot = make_bot(token, settings.telegram_api_url)
        dispatcher = build_dispatcher(core.subscriptions, settings)
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
            sender=TelegramSender(bot),
            limiter=limiter,
            clock=clock,
            owner=process_name(),
        )
        app = cls(core=core, bot=bot, dispatcher=dispatcher, deliverer=deliverer)
        core.poller.on_alerts = app.wake_delivery
        return app

    def wake_delivery(self) -> None:
        """New alerts were queued: drain now instead of waiting for the next tick."""
        if self.scheduler.running:
            asyncio.get_running_loop().create_task(self._delivery_tick())

    async def start(self) -> None:
        settings = self.core.settings
        await self.core.prepare()
        me = await self.bot.get_me()
        log.info("telegram ready", extra={"bot": f"@{me.username}", "api": settings.telegram_api_url})
        from bot.telegram.dispatcher import register_commands

        await register_commands(self.bot)
        await self.bot.delete_webhook(drop_pending_updates=False)
        self.scheduler.add_job(
            self._poll_tick, "interval", seconds=settings.poll_tick, id="poll", max_instances=1, coalesce=True,
            next_run_time=datetime.now(UTC),
        )
        self.scheduler.add_job(
            self._delivery_tick, "interval", seconds=settings.delivery_tick, id="deliver", max_instances=1,
            coalesce=True, next_run_time=datetime.now(UTC) + timedelta(seconds=0.2),
        )
        self.scheduler.start()
        log.info("scheduler started", extra={"poll_tick_s": settings.poll_tick,
                                             "delivery_tick_s": settings.delivery_tick})
        self._polling_task = asyncio.create_task(
            self.dispatcher.start_polling(
                self.bot, handle_signals=False, close_bot_session=False, polling_timeout=10,
                subscriptions=self.core.subscriptions,
            ),
            name="telegram-polling",
        )
        log.info("long polling started")

    async def _poll_tick(self) -> None:
        try:
            await self.core.poller.tick()
        except Exception:
            log.exception("poll tick failed")

    async def _delivery_tick(self) -> None:
        try:
            await self.deliverer.drain_once()
        except Exception:
            log.exception("delivery tick failed")

    async def stop(self, timeout: float = 4.0) -> None:
        """Stops within `timeout` seconds: no new work, in-flight sends finish or stay in the outbox."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        log.info("stopping")
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self._polling_task is not None:
            self._polling_task.cancel()
            await asyncio.gather(self._polling_task, return_exceptions=True)
        self.deliverer.stop()
        await self.core.poller.drain(timeout=timeout / 2)
        try:
            await asyncio.wait_for(self.deliverer.drain_lock_released(), timeout=timeout / 2)
        except TimeoutError:
            log.warning("delivery still in flight at shutdown; its rows stay leased and will be retried")
        await self.bot.session.close()
        await self.core.close()
        log.info("stopped")


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


async def run(settings: Settings) -> None:
    """`veille run`: start everything, wait for SIGINT/SIGTERM, stop cleanly."""
    import signal

    try:
        app = App.build(settings)
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

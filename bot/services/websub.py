"""WebSub subscriptions (issue #3): pushes from a feed's hub become immediate polls.

Rules:

- Only when Veille has a public base URL (webhook mode): the hub calls back
  ``<origin>/websub/<source id>`` on the ops HTTP server. Polling goes on regardless: it is the
  fallback, so a lost push, an expired lease or a dead hub costs at most one poll interval.
- The hub of a source comes from its feed (``note_feed``: Link headers, then the document). The
  topic is the source's URL (the address Veille polls).
- ``renew_due`` (a scheduler job) subscribes every enabled source with a hub whose subscription was
  never verified or ends within ``margin``, and unsubscribes disabled ones. A renewal keeps the
  secret, so pushes signed under the running lease stay valid while the hub re-verifies.
- Requests go to the hub through a session behind the SSRF guard (``GuardedConnector``), redirects
  not followed. A refused or failed request is retried ``retry_after`` later; a denial a day later.
- The callback answers a verification GET only for the topic and mode Veille asked for (see
  ``bot.core.websub.check_verification``), and accepts a POST only when its ``X-Hub-Signature`` is
  valid for the source's secret: anything else gets 4xx and triggers nothing. An accepted push is
  never parsed here; it marks the source due now (``next_check_at = now``) and wakes the poller.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core import websub as core
from bot.db import websub as db
from bot.fetcher.http import FetchError, check_url_allowed
from bot.fetcher.ssrf import AddressRefused, GuardedConnector

log = logging.getLogger(__name__)

ROUTE = "/websub/{source_id}"


@dataclass(frozen=True)
class WebSubConfig:
    public_base_url: str
    user_agent: str = "Veille/0.1 (news alerts)"
    allow_private_networks: bool = False
    lease: timedelta = core.REQUESTED_LEASE
    margin: timedelta = core.RENEWAL_MARGIN
    retry_after: timedelta = timedelta(hours=6)
    denied_retry_after: timedelta = timedelta(days=1)
    timeout: float = 15.0
    max_push_bytes: int = 10 * 1024 * 1024


@dataclass
class WebSubService:
    session_factory: async_sessionmaker[AsyncSession]
    config: WebSubConfig
    clock: Callable[[], datetime]
    on_push: Callable[[int], None] | None = None  # source id pushed; e.g. start a poll tick now
    new_secret: Callable[[], str] = field(default=lambda: secrets.token_urlsafe(32))
    _session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=GuardedConnector(limit=10, allow_private=self.config.allow_private_networks),
                timeout=aiohttp.ClientTimeout(total=self.config.timeout),
                headers={"User-Agent": self.config.user_agent},
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,
            )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def callback_url(self, source_id: int) -> str:
        return core.callback_url(self.config.public_base_url, source_id)

    # --- the hub a feed advertises --------------------------------------------------------------

    async def note_feed(
        self, source_id: int, *, feed_url: str, hub_url: str | None, self_url: str | None,
        link_headers: tuple[str, ...] = (),
    ) -> str | None:
        """Records the hub a freshly fetched feed advertises (None: it has none); returns it."""
        links = core.discover_websub(feed_url=feed_url, hub_url=hub_url, self_url=self_url,
                                     link_headers=link_headers)
        hub = links.hub_url if links else None
        async with self.session_factory() as session, session.begin():
            if await db.set_hub(session, source_id, hub):
                log.info("websub hub noted", extra={"source": source_id, "hub": hub})
        return hub

    # --- requests to the hub --------------------------------------------------------------------

    async def renew_due(self, *, limit: int = 100) -> int:
        """Subscribes what needs it and unsubscribes disabled sources; returns requests accepted."""
        now = self.clock()
        async with self.session_factory() as session:
            renew = await db.subscriptions_to_renew(session, now=now, margin=self.config.margin, limit=limit)
            drop = await db.subscriptions_to_drop(session, limit=limit)
        accepted = 0
        for state in renew:
            accepted += await self.subscribe(state.source_id)
        for state in drop:
            accepted += await self.unsubscribe(state.source_id)
        return accepted

    async def subscribe(self, source_id: int) -> bool:
        async with self.session_factory() as session, session.begin():
            state = await db.websub_state(session, source_id)
            if state is None or state.hub_url is None:
                return False
            secret = state.secret or self.new_secret()
            await db.request_subscription(session, source_id, secret=secret)
        form = core.subscription_form(mode="subscribe", topic=state.url, callback=self.callback_url(source_id),
                                      secret=secret, lease=self.config.lease)
        error = await self._post(state.hub_url, form)
        if error is None:
            log.info("websub subscribe requested", extra={"source": source_id, "hub": state.hub_url})
            return True
        log.warning("websub subscribe failed", extra={"source": source_id, "hub": state.hub_url, "error": error})
        async with self.session_factory() as session, session.begin():
            await db.retry_subscription_at(session, source_id, forget_secret=False,
                                           at=self.clock() + self.config.retry_after + self.config.margin)
        return False

    async def unsubscribe(self, source_id: int) -> bool:
        async with self.session_factory() as session:
            state = await db.websub_state(session, source_id)
        if state is None or state.hub_url is None:
            return False
        form = core.subscription_form(mode="unsubscribe", topic=state.url, callback=self.callback_url(source_id),
                                      secret=None)
        error = await self._post(state.hub_url, form)
        # Accepted or not, Veille stops honouring pushes for it: their secret is forgotten.
        async with self.session_factory() as session, session.begin():
            await db.end_subscription(session, source_id)
        if error is not None:
            log.warning("websub unsubscribe failed", extra={"source": source_id, "hub": state.hub_url,
                                                             "error": error})
            return False
        log.info("websub unsubscribe requested", extra={"source": source_id, "hub": state.hub_url})
        return True

    async def _post(self, hub_url: str, form: Mapping[str, str]) -> str | None:
        """POSTs to the hub; None when it accepted (2xx), else what went wrong in plain words.
        Without `start()`, a session is opened for this request alone (the renewal job is rare)."""
        if self._session is None:
            await self.start()
            try:
                return await self._post(hub_url, form)
            finally:
                await self.close()
        try:
            check_url_allowed(hub_url, self.config.allow_private_networks)
            async with self._session.post(hub_url, data=dict(form), allow_redirects=False) as response:
                if 200 <= response.status < 300:
                    return None
                detail = (await response.content.read(300)).decode("utf-8", "replace").strip()
                return f"the hub answered HTTP {response.status} {detail}".strip()
        except (FetchError, AddressRefused) as refused:
            return str(refused)
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            return f"could not reach the hub ({type(error).__name__})"

    # --- callbacks from the hub -----------------------------------------------------------------

    async def handle_verification(self, source_id: int, params: Mapping[str, str]) -> core.Verification:
        async with self.session_factory() as session, session.begin():
            state = await db.websub_state(session, source_id)
            if state is None:
                return core.Verification(404, "", None, reason="unknown source")
            wanted = "subscribe" if state.enabled and state.hub_url and state.secret else "unsubscribe"
            answer = core.check_verification(params, topic=state.url, expected_mode=wanted)
            now = self.clock()
            if answer.mode == "subscribe":
                expires = core.lease_expiry(now, answer.lease_seconds)
                await db.confirm_subscription(session, source_id, expires_at=expires)
            elif answer.mode == "unsubscribe":
                await db.end_subscription(session, source_id)
            elif answer.mode == "denied":
                await db.retry_subscription_at(session, source_id, forget_secret=True,
                                               at=now + self.config.denied_retry_after + self.config.margin)
        log.info("websub verification", extra={"source": source_id, "mode": params.get("hub.mode"),
                                               "status": answer.status, "reason": answer.reason})
        return answer

    async def handle_push(self, source_id: int, body: bytes, signature: str | None) -> int:
        """The HTTP status for a content distribution POST (see the module rules)."""
        async with self.session_factory() as session, session.begin():
            state = await db.websub_state(session, source_id)
            if state is None:
                return 404
            if not core.signature_valid(state.secret, body, signature):
                log.warning("websub push refused: bad signature", extra={"source": source_id})
                return 403
            due = await db.mark_due_now(session, source_id, now=self.clock())
        if not due:
            return 410  # disabled: the hub may drop the subscription
        log.info("websub push", extra={"source": source_id, "bytes": len(body)})
        if self.on_push is not None:
            self.on_push(source_id)
        return 202


def make_websub_routes(service: WebSubService) -> list[web.RouteDef]:
    """GET (verification of intent) and POST (content distribution) on ``/websub/{source_id}``."""

    def source_id_of(request: web.Request) -> int | None:
        raw = request.match_info["source_id"]
        return int(raw) if raw.isdigit() and len(raw) < 19 else None

    async def verify(request: web.Request) -> web.Response:
        source_id = source_id_of(request)
        if source_id is None:
            return web.Response(status=404)
        answer = await service.handle_verification(source_id, request.query)
        return web.Response(status=answer.status, text=answer.body, content_type="text/plain")

    async def push(request: web.Request) -> web.Response:
        source_id = source_id_of(request)
        if source_id is None:
            return web.Response(status=404)
        cap = service.config.max_push_bytes
        if request.content_length is not None and request.content_length > cap:
            return web.Response(status=413)
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.content.iter_chunked(64 * 1024):
            size += len(chunk)
            if size > cap:
                return web.Response(status=413)
            chunks.append(chunk)
        status = await service.handle_push(source_id, b"".join(chunks), request.headers.get(core.SIGNATURE_HEADER))
        return web.Response(status=status)

    return [web.get(ROUTE, verify), web.post(ROUTE, push)]


def mount_websub(app: web.Application, service: WebSubService) -> None:
    """Adds the WebSub callback routes to the ops HTTP server's application (before it starts)."""
    app.add_routes(make_websub_routes(service))


def attach_websub(
    app: web.Application, scheduler: Any, *, session_factory: async_sessionmaker[AsyncSession],
    public_url: str, clock: Callable[[], datetime], user_agent: str, allow_private_networks: bool,
    every: timedelta = timedelta(minutes=10),
) -> WebSubService:
    """Wiring for `bot.app`: callback routes on `app`, and a renewal job on the APScheduler
    `scheduler` (first run 5 s after start). The service opens a client session per request."""
    service = WebSubService(
        session_factory,
        WebSubConfig(public_base_url=public_url, user_agent=user_agent,
                     allow_private_networks=allow_private_networks),
        clock,
    )
    mount_websub(app, service)
    scheduler.add_job(service.renew_due, "interval", seconds=every.total_seconds(), id="websub",
                      max_instances=1, coalesce=True, next_run_time=clock() + timedelta(seconds=5))
    return service

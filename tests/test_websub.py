"""WebSub against a fake hub on 127.0.0.1 and the real database: subscribe, verification of intent,
signed pushes that become polls, renewal before expiry, unsubscribe."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from aiohttp import web

from bot.core.polling import PollPolicy
from bot.core.websub import sign
from bot.db import repo
from bot.db.models import Source
from bot.fetcher.http import Fetcher, FetcherConfig
from bot.services.matcher import Matcher
from bot.services.poller import Poller, PollerConfig
from bot.services.websub import WebSubConfig, WebSubService, attach_websub, mount_websub
from tests.fakes.feed_server import FeedServer


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Verified:
    mode: str
    status: int
    body: str
    challenge: str


@dataclass
class FakeHub:
    """Takes subscription requests like a WebSub hub (§5.1) and verifies intent asynchronously (§5.3)."""

    status: int = 202
    lease_seconds: int | None = 86400
    deny: bool = False
    requests: list[dict[str, str]] = field(default_factory=list)
    verifications: asyncio.Queue[Verified] = field(default_factory=asyncio.Queue)
    url: str = ""
    _runner: web.AppRunner | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hub", self._subscribe)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/hub"

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _subscribe(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        self.requests.append(form)
        if self.status == 202:
            task = asyncio.create_task(self._verify(form))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return web.Response(status=self.status, text="ok" if self.status < 300 else "hub says no")

    async def _verify(self, form: dict[str, str]) -> None:
        challenge = secrets.token_hex(8)
        params = {"hub.mode": "denied" if self.deny else form["hub.mode"], "hub.topic": form["hub.topic"],
                  "hub.challenge": challenge}
        if self.lease_seconds is not None and form["hub.mode"] == "subscribe":
            params["hub.lease_seconds"] = str(self.lease_seconds)
        async with aiohttp.ClientSession() as session, session.get(form["hub.callback"], params=params) as response:
            self.verifications.put_nowait(Verified(params["hub.mode"], response.status, await response.text(),
                                                   challenge))

    async def next_verification(self) -> Verified:
        return await asyncio.wait_for(self.verifications.get(), 5)


async def push(callback: str, body: bytes, signature: str | None) -> int:
    headers = {"Content-Type": "application/rss+xml"}
    if signature is not None:
        headers["X-Hub-Signature"] = signature
    async with aiohttp.ClientSession() as session, session.post(callback, data=body, headers=headers) as response:
        return response.status


@dataclass
class Env:
    service: WebSubService
    hub: FakeHub
    clock: Clock
    session_factory: object
    base_url: str
    pushed: list[int]

    async def add_source(self, url: str = "https://news.example/feed.xml", *, hub: bool = True) -> int:
        async with self.session_factory() as session, session.begin():  # type: ignore[operator]
            source, _ = await repo.upsert_source(session, url=url, name="Le Fil", language="fr", category=None,
                                                 now=self.clock())
            source.next_check_at = self.clock() + timedelta(minutes=30)
            source.last_success_at = self.clock()
            if hub:
                source.hub_url = self.hub.url
            await session.flush()
            return source.id

    async def source(self, source_id: int) -> Source:
        async with self.session_factory() as session:  # type: ignore[operator]
            source = await repo.get_source(session, source_id)
            assert source is not None
            return source

    def callback(self, source_id: int) -> str:
        return f"{self.base_url}/websub/{source_id}"


@pytest.fixture
async def env(session_factory) -> AsyncIterator[Env]:  # noqa: ANN001
    clock = Clock()
    hub = FakeHub()
    await hub.start()
    pushed: list[int] = []
    service = WebSubService(session_factory, WebSubConfig(public_base_url="http://unset", allow_private_networks=True),
                            clock, on_push=pushed.append)
    app = web.Application()
    mount_websub(app, service)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    base_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    # The public URL is the Telegram webhook's; callbacks go to its origin.
    service.config = replace(service.config, public_base_url=base_url + "/telegram/webhook")
    await service.start()
    yield Env(service, hub, clock, session_factory, base_url, pushed)
    await service.close()
    await runner.cleanup()
    await hub.stop()


async def test_subscription_is_requested_verified_and_its_lease_recorded(env: Env) -> None:
    source_id = await env.add_source()

    assert await env.service.renew_due() == 1
    verified = await env.hub.next_verification()

    request = env.hub.requests[0]
    assert request["hub.mode"] == "subscribe"
    assert request["hub.topic"] == "https://news.example/feed.xml"
    assert request["hub.callback"] == env.callback(source_id)
    assert request["hub.lease_seconds"] == str(10 * 86400)
    assert len(request["hub.secret"]) >= 32
    assert (verified.status, verified.body) == (200, verified.challenge)
    source = await env.source(source_id)
    assert source.websub_secret == request["hub.secret"]
    assert source.websub_expires_at == env.clock() + timedelta(days=1)
    assert await env.service.renew_due() == 0  # nothing left to do


async def test_signed_push_marks_the_source_due_now_and_wakes_the_poller(env: Env) -> None:
    source_id = await env.add_source()
    await env.service.renew_due()
    await env.hub.next_verification()
    secret = (await env.source(source_id)).websub_secret
    assert secret is not None
    body = b"<rss><channel><item><title>Arm\xc3\xa9nie</title></item></channel></rss>"

    status = await push(env.callback(source_id), body, sign(secret, body, "sha1"))

    assert status == 202
    assert (await env.source(source_id)).next_check_at == env.clock()
    assert env.pushed == [source_id]


@pytest.mark.parametrize(
    "signature",
    [None, "sha1=" + "0" * 40, "sha256=nothex", "md5=abc", "the-wrong-secret"],
)
async def test_push_with_a_bad_signature_is_refused_and_polls_nothing(env: Env, signature: str | None) -> None:
    source_id = await env.add_source()
    await env.service.renew_due()
    await env.hub.next_verification()
    before = (await env.source(source_id)).next_check_at
    body = b"<rss/>"
    if signature == "the-wrong-secret":
        signature = sign("not-our-secret", body)

    status = await push(env.callback(source_id), body, signature)

    assert status == 403
    assert (await env.source(source_id)).next_check_at == before
    assert env.pushed == []


async def test_push_before_any_subscription_or_to_an_unknown_source_is_refused(env: Env) -> None:
    source_id = await env.add_source()
    body = b"<rss/>"
    assert await push(env.callback(source_id), body, sign("", body)) == 403
    assert await push(env.callback(9999), body, sign("x", body)) == 404
    assert await push(f"{env.base_url}/websub/abc", body, sign("x", body)) == 404
    assert env.pushed == []


async def test_verification_for_another_topic_mode_or_source_gets_404(env: Env) -> None:
    source_id = await env.add_source()
    await env.service.renew_due()
    await env.hub.next_verification()
    cases = [
        (source_id, {"hub.mode": "subscribe", "hub.topic": "https://evil.example/feed", "hub.challenge": "c"}),
        (source_id, {"hub.mode": "unsubscribe", "hub.topic": "https://news.example/feed.xml", "hub.challenge": "c"}),
        (9999, {"hub.mode": "subscribe", "hub.topic": "https://news.example/feed.xml", "hub.challenge": "c"}),
    ]
    async with aiohttp.ClientSession() as session:
        for target, params in cases:
            async with session.get(env.callback(target), params=params) as response:
                assert (response.status, await response.text()) == (404, ""), params
    assert (await env.source(source_id)).websub_secret is not None  # a stray unsubscribe changed nothing


async def test_lease_is_renewed_before_it_expires_with_the_same_secret(env: Env) -> None:
    source_id = await env.add_source()
    await env.service.renew_due()
    await env.hub.next_verification()
    first_secret = env.hub.requests[0]["hub.secret"]
    expires = (await env.source(source_id)).websub_expires_at
    assert expires is not None

    env.clock.now = expires - timedelta(hours=1, seconds=1)  # just over the 1 h margin left
    assert await env.service.renew_due() == 0
    assert len(env.hub.requests) == 1

    env.clock.advance(seconds=2)
    assert await env.service.renew_due() == 1
    await env.hub.next_verification()
    assert len(env.hub.requests) == 2
    assert env.hub.requests[1]["hub.secret"] == first_secret
    assert (await env.source(source_id)).websub_expires_at == env.clock() + timedelta(days=1)


async def test_refused_request_is_retried_later_not_at_every_run(env: Env) -> None:
    env.hub.status = 500
    source_id = await env.add_source()

    assert await env.service.renew_due() == 0
    assert await env.service.renew_due() == 0
    assert len(env.hub.requests) == 1

    env.hub.status = 202
    env.clock.advance(hours=6, seconds=1)
    assert await env.service.renew_due() == 1
    assert (await env.hub.next_verification()).status == 200
    assert (await env.source(source_id)).websub_expires_at == env.clock() + timedelta(days=1)


async def test_denied_subscription_forgets_its_secret_and_waits_a_day(env: Env) -> None:
    env.hub.deny = True
    source_id = await env.add_source()

    await env.service.renew_due()
    assert (await env.hub.next_verification()).status == 200
    source = await env.source(source_id)
    assert source.websub_secret is None
    assert source.websub_expires_at == env.clock() + timedelta(days=1, hours=1)
    assert await env.service.renew_due() == 0


async def test_disabled_source_is_unsubscribed_and_pushes_stop(env: Env) -> None:
    source_id = await env.add_source()
    await env.service.renew_due()
    await env.hub.next_verification()
    secret = (await env.source(source_id)).websub_secret
    assert secret is not None
    async with env.session_factory() as session, session.begin():  # type: ignore[operator]
        (await repo.get_source(session, source_id)).enabled = False  # type: ignore[union-attr]

    assert await env.service.renew_due() == 1
    verified = await env.hub.next_verification()

    assert env.hub.requests[-1]["hub.mode"] == "unsubscribe"
    assert "hub.secret" not in env.hub.requests[-1]
    assert (verified.mode, verified.status, verified.body) == ("unsubscribe", 200, verified.challenge)
    assert (await env.source(source_id)).websub_secret is None
    assert await push(env.callback(source_id), b"x", sign(secret, b"x")) == 403


async def test_hub_on_a_private_address_is_refused_without_the_setting(env: Env, session_factory) -> None:  # noqa: ANN001
    guarded = WebSubService(session_factory, WebSubConfig(public_base_url=env.base_url), env.clock)
    await guarded.start()
    try:
        source_id = await env.add_source()
        assert await guarded.subscribe(source_id) is False
    finally:
        await guarded.close()
    assert env.hub.requests == []


async def test_note_feed_records_the_hub_and_a_new_hub_resets_the_subscription(env: Env) -> None:
    source_id = await env.add_source(hub=False)
    hub = await env.service.note_feed(source_id, feed_url="https://news.example/feed.xml", hub_url=None,
                                      self_url=None, link_headers=('<https://hub.example/a>; rel="hub"',))
    assert hub == "https://hub.example/a"
    async with env.session_factory() as session, session.begin():  # type: ignore[operator]
        source = await repo.get_source(session, source_id)
        assert source is not None
        source.websub_secret, source.websub_expires_at = "s", env.clock() + timedelta(days=5)

    same = await env.service.note_feed(source_id, feed_url="https://news.example/feed.xml",
                                       hub_url="https://hub.example/a", self_url=None)
    assert same == "https://hub.example/a"
    assert (await env.source(source_id)).websub_secret == "s"

    assert await env.service.note_feed(source_id, feed_url="https://news.example/feed.xml", hub_url=None,
                                       self_url=None) is None
    source = await env.source(source_id)
    assert (source.hub_url, source.websub_secret, source.websub_expires_at) == (None, None, None)


async def test_push_becomes_a_poll_of_the_real_poller(env: Env, session_factory) -> None:  # noqa: ANN001
    async with FeedServer() as feeds:
        feeds.set_rss("/feed.xml", [{"title": "Arménie", "link": "https://news.example/1", "guid": "1"}])
        source_id = await env.add_source(feeds.url("/feed.xml"))
        fetcher = Fetcher(FetcherConfig(allow_private_networks=True, total_timeout=5))
        await fetcher.start()
        try:
            poller = Poller(
                session_factory=session_factory, fetcher=fetcher, matcher=Matcher(), clock=env.clock,
                config=PollerConfig(policy=PollPolicy(default_interval=600, min_interval=60, max_interval=3600),
                                    fetch_full_text=False),
            )
            assert await poller.poll_all_due() == []  # due in 30 minutes: nothing to do
            await env.service.renew_due()
            await env.hub.next_verification()
            secret = (await env.source(source_id)).websub_secret
            assert secret is not None

            assert await push(env.callback(source_id), b"<rss/>", sign(secret, b"<rss/>")) == 202
            reports = await poller.poll_all_due()
        finally:
            await fetcher.close()
    assert [r.source_id for r in reports] == [source_id]
    assert feeds.hits("/feed.xml") == 1


class RecordingScheduler:
    def __init__(self) -> None:
        self.jobs: list[tuple[object, dict[str, object]]] = []

    def add_job(self, func: object, trigger: str, **options: object) -> None:
        self.jobs.append((func, {"trigger": trigger, **options}))


async def test_attach_websub_mounts_routes_and_schedules_renewal_without_a_started_session(
    env: Env, session_factory  # noqa: ANN001
) -> None:
    scheduler = RecordingScheduler()
    app = web.Application()
    service = attach_websub(app, scheduler, session_factory=session_factory, public_url=env.base_url,
                            clock=env.clock, user_agent="Veille-test", allow_private_networks=True)
    assert {r.resource.canonical for r in app.router.routes()} == {"/websub/{source_id}"}
    [(job, options)] = scheduler.jobs
    assert options["trigger"] == "interval" and options["seconds"] == 600
    await env.add_source()

    assert await job() == 1  # type: ignore[operator]

    assert env.hub.requests[0]["hub.mode"] == "subscribe"
    assert service._session is None  # the per-request session was closed

"""The HTTP fetcher against a real local aiohttp server on 127.0.0.1 (private networks allowed)."""

from __future__ import annotations

import asyncio
import gzip
import socket
from collections.abc import AsyncIterator

import brotli
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from bot.fetcher.http import Fetcher, FetcherConfig, FetchError, discover_feeds

FEED = b"<?xml version='1.0'?><rss version='2.0'><channel><title>T</title><item><title>Un</title></item></channel></rss>"


class FailingResolver(AbstractResolver):
    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        raise OSError(f"Name or service not known: {host}")

    async def close(self) -> None:
        return None


class Server:
    def __init__(self) -> None:
        self.requests: list[web.Request] = []
        self.base = ""

    def url(self, path: str) -> str:
        return self.base + path


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    state = Server()
    app = web.Application()

    async def record(request: web.Request) -> None:
        state.requests.append(request)

    async def feed(request: web.Request) -> web.Response:
        await record(request)
        if request.headers.get("If-None-Match") == '"v1"' or request.headers.get("If-Modified-Since") == "Mon, 01 Jul 2024 00:00:00 GMT":
            return web.Response(status=304, headers={"ETag": '"v1"'})
        return web.Response(body=FEED, content_type="application/rss+xml",
                            headers={"ETag": '"v1"', "Last-Modified": "Mon, 01 Jul 2024 00:00:00 GMT"})

    async def gzipped(request: web.Request) -> web.Response:
        return web.Response(body=gzip.compress(FEED), headers={"Content-Encoding": "gzip", "Content-Type": "text/xml"})

    async def brotli_encoded(request: web.Request) -> web.Response:
        return web.Response(body=brotli.compress(FEED), headers={"Content-Encoding": "br", "Content-Type": "text/xml"})

    async def redirect(request: web.Request) -> web.Response:
        await record(request)
        status, target = int(request.match_info["status"]), request.query["to"]
        return web.Response(status=status, headers={"Location": target})

    async def chain(request: web.Request) -> web.Response:
        remaining = int(request.match_info["n"])
        if remaining == 0:
            return web.Response(body=FEED)
        return web.Response(status=302, headers={"Location": f"/chain/{remaining - 1}"})

    async def loop(request: web.Request) -> web.Response:
        return web.Response(status=302, headers={"Location": "/loop-b" if request.path == "/loop-a" else "/loop-a"})

    async def status(request: web.Request) -> web.Response:
        code = int(request.match_info["code"])
        headers = {"Retry-After": request.query["retry"]} if "retry" in request.query else {}
        return web.Response(status=code, text="error page", headers=headers)

    async def huge_declared(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": str(4 * 1024**3)})
        await response.prepare(request)
        try:
            await response.write(b"x" * 1024)
        except (ConnectionError, RuntimeError):
            pass
        return response

    async def endless_chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            for _ in range(64):  # 64 × 64 KB = 4 MB at most; the client stops long before
                await response.write(b"x" * 65536)
        except (ConnectionError, RuntimeError):
            pass
        return response

    async def one_byte_a_second(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            for _ in range(30):
                await response.write(b"<")
                await asyncio.sleep(1)
        except (ConnectionError, RuntimeError):
            pass
        return response

    async def empty(request: web.Request) -> web.Response:
        return web.Response(body=b"", content_type="application/rss+xml")

    async def page_with_feed_link(request: web.Request) -> web.Response:
        return web.Response(text='<html><head><link rel="alternate" type="application/rss+xml" href="/feed"></head>'
                                 "<body>Accueil</body></html>", content_type="text/html")

    async def page_without_link(request: web.Request) -> web.Response:
        return web.Response(text="<html><body>Rien</body></html>", content_type="text/html")

    async def common_path_feed(request: web.Request) -> web.Response:
        return web.Response(body=FEED, content_type="application/rss+xml")

    app.router.add_get("/feed", feed)
    app.router.add_get("/gzip", gzipped)
    app.router.add_get("/br", brotli_encoded)
    app.router.add_get("/redirect/{status}", redirect)
    app.router.add_get("/chain/{n}", chain)
    app.router.add_get("/loop-a", loop)
    app.router.add_get("/loop-b", loop)
    app.router.add_get("/status/{code}", status)
    app.router.add_get("/huge", huge_declared)
    app.router.add_get("/endless", endless_chunked)
    app.router.add_get("/slow", one_byte_a_second)
    app.router.add_get("/empty", empty)
    app.router.add_get("/site/", page_with_feed_link)
    app.router.add_get("/", page_without_link)
    app.router.add_get("/feed/", common_path_feed)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield state
    finally:
        await runner.cleanup()


CONFIG = FetcherConfig(allow_private_networks=True, contact_url="https://veille.example/about", total_timeout=10)


@pytest.fixture
async def fetcher() -> AsyncIterator[Fetcher]:
    async with Fetcher(CONFIG) as f:
        yield f


async def test_fetch_returns_body_validators_and_hash(server, fetcher):
    result = await fetcher.fetch(server.url("/feed"))
    assert (result.status, result.body, result.not_modified) == (200, FEED, False)
    assert (result.etag, result.last_modified) == ('"v1"', "Mon, 01 Jul 2024 00:00:00 GMT")
    assert result.content_type == "application/rss+xml"
    assert result.permanent_redirect is None and result.url == server.url("/feed")
    assert len(result.body_hash or "") == 64
    assert result.headers["etag"] == '"v1"'  # case-insensitive


async def test_user_agent_names_veille_and_the_contact_url(server, fetcher):
    await fetcher.fetch(server.url("/feed"))
    (request,) = server.requests
    assert request.headers["User-Agent"] == "Veille/0.1 (news alerts) (+https://veille.example/about)"
    assert "application/rss+xml" in request.headers["Accept"]
    assert "gzip" in request.headers["Accept-Encoding"] and "br" in request.headers["Accept-Encoding"]


@pytest.mark.parametrize(
    ("etag", "last_modified"), [('"v1"', None), (None, "Mon, 01 Jul 2024 00:00:00 GMT")], ids=["etag", "last-modified"]
)
async def test_conditional_get_gives_not_modified_without_a_body(server, fetcher, etag, last_modified):
    result = await fetcher.fetch(server.url("/feed"), etag=etag, last_modified=last_modified)
    assert (result.status, result.not_modified, result.body, result.body_hash) == (304, True, None, None)


@pytest.mark.parametrize("path", ["/gzip", "/br"])
async def test_compressed_bodies_are_decoded(server, fetcher, path):
    assert (await fetcher.fetch(server.url(path))).body == FEED


@pytest.mark.parametrize("status", [301, 308])
async def test_permanent_redirect_is_reported_for_the_stored_url(server, fetcher, status):
    result = await fetcher.fetch(server.url(f"/redirect/{status}?to=/feed"))
    assert result.status == 200 and result.url == server.url("/feed")
    assert result.permanent_redirect == server.url("/feed")


@pytest.mark.parametrize("status", [302, 303, 307])
async def test_temporary_redirect_is_followed_but_not_stored(server, fetcher, status):
    result = await fetcher.fetch(server.url(f"/redirect/{status}?to=/feed"))
    assert result.url == server.url("/feed") and result.permanent_redirect is None


async def test_permanent_redirect_stops_at_the_first_temporary_hop(server, fetcher):
    second = server.url("/redirect/302?to=/feed")
    result = await fetcher.fetch(server.url("/redirect/301?to=") + second.replace("?", "%3F").replace("=", "%3D"))
    assert result.url == server.url("/feed")
    assert result.permanent_redirect == second


async def test_five_redirects_are_followed_and_six_are_refused(server, fetcher):
    assert (await fetcher.fetch(server.url("/chain/5"))).body == FEED
    with pytest.raises(FetchError) as caught:
        await fetcher.fetch(server.url("/chain/6"))
    assert caught.value.kind == "redirects" and "more than 5 redirects" in str(caught.value)


async def test_redirect_loop_is_an_error(server, fetcher):
    with pytest.raises(FetchError, match="redirect loop") as caught:
        await fetcher.fetch(server.url("/loop-a"))
    assert caught.value.kind == "redirects"


async def test_redirect_to_another_scheme_is_refused(server, fetcher):
    with pytest.raises(FetchError) as caught:
        await fetcher.fetch(server.url("/redirect/302?to=file:///etc/passwd"))
    assert caught.value.kind == "refused"


@pytest.mark.parametrize(
    ("path", "status", "retry_after"),
    [("/status/404", 404, None), ("/status/500", 500, None), ("/status/503?retry=120", 503, 120.0),
     ("/status/429?retry=30", 429, 30.0), ("/status/410", 410, None)],
)
async def test_http_errors_carry_status_and_retry_after(server, fetcher, path, status, retry_after):
    with pytest.raises(FetchError) as caught:
        await fetcher.fetch(server.url(path))
    assert (caught.value.kind, caught.value.status, caught.value.retry_after_seconds) == ("http", status, retry_after)
    assert f"HTTP {status}" in str(caught.value)


async def test_declared_four_gigabyte_body_is_refused_before_reading(server, fetcher):
    with pytest.raises(FetchError, match="too large") as caught:
        await fetcher.fetch(server.url("/huge"))
    assert caught.value.kind == "too_large" and "4096.0 MB" in str(caught.value)


async def test_streamed_body_past_the_cap_is_abandoned(server):
    async with Fetcher(FetcherConfig(allow_private_networks=True, max_body_bytes=100_000)) as small:
        with pytest.raises(FetchError) as caught:
            await small.fetch(server.url("/endless"))
    assert caught.value.kind == "too_large"


async def test_server_sending_one_byte_a_second_times_out(server):
    async with Fetcher(FetcherConfig(allow_private_networks=True, total_timeout=1.0)) as impatient:
        with pytest.raises(FetchError) as caught:
            await impatient.fetch(server.url("/slow"))
    assert caught.value.kind == "timeout" and "did not answer within 1 seconds" in str(caught.value)


async def test_empty_body_is_returned_for_the_parser_to_judge(server, fetcher):
    result = await fetcher.fetch(server.url("/empty"))
    assert result.body == b"" and result.status == 200


async def test_tls_error_is_reported_as_tls(server, fetcher):
    with pytest.raises(FetchError) as caught:
        await fetcher.fetch(server.url("/feed").replace("http://", "https://"))
    assert caught.value.kind == "tls"


async def test_dns_failure_is_reported_as_dns():
    async with Fetcher(CONFIG, resolver=FailingResolver()) as fetcher:
        with pytest.raises(FetchError) as caught:
            await fetcher.fetch("http://no-such-host.example.test/feed")
    assert caught.value.kind == "dns" and "no-such-host.example.test" in str(caught.value)


async def test_closed_port_is_a_connection_error(fetcher):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(FetchError) as caught:
        await fetcher.fetch(f"http://127.0.0.1:{port}/feed")
    assert caught.value.kind == "connection"


async def test_fetch_before_start_is_a_programming_error():
    with pytest.raises(RuntimeError):
        await Fetcher(CONFIG).fetch("http://127.0.0.1/")


async def test_discovery_follows_the_page_declared_feed(server, fetcher):
    assert await discover_feeds(fetcher, server.url("/site/")) == (server.url("/feed"),)


async def test_discovery_of_a_feed_url_returns_it(server, fetcher):
    assert await discover_feeds(fetcher, server.url("/feed")) == (server.url("/feed"),)


async def test_discovery_probes_common_paths_when_the_page_declares_nothing(server, fetcher):
    assert await discover_feeds(fetcher, server.url("/")) == (server.url("/feed/"),)
    assert await discover_feeds(fetcher, server.url("/"), probe_common_paths=False) == ()

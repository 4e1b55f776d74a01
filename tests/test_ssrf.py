"""SSRF guard: static URL checks, and connect-time checks through the real aiohttp client.

Hostile hosts are exercised against a local aiohttp server on 127.0.0.1: refused with
``allow_private_networks=False``, fetched with ``True``. DNS names are mapped to addresses by a
test resolver, so no test traffic leaves the machine.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

import bot.fetcher.ssrf as ssrf
from bot.fetcher.http import Fetcher, FetcherConfig, FetchError, check_url_allowed
from bot.fetcher.ssrf import filter_resolved, is_forbidden_address, literal_address


class MapResolver(AbstractResolver):
    """Resolves the names it was given; any other name fails like a DNS miss."""

    def __init__(self, names: dict[str, str]) -> None:
        self.names = names
        self.asked: list[str] = []

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        self.asked.append(host)
        if host not in self.names:
            raise OSError(f"no such host: {host}")
        address = self.names[host]
        return [{"hostname": host, "host": address, "port": port, "family": socket.AF_INET, "proto": 0, "flags": 0}]

    async def close(self) -> None:
        return None


@pytest.fixture
async def local_server() -> AsyncIterator[tuple[int, list[str]]]:
    hits: list[str] = []

    async def feed(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(body=b"<rss><channel><item><title>x</title></item></channel></rss>")

    async def to_internal(request: web.Request) -> web.Response:
        hits.append(request.path)
        raise web.HTTPFound(f"http://internal.example.test:{request.url.port}/feed")

    app = web.Application()
    app.router.add_get("/feed", feed)
    app.router.add_get("/to-internal", to_internal)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield port, hits
    finally:
        await runner.cleanup()


# ---- static checks ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "javascript:alert(1)",
        "ftp://example.org/feed",
        "gopher://example.org/",
        "data:text/xml,<rss/>",
        "http://169.254.169.254/latest/meta-data/",
        "http://0x7f000001/",
        "http://2130706433/",
        "http://0177.0.0.1/",
        "http://127.1/",
        "http://127.0.0.1:8080/feed",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:7f00:1]/",
        "http://[64:ff9b::7f00:1]/",
        "http://[2002:7f00:1::]/",
        "http://[fe80::1]/",
        "http://[fc00::1]/",
        "http://10.1.2.3/",
        "http://172.16.0.1/",
        "http://192.168.1.1/",
        "http://100.64.0.1/",
        "http://224.0.0.1/",
        "http://0.0.0.0/",
        "http://240.0.0.1/",
        "http://localhost/",
        "http://LOCALHOST./",
        "http://feeds.localhost/",
        "http:///nohost",
    ],
)
def test_unsafe_urls_are_refused_with_a_clear_message(url):
    with pytest.raises(FetchError) as caught:
        check_url_allowed(url, allow_private=False)
    assert caught.value.kind == "refused"
    assert any(word in str(caught.value) for word in ("http://", "private", "loopback", "no host", "valid"))


@pytest.mark.parametrize(
    "url",
    ["https://www.eureporter.co/fr/feed/", "http://93.184.216.34/", "http://[2606:4700::1111]/", "http://cafe.de/"],
)
def test_public_urls_pass_the_static_check(url):
    check_url_allowed(url, allow_private=False)


@pytest.mark.parametrize("url", ["http://127.0.0.1/", "http://localhost/", "http://10.0.0.1/"])
def test_allow_private_networks_lets_local_addresses_through(url):
    check_url_allowed(url, allow_private=True)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "javascript:alert(1)"])
def test_allow_private_networks_never_allows_other_schemes(url):
    with pytest.raises(FetchError, match="only http:// and https://"):
        check_url_allowed(url, allow_private=True)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("0x7f000001", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("[::1]", "::1"),
        ("example.org", None),
        ("cafe.de", None),
        ("", None),
    ],
)
def test_literal_address_reads_every_notation(host, expected):
    address = literal_address(host)
    assert (str(address) if address is not None else None) == expected


@pytest.mark.parametrize(
    ("address", "forbidden"),
    [("8.8.8.8", False), ("2606:4700::1111", False), ("127.0.0.1", True), ("169.254.169.254", True),
     ("::ffff:8.8.8.8", True), ("ff02::1", True), ("::", True), ("198.18.0.1", True)],
)
def test_is_forbidden_address(address, forbidden):
    assert is_forbidden_address(ipaddress.ip_address(address)) is forbidden


def test_mixed_dns_answer_keeps_only_public_addresses():
    answers = [
        {"hostname": "x", "host": "127.0.0.1", "port": 80, "family": socket.AF_INET, "proto": 0, "flags": 0},
        {"hostname": "x", "host": "93.184.216.34", "port": 80, "family": socket.AF_INET, "proto": 0, "flags": 0},
    ]
    assert [a["host"] for a in filter_resolved("x", answers)] == ["93.184.216.34"]
    with pytest.raises(ssrf.AddressRefused, match="127.0.0.1"):
        filter_resolved("x", answers[:1])


# ---- connect-time checks with the real client ------------------------------------------------


async def test_literal_loopback_is_refused_and_never_contacted(local_server):
    port, hits = local_server
    async with Fetcher(FetcherConfig(allow_private_networks=False)) as fetcher:
        with pytest.raises(FetchError) as caught:
            await fetcher.fetch(f"http://127.0.0.1:{port}/feed")
    assert caught.value.kind == "refused"
    assert hits == []


async def test_dns_name_resolving_to_loopback_is_refused_at_connect_time(local_server):
    port, hits = local_server
    resolver = MapResolver({"feeds.example.test": "127.0.0.1"})
    async with Fetcher(FetcherConfig(allow_private_networks=False), resolver=resolver) as fetcher:
        with pytest.raises(FetchError) as caught:
            await fetcher.fetch(f"http://feeds.example.test:{port}/feed")
    assert caught.value.kind == "refused"
    assert "feeds.example.test (127.0.0.1)" in str(caught.value)
    assert resolver.asked == ["feeds.example.test"]  # the name passed the static check; DNS gave it away
    assert hits == []


async def test_dns_name_resolving_to_loopback_is_fetched_when_private_networks_are_allowed(local_server):
    port, hits = local_server
    resolver = MapResolver({"feeds.example.test": "127.0.0.1"})
    async with Fetcher(FetcherConfig(allow_private_networks=True), resolver=resolver) as fetcher:
        result = await fetcher.fetch(f"http://feeds.example.test:{port}/feed")
    assert result.status == 200 and result.body and result.body.startswith(b"<rss>")
    assert hits == ["/feed"]


async def test_redirect_to_a_name_resolving_to_a_private_address_is_refused(local_server, monkeypatch):
    # Treat 127.0.0.1 as "public" for this test only, so the first hop reaches the local server;
    # the redirect target resolves to 127.0.0.2, which stays forbidden.
    real_check = ssrf.is_forbidden_address
    monkeypatch.setattr(ssrf, "is_forbidden_address", lambda a: str(a) != "127.0.0.1" and real_check(a))
    port, hits = local_server
    resolver = MapResolver({"public.example.test": "127.0.0.1", "internal.example.test": "127.0.0.2"})
    async with Fetcher(FetcherConfig(allow_private_networks=False), resolver=resolver) as fetcher:
        with pytest.raises(FetchError) as caught:
            await fetcher.fetch(f"http://public.example.test:{port}/to-internal")
    assert caught.value.kind == "refused"
    assert "127.0.0.2" in str(caught.value)
    assert hits == ["/to-internal"]  # the first hop was served, the second never happened

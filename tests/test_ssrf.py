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


# ---- the bypass table (issue #10): every form, through the real client, none reaches a local server ----
#
# A "victim" server listens on 127.0.0.1 (and, for redirects, on 127.0.0.2) and records every request it
# gets, whatever the path. Each attempt goes through `Fetcher.fetch` with private networks refused; it
# must fail as `refused` and the victim must have seen nothing. `{port}` is the victim's port; names are
# resolved by `MapResolver` (a name in `HOSTILE_NAMES` resolves to the address beside it).

HOSTILE_NAMES = {
    "loopback.example.test": "127.0.0.1",
    "127.0.0.1.nip.io": "127.0.0.1",
    "metadata.google.internal": "169.254.169.254",
    "intranet.example.test": "10.0.0.5",
    "router.example.test": "192.168.1.1",
    "mapped.example.test": "::ffff:127.0.0.1",
    "nat64.example.test": "64:ff9b::7f00:1",
    "v6loop.example.test": "::1",
    "zero.example.test": "0.0.0.0",
}

DIRECT_ATTEMPTS = [
    ("dotted loopback", "http://127.0.0.1:{port}/feed"),
    ("decimal", "http://2130706433:{port}/feed"),
    ("hex", "http://0x7f000001:{port}/feed"),
    ("octal dotted", "http://0177.0.0.1:{port}/feed"),
    ("octal whole", "http://017700000001:{port}/feed"),
    ("hex dotted", "http://0x7f.0x0.0x0.0x1:{port}/feed"),
    ("zero-padded", "http://127.000.000.001:{port}/feed"),
    ("short form", "http://127.1:{port}/feed"),
    ("other loopback", "http://127.42.42.42:{port}/feed"),
    ("IPv6 loopback", "http://[::1]:{port}/feed"),
    ("IPv6 loopback long", "http://[0:0:0:0:0:0:0:1]:{port}/feed"),
    ("IPv4-mapped", "http://[::ffff:127.0.0.1]:{port}/feed"),
    ("IPv4-mapped hex", "http://[::ffff:7f00:1]:{port}/feed"),
    ("IPv4-mapped long", "http://[0:0:0:0:0:ffff:127.0.0.1]:{port}/feed"),
    ("IPv4-compatible", "http://[::127.0.0.1]:{port}/feed"),
    ("NAT64", "http://[64:ff9b::7f00:1]:{port}/feed"),
    ("NAT64 dotted", "http://[64:ff9b::127.0.0.1]:{port}/feed"),
    ("6to4", "http://[2002:7f00:1::]:{port}/feed"),
    ("link-local with zone", "http://[fe80::1%25lo]:{port}/feed"),
    ("unspecified IPv4", "http://0.0.0.0:{port}/feed"),
    ("unspecified short", "http://0:{port}/feed"),
    ("unspecified IPv6", "http://[::]:{port}/feed"),
    ("localhost", "http://localhost:{port}/feed"),
    ("localhost, trailing dot, capitals", "http://LocalHost.:{port}/feed"),
    ("*.localhost", "http://feeds.localhost:{port}/feed"),
    ("userinfo", "http://user:pass@127.0.0.1:{port}/feed"),
    ("userinfo looks public", "http://www.lemonde.fr@127.0.0.1:{port}/feed"),
    ("fragment looks public", "http://127.0.0.1:{port}/feed#@www.lemonde.fr"),
    ("upper-case scheme", "HTTP://127.0.0.1:{port}/feed"),
    ("https to loopback", "https://127.0.0.1:{port}/feed"),
    ("DNS name to loopback", "http://loopback.example.test:{port}/feed"),
    ("nip.io style name", "http://127.0.0.1.nip.io:{port}/feed"),
    ("DNS name to IPv4-mapped", "http://mapped.example.test:{port}/feed"),
    ("DNS name to NAT64", "http://nat64.example.test:{port}/feed"),
    ("DNS name to ::1", "http://v6loop.example.test:{port}/feed"),
    ("DNS name to 0.0.0.0", "http://zero.example.test:{port}/feed"),
    ("DNS name to metadata", "http://metadata.google.internal:{port}/computeMetadata/v1/"),
    ("DNS name to RFC 1918 (10/8)", "http://intranet.example.test:{port}/feed"),
    ("DNS name to RFC 1918 (192.168/16)", "http://router.example.test:{port}/feed"),
    ("cloud metadata", "http://169.254.169.254:{port}/latest/meta-data/"),
    ("AWS IPv6 metadata", "http://[fd00:ec2::254]:{port}/latest/meta-data/"),
    ("Alibaba metadata (shared 100.64/10)", "http://100.100.100.200:{port}/latest/meta-data/"),
    ("file scheme", "file:///etc/passwd"),
    ("ftp scheme", "ftp://127.0.0.1:{port}/feed"),
    ("gopher scheme", "gopher://127.0.0.1:{port}/_GET%20/feed"),
    ("dict scheme", "dict://127.0.0.1:{port}/info"),
    ("websocket scheme", "ws://127.0.0.1:{port}/feed"),
    ("javascript scheme", "javascript:fetch('http://127.0.0.1:{port}/feed')"),
    ("data scheme", "data:application/rss+xml,<rss/>"),
    ("scheme-relative", "//127.0.0.1:{port}/feed"),
]

REDIRECT_TARGETS = [
    ("redirect to 127.0.0.2", "http://127.0.0.2:{victim}/feed"),
    ("redirect to decimal 127.0.0.2", "http://2130706434:{victim}/feed"),
    ("redirect to IPv4-mapped 127.0.0.2", "http://[::ffff:127.0.0.2]:{victim}/feed"),
    ("redirect to a name resolving to 127.0.0.2", "http://inside.example.test:{victim}/feed"),
    ("redirect to cloud metadata", "http://169.254.169.254/latest/meta-data/iam/security-credentials/"),
    ("redirect to 0.0.0.0", "http://0.0.0.0:{victim}/feed"),
    ("redirect to [::]", "http://[::]:{victim}/feed"),
    ("redirect to file", "file:///etc/passwd"),
    ("redirect to gopher", "gopher://127.0.0.2:{victim}/_x"),
]


class FamilyResolver(MapResolver):
    """`MapResolver` that answers IPv6 addresses as AF_INET6."""

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        [answer] = await super().resolve(host, port, family)
        if ":" in answer["host"]:
            answer["family"] = socket.AF_INET6
        return [answer]


async def _victim(host: str) -> tuple[web.AppRunner, int, list[str]]:
    hits: list[str] = []

    async def anything(request: web.Request) -> web.Response:
        hits.append(request.path_qs)
        return web.Response(body=b"<rss><channel><item><title>secret</title></item></channel></rss>")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", anything)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, host, 0)
    await site.start()
    return runner, runner.addresses[0][1], hits


@pytest.fixture
async def victim() -> AsyncIterator[tuple[int, list[str]]]:
    runner, port, hits = await _victim("127.0.0.1")
    try:
        yield port, hits
    finally:
        await runner.cleanup()


def test_the_bypass_table_has_at_least_thirty_attempts():
    assert len(DIRECT_ATTEMPTS) + len(REDIRECT_TARGETS) >= 30
    assert len({name for name, _ in DIRECT_ATTEMPTS + REDIRECT_TARGETS}) == len(DIRECT_ATTEMPTS) + len(REDIRECT_TARGETS)


@pytest.mark.parametrize(("name", "template"), DIRECT_ATTEMPTS, ids=[name for name, _ in DIRECT_ATTEMPTS])
async def test_bypass_attempt_is_refused_and_reaches_no_local_server(victim, name, template):
    port, hits = victim
    resolver = FamilyResolver(HOSTILE_NAMES)
    async with Fetcher(FetcherConfig(allow_private_networks=False, total_timeout=5), resolver=resolver) as fetcher:
        with pytest.raises(FetchError) as caught:
            await fetcher.fetch(template.format(port=port))
    assert caught.value.kind == "refused", f"{name}: {caught.value.kind}: {caught.value}"
    assert hits == [], f"{name} reached the local server"


@pytest.mark.parametrize(("name", "target"), REDIRECT_TARGETS, ids=[name for name, _ in REDIRECT_TARGETS])
async def test_redirect_bypass_is_refused_after_the_first_hop(monkeypatch, name, target):
    # 127.0.0.1 plays a public site for this test only (so its redirect is served); the victim listens
    # on 127.0.0.2, still forbidden.
    real_check = ssrf.is_forbidden_address
    monkeypatch.setattr(ssrf, "is_forbidden_address", lambda a: str(a) != "127.0.0.1" and real_check(a))
    runner, victim_port, victim_hits = await _victim("127.0.0.2")
    public_hits: list[str] = []

    async def redirect(request: web.Request) -> web.Response:
        public_hits.append(request.path)
        raise web.HTTPFound(target.format(victim=victim_port))

    app = web.Application()
    app.router.add_get("/feed", redirect)
    public = web.AppRunner(app)
    await public.setup()
    await web.TCPSite(public, "127.0.0.1", 0).start()
    public_port = public.addresses[0][1]
    resolver = FamilyResolver({"public.example.test": "127.0.0.1", "inside.example.test": "127.0.0.2"})
    try:
        async with Fetcher(FetcherConfig(allow_private_networks=False, total_timeout=5),
                           resolver=resolver) as fetcher:
            with pytest.raises(FetchError) as caught:
                await fetcher.fetch(f"http://public.example.test:{public_port}/feed")
    finally:
        await public.cleanup()
        await runner.cleanup()
    assert caught.value.kind == "refused", f"{name}: {caught.value.kind}: {caught.value}"
    assert public_hits == ["/feed"], "the first hop must have been served"
    assert victim_hits == [], f"{name} reached the local server"

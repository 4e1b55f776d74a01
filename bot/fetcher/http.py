"""The only HTTP client in Veille: one shared aiohttp session behind the SSRF guard.

Rules (issue #3, "Fetching"):

- Limits: ``max_connections`` connections in all, ``max_per_host`` per host; ``connect_timeout``
  to connect and ``total_timeout`` for the whole fetch, redirects and body included (a server
  sending one byte a second is cut off by it); at most ``max_body_bytes`` of decoded body, read
  in chunks and abandoned as soon as it is passed (a ``Content-Length`` above the cap is refused
  before reading anything).
- gzip, deflate and brotli are accepted (aiohttp decodes them; brotli comes from the
  ``aiohttp[speedups]`` extra).
- Redirects are followed here, not by aiohttp, at most ``max_redirects`` of them, each hop
  checked by the SSRF guard. ``permanent_redirect`` is the address reached through an unbroken
  chain of 301/308 answers from the start: the caller stores it as the source's new URL.
- Conditional GET: ``If-None-Match``/``If-Modified-Since`` from the stored validators; a 304
  gives ``not_modified=True`` and no body. ``body_hash`` lets the caller skip parsing an
  unchanged body when the server sends no validators.
- Every failure is a ``FetchError`` with a ``kind`` (``refused``, ``dns``, ``timeout``, ``tls``,
  ``connection``, ``http``, ``too_large``, ``redirects``), the HTTP status when there was one,
  the server's ``Retry-After`` in seconds (429/503) and a message in plain words. Nothing
  else escapes ``fetch``: aiohttp's exceptions are translated here.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from urllib.parse import urljoin, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver
from multidict import CIMultiDict, CIMultiDictProxy

from bot.core.discovery import common_feed_urls, discover_feed_links
from bot.core.feeds import FeedParseError, NotAFeedError, parse_feed
from bot.core.polling import parse_retry_after
from bot.errors import VeilleError
from bot.fetcher.ssrf import AddressRefused, GuardedConnector, refuse_unsafe_url

log = logging.getLogger(__name__)

FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/rdf+xml;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.8, */*;q=0.5"
)
HTML_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.5"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
PERMANENT_REDIRECT_STATUSES = frozenset({301, 308})
READ_CHUNK_BYTES = 64 * 1024

FetchErrorKind = str  # "refused" | "dns" | "timeout" | "tls" | "connection" | "http" | "too_large" | "redirects"


class FetchError(VeilleError):
    """A fetch that failed; ``str(error)`` is a message for people."""

    def __init__(
        self,
        message: str,
        *,
        kind: FetchErrorKind,
        status: int | None = None,
        retry_after_seconds: float | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.retry_after_seconds = retry_after_seconds
        self.url = url


@dataclass(frozen=True)
class FetchResult:
    url: str
    status: int
    body: bytes | None
    not_modified: bool
    etag: str | None
    last_modified: str | None
    content_type: str | None
    permanent_redirect: str | None
    headers: Mapping[str, str]
    elapsed_ms: float
    body_hash: str | None


@dataclass(frozen=True)
class FetcherConfig:
    user_agent: str = "Veille/0.1 (news alerts)"
    contact_url: str | None = None
    connect_timeout: float = 10.0
    total_timeout: float = 30.0
    max_body_bytes: int = 10 * 1024 * 1024
    max_redirects: int = 5
    max_connections: int = 100
    max_per_host: int = 4
    allow_private_networks: bool = False

    @property
    def user_agent_header(self) -> str:
        return f"{self.user_agent} (+{self.contact_url})" if self.contact_url else self.user_agent


def check_url_allowed(url: str, allow_private: bool) -> None:
    """Static part of the SSRF guard; raises ``FetchError(kind="refused")``."""
    try:
        refuse_unsafe_url(url, allow_private)
    except AddressRefused as refusal:
        raise FetchError(str(refusal), kind="refused", url=url) from None


class Fetcher:
    """One shared session; ``async with Fetcher(config) as fetcher`` or ``start()``/``close()``.

    ``resolver`` replaces aiohttp's DNS resolver (tests map names to 127.0.0.1 with it); the
    guard applies to whatever it returns.
    """

    def __init__(self, config: FetcherConfig, *, resolver: AbstractResolver | None = None) -> None:
        self.config = config
        self._resolver = resolver
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        if self._session is not None:
            return
        connector = GuardedConnector(
            limit=self.config.max_connections,
            limit_per_host=self.config.max_per_host,
            resolver=self._resolver,
            ttl_dns_cache=300,
            allow_private=self.config.allow_private_networks,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(
                total=self.config.total_timeout,
                connect=self.config.connect_timeout,
                sock_connect=self.config.connect_timeout,
            ),
            headers={"User-Agent": self.config.user_agent_header},
            # Feeds need no cookies, and proxies from the environment would bypass the guard.
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,
            auto_decompress=True,
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> Fetcher:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def fetch(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        accept: str = FEED_ACCEPT,
    ) -> FetchResult:
        """GET ``url`` (see the module docstring); raises ``FetchError``, never aiohttp's errors."""
        if self._session is None:
            raise RuntimeError("Fetcher.start() was not called")
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.config.total_timeout):
                return await self._fetch_following_redirects(url, etag, last_modified, accept, started)
        except FetchError:
            raise
        except AddressRefused as refusal:
            raise FetchError(str(refusal), kind="refused", url=url) from None
        except Exception as error:  # translated, not swallowed: every branch raises
            raise _translate(error, url, self.config) from error

    async def _fetch_following_redirects(
        self, url: str, etag: str | None, last_modified: str | None, accept: str, started: float
    ) -> FetchResult:
        assert self._session is not None
        current = url.strip()
        seen = {current}
        permanent: str | None = None
        chain_is_permanent = True
        headers = {"Accept": accept}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        for hop in range(self.config.max_redirects + 1):
            check_url_allowed(current, self.config.allow_private_networks)
            async with self._session.get(current, headers=headers, allow_redirects=False) as response:
                status = response.status
                if status in REDIRECT_STATUSES and response.headers.get("Location"):
                    target = urljoin(current, response.headers["Location"].strip())
                    if target in seen:
                        raise FetchError(
                            f"the server sends the request round in a redirect loop ({current} → {target})",
                            kind="redirects", status=status, url=url,
                        )
                    if hop == self.config.max_redirects:
                        raise FetchError(
                            f"more than {self.config.max_redirects} redirects (last one to {target})",
                            kind="redirects", status=status, url=url,
                        )
                    if chain_is_permanent and status in PERMANENT_REDIRECT_STATUSES:
                        permanent = target
                    else:
                        chain_is_permanent = False
                    seen.add(target)
                    current = target
                    continue
                return await self._finish(response, current, permanent, started, url)
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    async def _finish(
        self, response: aiohttp.ClientResponse, final_url: str, permanent: str | None, started: float, url: str
    ) -> FetchResult:
        status = response.status
        headers = CIMultiDictProxy(CIMultiDict(response.headers))
        if status == 304:
            return FetchResult(
                url=final_url, status=status, body=None, not_modified=True,
                etag=headers.get("ETag"), last_modified=headers.get("Last-Modified"),
                content_type=headers.get("Content-Type"), permanent_redirect=permanent,
                headers=headers, elapsed_ms=_elapsed_ms(started), body_hash=None,
            )
        if status >= 400 or status < 200 or status in REDIRECT_STATUSES:
            retry_after = parse_retry_after(headers.get("Retry-After"), datetime.now(UTC))
            reason = response.reason or ""
            raise FetchError(
                f"the server answered HTTP {status} {reason}".rstrip(),
                kind="http", status=status, retry_after_seconds=retry_after, url=url,
            )
        body = await self._read_capped(response, url)
        return FetchResult(
            url=final_url, status=status, body=body, not_modified=False,
            etag=headers.get("ETag"), last_modified=headers.get("Last-Modified"),
            content_type=headers.get("Content-Type"), permanent_redirect=permanent,
            headers=headers, elapsed_ms=_elapsed_ms(started), body_hash=hashlib.sha256(body).hexdigest(),
        )

    async def _read_capped(self, response: aiohttp.ClientResponse, url: str) -> bytes:
        cap = self.config.max_body_bytes
        declared = response.content_length
        if declared is not None and declared > cap:
            raise FetchError(
                f"the response is too large ({_size(declared)}; the limit is {_size(cap)})",
                kind="too_large", status=response.status, url=url,
            )
        chunks: list[bytes] = []
        received = 0
        async for chunk in response.content.iter_chunked(READ_CHUNK_BYTES):
            received += len(chunk)
            if received > cap:
                raise FetchError(
                    f"the response is too large (more than {_size(cap)}); reading was stopped",
                    kind="too_large", status=response.status, url=url,
                )
            chunks.append(chunk)
        return b"".join(chunks)


def _translate(error: BaseException, url: str, config: FetcherConfig) -> FetchError:
    host = urlsplit(url).hostname or url
    if isinstance(error, AddressRefused):
        return FetchError(str(error), kind="refused", url=url)
    if isinstance(error, aiohttp.ClientConnectorDNSError):
        return FetchError(f"could not find the server {host} (DNS lookup failed)", kind="dns", url=url)
    if isinstance(error, aiohttp.ClientConnectorCertificateError):
        return FetchError(f"the TLS certificate of {host} is not valid ({error.certificate_error})",
                          kind="tls", url=url)
    if isinstance(error, (aiohttp.ClientSSLError, ssl.SSLError)):
        return FetchError(f"the secure (TLS) connection to {host} failed", kind="tls", url=url)
    if isinstance(error, TimeoutError):  # includes aiohttp's ServerTimeoutError
        return FetchError(f"{host} did not answer within {config.total_timeout:g} seconds",
                          kind="timeout", url=url)
    if isinstance(error, aiohttp.InvalidURL):
        return FetchError(f"{url!r} is not a valid web address", kind="refused", url=url)
    if isinstance(error, aiohttp.ClientPayloadError):
        return FetchError(f"the response from {host} was cut off or badly encoded", kind="connection", url=url)
    if isinstance(error, (aiohttp.ClientError, OSError)):
        return FetchError(f"could not connect to {host} ({type(error).__name__})", kind="connection", url=url)
    log.exception("fetch url=%s unexpected_error=%s", url, type(error).__name__)
    raise error


def _elapsed_ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)


def _size(count: int) -> str:
    if count >= 1024 * 1024:
        return f"{count / (1024 * 1024):.1f} MB"
    return f"{count / 1024:.0f} KB" if count >= 1024 else f"{count} bytes"


async def discover_feeds(fetcher: Fetcher, page_url: str, *, probe_common_paths: bool = True) -> tuple[str, ...]:
    """Feed URLs for a page: itself if it is a feed, else the feeds it declares, else common paths.

    Raises ``FetchError`` when the page itself cannot be fetched.
    """
    page = await fetcher.fetch(page_url, accept=HTML_ACCEPT + ", " + FEED_ACCEPT)
    if page.body is None:
        return ()
    try:
        parse_feed(page.body, url=page.url, content_type=page.content_type)
        return (page.url,)
    except NotAFeedError as not_a_feed:
        candidates = not_a_feed.candidates
    except FeedParseError:
        candidates = discover_feed_links(page.body, page.url)
    if candidates or not probe_common_paths:
        return candidates
    for candidate in common_feed_urls(page.url):
        try:
            result = await fetcher.fetch(candidate)
            if result.body and parse_feed(result.body, url=result.url, content_type=result.content_type).items:
                return (result.url,)
        except (FetchError, FeedParseError):
            continue
    return ()

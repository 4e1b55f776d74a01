"""A feed server on 127.0.0.1 for fetcher tests: static feeds, conditional GET, redirects, hostile bodies.

Rules:

* A path answers only once `set` (or a helper) configured it; anything else is 404.
* Conditional GET follows RFC 9110 §13.1: when the request has ``If-None-Match`` it alone decides
  (weak comparison, ``*`` matches anything); otherwise ``If-Modified-Since`` is compared with the
  resource's ``Last-Modified`` to the second. A match answers 304 with the validators and no body.
  Only 200 resources are conditional.
* ``etag="auto"`` derives a strong ETag from the body, so changing the body changes the ETag.
* Every request is recorded (`requests`, `hits`) before anything else happens, including 304s,
  redirects and 404s.
* Hostile helpers stay bounded on the server side too: a drip stops at the end of its body, an
  endless body stops after `limit` bytes, and `stop()` cancels whatever is still streaming.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any
from xml.etree import ElementTree as ET

from aiohttp import web
from multidict import CIMultiDict

RSS_TYPE = "application/rss+xml; charset=utf-8"
_CONTENT_NS = "http://purl.org/rss/1.0/modules/content/"
_DC_NS = "http://purl.org/dc/elements/1.1/"


@dataclass
class FeedRequest:
    method: str
    path: str
    headers: CIMultiDict[str]
    at: float


@dataclass
class _Resource:
    kind: str  # static | redirect | drip | endless
    body: bytes = b""
    status: int = 200
    content_type: str = RSS_TYPE
    etag: str | None = None
    last_modified: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    location: str = ""
    interval: float = 1.0
    chunk_size: int = 1
    limit: int = 0


class FeedServer:
    """Serve configured paths; see the module docstring for the rules."""

    def __init__(self, *, port: int = 0) -> None:
        self._port = port
        self._resources: dict[str, _Resource] = {}
        self._hits: Counter[str] = Counter()
        self.requests: list[FeedRequest] = []
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    async def start(self) -> FeedServer:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self._port)
        await site.start()
        self.base_url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FeedServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def url(self, path: str) -> str:
        return self.base_url + _normalise(path)

    # ---------------------------------------------------------------- configuring paths

    def set(
        self,
        path: str,
        body: bytes | str,
        *,
        content_type: str = RSS_TYPE,
        etag: str | None = None,
        last_modified: str | datetime | None = None,
        status: int = 200,
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
    ) -> None:
        """Serve `body` at `path`; ``etag="auto"`` derives a strong ETag from the body."""
        data = body.encode() if isinstance(body, str) else body
        if etag == "auto":
            etag = '"' + hashlib.sha256(data).hexdigest()[:20] + '"'
        elif etag is not None and not etag.startswith(('"', 'W/"')):
            etag = f'"{etag}"'
        if isinstance(last_modified, datetime):
            last_modified = format_datetime(last_modified.astimezone(UTC), usegmt=True)
        self._resources[_normalise(path)] = _Resource(
            "static", data, status, content_type, etag, last_modified, dict(headers or {}), delay
        )

    def set_rss(
        self,
        path: str,
        items: Iterable[dict[str, Any]],
        *,
        title: str = "Flux de test",
        link: str = "https://example.org/",
        description: str = "Actualités de test",
        language: str = "fr",
        **set_options: Any,
    ) -> bytes:
        """Serve a valid RSS 2.0 document built from `items`; returns its bytes (see `build_rss`)."""
        document = build_rss(items, title=title, link=link, description=description, language=language)
        self.set(path, document, **set_options)
        return document

    def remove(self, path: str) -> None:
        """The path answers 404 from now on."""
        self._resources.pop(_normalise(path), None)

    def redirect(self, path: str, to: str, status: int = 301) -> None:
        """`path` redirects to `to` (a path on this server or an absolute URL)."""
        self._resources[_normalise(path)] = _Resource("redirect", status=status, location=to)

    def drip(self, path: str, body: bytes | str, *, interval: float = 1.0, chunk_size: int = 1,
             content_type: str = RSS_TYPE) -> None:
        """Send `body` `chunk_size` bytes at a time, one chunk per `interval` seconds (slowloris feed)."""
        data = body.encode() if isinstance(body, str) else body
        self._resources[_normalise(path)] = _Resource(
            "drip", data, content_type=content_type, interval=interval, chunk_size=chunk_size
        )

    def endless(self, path: str, *, chunk: bytes = b"<item><title>x</title></item>\n" * 256,
                limit: int = 1 << 30, content_type: str = RSS_TYPE) -> None:
        """A body that never ends (chunked, no Content-Length) until `limit` bytes or the client leaves."""
        self._resources[_normalise(path)] = _Resource(
            "endless", chunk, content_type=content_type, limit=limit
        )

    def gzip_bomb(self, path: str, *, expanded_size: int = 100 * 1024 * 1024,
                  content_type: str = RSS_TYPE) -> int:
        """A small gzip body (``Content-Encoding: gzip``) that inflates to `expanded_size` bytes.

        Returns the compressed size. The inflated content is an RSS opening followed by spaces.
        """
        compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31 = gzip container
        head = b'<?xml version="1.0"?><rss version="2.0"><channel><title>'
        parts = [compressor.compress(head)]
        block = b" " * (1024 * 1024)
        remaining = expanded_size - len(head)
        while remaining > 0:
            piece = block[: min(len(block), remaining)]
            parts.append(compressor.compress(piece))
            remaining -= len(piece)
        parts.append(compressor.flush())
        body = b"".join(parts)
        self._resources[_normalise(path)] = _Resource(
            "static", body, content_type=content_type, headers={"Content-Encoding": "gzip"}
        )
        return len(body)

    # ---------------------------------------------------------------- inspection

    def hits(self, path: str) -> int:
        return self._hits[_normalise(path)]

    def requests_for(self, path: str) -> list[FeedRequest]:
        wanted = _normalise(path)
        return [r for r in self.requests if r.path == wanted]

    # ---------------------------------------------------------------- serving

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        self._hits[path] += 1
        self.requests.append(FeedRequest(request.method, path, CIMultiDict(request.headers), time.monotonic()))
        resource = self._resources.get(path)
        if resource is None:
            return web.Response(status=404, text="Not Found")
        if resource.kind == "redirect":
            return web.Response(status=resource.status, headers={"Location": resource.location})
        if resource.kind == "drip":
            return await self._stream(request, resource, drip=True)
        if resource.kind == "endless":
            return await self._stream(request, resource, drip=False)
        if resource.delay:
            await asyncio.sleep(resource.delay)
        validators = {}
        if resource.etag:
            validators["ETag"] = resource.etag
        if resource.last_modified:
            validators["Last-Modified"] = resource.last_modified
        if resource.status == 200 and _not_modified(request, resource):
            return web.Response(status=304, headers={**validators, **resource.headers})
        headers = {**validators, **resource.headers, "Content-Type": resource.content_type}
        body = b"" if request.method == "HEAD" else resource.body
        return web.Response(status=resource.status, body=body, headers=headers)

    async def _stream(self, request: web.Request, resource: _Resource, *, drip: bool) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": resource.content_type})
        if drip:
            response.content_length = len(resource.body)
        await response.prepare(request)
        try:
            if drip:
                for start in range(0, len(resource.body), resource.chunk_size):
                    await response.write(resource.body[start:start + resource.chunk_size])
                    await asyncio.sleep(resource.interval)
            else:
                written = 0
                while written < resource.limit:
                    await response.write(resource.body)
                    written += len(resource.body)
        except (ConnectionResetError, ConnectionError):
            return response  # the client gave up, which is what these tests want it to do
        await response.write_eof()
        return response


def _normalise(path: str) -> str:
    return path if path.startswith("/") else "/" + path


def _strip_weak(tag: str) -> str:
    return tag.strip().removeprefix("W/")


def _not_modified(request: web.Request, resource: _Resource) -> bool:
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None:
        if resource.etag is None:
            return False
        candidates = {_strip_weak(tag) for tag in if_none_match.split(",")}
        return "*" in candidates or _strip_weak(resource.etag) in candidates
    if_modified_since = request.headers.get("If-Modified-Since")
    if if_modified_since and resource.last_modified:
        try:
            since = parsedate_to_datetime(if_modified_since)
            modified = parsedate_to_datetime(resource.last_modified)
        except (TypeError, ValueError):
            return False  # RFC 9110: an invalid date makes the condition ignored
        return modified <= since
    return False


def build_rss(
    items: Iterable[dict[str, Any]],
    *,
    title: str = "Flux de test",
    link: str = "https://example.org/",
    description: str = "Actualités de test",
    language: str = "fr",
) -> bytes:
    """An RSS 2.0 document (UTF-8) with text escaped by the XML serializer.

    Item keys: title, link, guid, description, pub_date (datetime or RFC 822 string), and optionally
    content (content:encoded), author (dc:creator), categories (list of str). A guid equal to the link
    is a permalink; any other guid gets ``isPermaLink="false"``.
    """
    ET.register_namespace("content", _CONTENT_NS)
    ET.register_namespace("dc", _DC_NS)
    rss = ET.Element("rss", {"version": "2.0"})
    channel = ET.SubElement(rss, "channel")
    for tag, value in (("title", title), ("link", link), ("description", description), ("language", language)):
        ET.SubElement(channel, tag).text = value
    for item in items:
        element = ET.SubElement(channel, "item")
        for key in ("title", "link", "description"):
            if item.get(key) is not None:
                ET.SubElement(element, key).text = str(item[key])
        if item.get("guid") is not None:
            guid = ET.SubElement(element, "guid")
            guid.text = str(item["guid"])
            if item["guid"] != item.get("link"):
                guid.set("isPermaLink", "false")
        pub_date = item.get("pub_date")
        if pub_date is not None:
            ET.SubElement(element, "pubDate").text = (
                format_datetime(pub_date) if isinstance(pub_date, datetime) else str(pub_date)
            )
        if item.get("author"):
            ET.SubElement(element, f"{{{_DC_NS}}}creator").text = str(item["author"])
        for category in item.get("categories", ()):
            ET.SubElement(element, "category").text = category
        if item.get("content") is not None:
            ET.SubElement(element, f"{{{_CONTENT_NS}}}encoded").text = str(item["content"])
    return ET.tostring(rss, encoding="utf-8", xml_declaration=True)

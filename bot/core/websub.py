"""WebSub (W3C Recommendation, https://www.w3.org/TR/websub/): the pure decisions.

Rules:

- Discovery (§4): a feed advertises its hub with ``rel="hub"`` and its topic with ``rel="self"``,
  in HTTP ``Link`` headers or inside the document (Atom/RSS ``atom:link``, JSON Feed ``hubs``).
  Link headers win over the document; relative URLs are resolved against the fetched URL; the topic
  falls back to the fetched URL when no ``self`` is given. Only http(s) hubs count.
- Content distribution (§8): a push is accepted only when ``X-Hub-Signature: <method>=<hex>`` is the
  HMAC of the raw body under the subscription's secret, for ``method`` one of sha1, sha256, sha384,
  sha512 (§5.1.1 lists them; sha1 is what most hubs still send). The comparison is constant-time.
  A missing, malformed or unknown-method header is a failure, never a pass.
- Verification of intent (§5.3): a GET is answered with ``hub.challenge`` only when ``hub.topic``
  is the subscribed topic and ``hub.mode`` is the mode Veille asked for; ``denied`` is recorded.
- Leases (§5.1): a subscription is renewed once less than ``margin`` of it remains (or it never
  was verified); a hub's ``hub.lease_seconds`` is bounded to ``[MIN_LEASE, MAX_LEASE]``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urljoin, urlsplit

SIGNATURE_HEADER = "X-Hub-Signature"
SIGNATURE_METHODS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha384": hashlib.sha384,
                     "sha512": hashlib.sha512}
REQUESTED_LEASE = timedelta(days=10)
MIN_LEASE = timedelta(minutes=5)
MAX_LEASE = timedelta(days=30)
RENEWAL_MARGIN = timedelta(hours=1)
MAX_TOPIC_CHARS = 2048


@dataclass(frozen=True, slots=True)
class WebSubLinks:
    hub_url: str
    topic_url: str


def parse_link_header(value: str) -> list[tuple[str, frozenset[str]]]:
    """``Link`` header (RFC 8288) → ``[(target, rels)]``; malformed parts are skipped."""
    links: list[tuple[str, frozenset[str]]] = []
    position = 0
    while position < len(value):
        start = value.find("<", position)
        if start < 0:
            break
        end = value.find(">", start)
        if end < 0:
            break
        target = value[start + 1:end].strip()
        # Parameters run to the next link, i.e. the next "<" outside a quoted string.
        cursor, quoted = end + 1, False
        while cursor < len(value) and (quoted or value[cursor] != "<"):
            if value[cursor] == '"':
                quoted = not quoted
            cursor += 1
        rels: set[str] = set()
        for param in _split_params(value[end + 1:cursor]):
            name, _, raw = param.partition("=")
            if name.strip().lower() == "rel":
                rels.update(r.lower() for r in raw.strip().strip('"').split())
        links.append((target, frozenset(rels)))
        position = cursor
    return links


def _split_params(text: str) -> list[str]:
    params, current, quoted = [], [], False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == ";" and not quoted:
            params.append("".join(current))
            current = []
        else:
            current.append(char)
    params.append("".join(current))
    return [p.strip().rstrip(",").strip() for p in params if p.strip().rstrip(",").strip()]


def discover_websub(
    *, feed_url: str, hub_url: str | None, self_url: str | None, link_headers: Iterable[str] = ()
) -> WebSubLinks | None:
    """The hub and topic a fetched feed advertises (see the module rules), or None."""
    header_hub = header_self = None
    for header in link_headers:
        for target, rels in parse_link_header(header):
            if "hub" in rels and header_hub is None:
                header_hub = target
            if "self" in rels and header_self is None:
                header_self = target
    hub = _absolute(header_hub or hub_url, feed_url)
    if hub is None:
        return None
    topic = _absolute(header_self or self_url, feed_url) or feed_url
    return WebSubLinks(hub_url=hub, topic_url=topic)


def _absolute(url: str | None, base: str) -> str | None:
    if not url or not url.strip():
        return None
    resolved = urljoin(base, url.strip())
    parts = urlsplit(resolved)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(resolved) > MAX_TOPIC_CHARS:
        return None
    return resolved


def sign(secret: str | bytes, body: bytes, method: str = "sha256") -> str:
    """The ``X-Hub-Signature`` value a hub sends for ``body`` (tests and fake hubs use it)."""
    key = secret.encode() if isinstance(secret, str) else secret
    return f"{method}={hmac.new(key, body, SIGNATURE_METHODS[method]).hexdigest()}"


def signature_valid(secret: str | bytes | None, body: bytes, header: str | None) -> bool:
    """True when ``header`` is ``method=hex`` and the HMAC of ``body`` under ``secret`` matches."""
    if not secret or not header:
        return False
    method, sep, received = header.strip().partition("=")
    digest = SIGNATURE_METHODS.get(method.strip().lower())
    if not sep or digest is None:
        return False
    key = secret.encode() if isinstance(secret, str) else secret
    expected = hmac.new(key, body, digest).hexdigest()
    # Bytes, not str: compare_digest refuses non-ASCII str, and a hostile header must give False.
    return hmac.compare_digest(expected.encode(), received.strip().lower().encode("utf-8", "replace"))


@dataclass(frozen=True, slots=True)
class Verification:
    """What to answer a verification GET: ``status`` 200 with ``body`` (the challenge) or 404."""

    status: int
    body: str
    mode: str | None  # the mode that was confirmed: subscribe | unsubscribe | denied; None when refused
    lease_seconds: int | None = None
    reason: str = ""


def check_verification(params: Mapping[str, str], *, topic: str, expected_mode: str) -> Verification:
    """Decides a hub's verification request (§5.3) for a subscription to ``topic``."""
    mode = params.get("hub.mode", "")
    if params.get("hub.topic") != topic:
        return Verification(404, "", None, reason="unknown topic")
    if mode == "denied":  # §5.2: the hub refused; nothing to echo
        return Verification(200, "", "denied", reason=params.get("hub.reason", "")[:300])
    if mode != expected_mode:
        return Verification(404, "", None, reason=f"mode {mode!r} was not requested")
    challenge = params.get("hub.challenge", "")
    if not challenge:
        return Verification(404, "", None, reason="no challenge")
    lease = _int(params.get("hub.lease_seconds")) if mode == "subscribe" else None
    return Verification(200, challenge, mode, lease_seconds=lease)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def lease_expiry(now: datetime, lease_seconds: int | None) -> datetime:
    """When a verified subscription ends; a missing or absurd lease is bounded."""
    lease = REQUESTED_LEASE if lease_seconds is None else timedelta(seconds=lease_seconds)
    return now + min(max(lease, MIN_LEASE), MAX_LEASE)


def needs_renewal(now: datetime, expires_at: datetime | None, *, margin: timedelta = RENEWAL_MARGIN) -> bool:
    """True when the subscription was never verified or ends within ``margin``."""
    return expires_at is None or expires_at - margin <= now


def callback_url(public_base_url: str, source_id: int) -> str:
    """Where the hub calls back for a source: ``<origin of the public URL>/websub/<id>``."""
    parts = urlsplit(public_base_url)
    return f"{parts.scheme}://{parts.netloc}/websub/{source_id}"


def subscription_form(
    *, mode: str, topic: str, callback: str, secret: str | None, lease: timedelta = REQUESTED_LEASE
) -> dict[str, str]:
    """The body of a subscribe/unsubscribe request to a hub (§5.1)."""
    form = {"hub.callback": callback, "hub.mode": mode, "hub.topic": topic}
    if mode == "subscribe":
        form["hub.lease_seconds"] = str(int(lease.total_seconds()))
        if secret:
            form["hub.secret"] = secret
    return form


def hub_of_fetch(*, fetched_url: str, hub_url: str | None, self_url: str | None,
                 headers: Mapping[str, str] | None) -> str | None:
    """The hub of a fetched and parsed feed (``FetchResult.headers`` may hold several ``Link``)."""
    getall = getattr(headers, "getall", None)
    links: tuple[str, ...] = tuple(getall("Link", ())) if getall else (
        (headers["Link"],) if headers and "Link" in headers else ())
    found = discover_websub(feed_url=fetched_url, hub_url=hub_url, self_url=self_url, link_headers=links)
    return found.hub_url if found else None

"""Identity of feed items: canonical URLs and stable item keys.

Rules (issue #3, "Identity and dedup"):

- A *canonical URL* is an absolute http(s) URL with the scheme and host lower-cased, the default
  port (80 for http, 443 for https) dropped, an empty path written as ``/``, the fragment removed
  and tracking parameters removed (``utm_*``, ``fbclid``, ``gclid`` and the others listed in
  ``TRACKING_PARAMETERS``). The remaining query parameters keep their order and spelling.
  Anything that is not http(s) (``javascript:``, ``mailto:``, ``file:``, ``data:``) has no
  canonical URL: ``canonical_url`` returns ``None``.
- The *key* of an item is, in this order of preference:
  1. its GUID (RSS ``<guid>``, Atom ``<id>``, JSON Feed ``id``), whitespace-trimmed: ``guid:<value>``;
  2. else its canonical link: ``url:<canonical url>``;
  3. else a hash of its title and publication date: ``hash:<hex>``.
  Keys longer than ``MAX_KEY_LENGTH`` are replaced by ``<prefix>:sha256:<hex>`` so they fit an
  indexed database column.
- The *content hash* covers the title, summary and content; when it changes for a known key the
  item was updated, it is not a new article.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

MAX_KEY_LENGTH = 512

# Parameters that only say where a click came from. Lower-case; compared case-insensitively.
TRACKING_PARAMETERS = frozenset(
    {
        "fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "twclid", "ttclid",
        "igshid", "mc_cid", "mc_eid", "_ga", "_gl", "_hsenc", "_hsmi", "mkt_tok", "oly_anon_id",
        "oly_enc_id", "vero_id", "wt.mc_id", "xtor", "at_medium", "at_campaign", "ocid", "cmpid",
        "ncid", "sr_share", "spm", "ref_src", "ref_url",
    }
)
TRACKING_PREFIXES = ("utm_", "pk_", "mtm_")

_DEFAULT_PORTS = {"http": 80, "https": 443}


def is_tracking_parameter(name: str) -> bool:
    lowered = name.lower()
    return lowered in TRACKING_PARAMETERS or lowered.startswith(TRACKING_PREFIXES)


def canonical_url(url: str | None, base: str | None = None) -> str | None:
    """The canonical form of ``url`` (resolved against ``base``), or None if it is not http(s)."""
    if not url:
        return None
    # Feeds carry links with stray whitespace and newlines around (and sometimes inside) them.
    candidate = "".join(url.split())
    if not candidate:
        return None
    if base and not candidate.lower().startswith(("http://", "https://")):
        try:
            candidate = urljoin(base, candidate)
        except ValueError:
            return None
    try:
        parts = urlsplit(candidate)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        return None
    host = (parts.hostname or "").rstrip(".")
    if not host:
        return None
    if ":" in host:  # IPv6 literal: urlsplit drops the brackets
        host = f"[{host}]"
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    # Credentials (user:pass@) are dropped: they never belong to an article's identity.
    path = parts.path or "/"
    query = _strip_tracking(parts.query)
    return urlunsplit((scheme, netloc, path, query, ""))


def _strip_tracking(query: str) -> str:
    if not query:
        return ""
    pairs = parse_qsl(query, keep_blank_values=True)
    kept = [(name, value) for name, value in pairs if not is_tracking_parameter(name)]
    if len(kept) == len(pairs):
        return query  # untouched: keep the publisher's own encoding
    return urlencode(kept)


def item_key(
    *, guid: str | None, url: str | None, title: str | None, published: datetime | None
) -> str:
    """The stable identity of an item (see the module docstring for the order of preference)."""
    if guid and guid.strip():
        return _fit("guid", guid.strip())
    if url:
        return _fit("url", url)
    date_part = published.isoformat() if published else ""
    digest = hashlib.sha256(f"{(title or '').strip()}\x1f{date_part}".encode()).hexdigest()
    return f"hash:{digest[:40]}"


def _fit(prefix: str, value: str) -> str:
    key = f"{prefix}:{value}"
    if len(key) <= MAX_KEY_LENGTH:
        return key
    return f"{prefix}:sha256:{hashlib.sha256(value.encode()).hexdigest()}"


def content_hash(title: str, summary: str, content_text: str | None) -> str:
    """A hash of what a reader sees; a different hash for a known key means "updated"."""
    joined = "\x1f".join((title, summary, content_text or ""))
    return hashlib.sha256(joined.encode()).hexdigest()[:32]

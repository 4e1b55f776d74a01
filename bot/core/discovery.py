"""Feed discovery: which feed URLs a web page offers.

Rules:

- Declared feeds come first, in page order: ``<link rel="alternate">`` (``rel`` may hold several
  words) whose ``type`` is RSS, Atom, RDF or JSON Feed, resolved against ``<base href>`` or the
  page URL.
- Then links in the page body whose address looks like a feed (``/feed``, ``/rss``, ``.rss``,
  ``.xml``, ``atom``), same host only, at most ``MAX_BODY_CANDIDATES`` of them.
- Then nothing else: probing the common paths (``common_feed_urls``) costs requests, so the
  fetching edge decides whether to try them.
- Every candidate is a canonical http(s) URL (see ``identity.canonical_url``); duplicates are
  dropped, and ``javascript:``/``data:`` links never come out.

Pure: no I/O. The HTML is parsed with lxml's HTML parser, which never fetches anything.
"""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

from lxml import etree, html

from bot.core.identity import canonical_url

FEED_MEDIA_TYPES = frozenset(
    {
        "application/rss+xml",
        "application/atom+xml",
        "application/rdf+xml",
        "application/feed+json",
        "application/json",
        "application/xml",
        "text/xml",
        "application/x.atom+xml",
        "application/x-atom+xml",
    }
)
MAX_BODY_CANDIDATES = 5
MAX_HTML_BYTES = 2 * 1024 * 1024

# Paths that WordPress, Blogger, Ghost, Hugo, Jekyll, Drupal and SPIP use for their main feed.
COMMON_FEED_PATHS = (
    "/feed/",
    "/rss",
    "/rss.xml",
    "/feed.xml",
    "/atom.xml",
    "/index.xml",
    "/feed.json",
    "/feeds/posts/default",
    "/spip.php?page=backend",
    "/?feed=rss2",
)

_FEEDISH_HREF = re.compile(r"(/feed/?$|/rss/?$|\.rss$|/atom/?$|atom\.xml$|rss\.xml$|feed\.xml$|/feed\.json$)", re.I)


def discover_feed_links(page: bytes | str, base_url: str) -> tuple[str, ...]:
    """Feed URLs a web page declares or links to, best first."""
    if not page:
        return ()
    if isinstance(page, str):
        page = page.encode("utf-8", "replace")
    page = page[:MAX_HTML_BYTES]
    try:
        document = html.document_fromstring(page, parser=_html_parser())
    except (etree.ParserError, ValueError):
        return ()
    base = base_url
    for base_element in document.iter("base"):
        href = base_element.get("href")
        if href:
            base = urljoin(base_url, href.strip())
        break

    found: list[str] = []
    for link in document.iter("link"):
        rel_words = (link.get("rel") or "").lower().split()
        media_type = (link.get("type") or "").split(";")[0].strip().lower()
        if "alternate" in rel_words and media_type in FEED_MEDIA_TYPES:
            _add(found, canonical_url(link.get("href"), base))

    site_host = urlsplit(base_url).hostname
    from_body = 0
    for anchor in document.iter("a"):
        if from_body >= MAX_BODY_CANDIDATES:
            break
        href = (anchor.get("href") or "").strip()
        if not href or not _FEEDISH_HREF.search(href.split("?")[0]):
            continue
        url = canonical_url(href, base)
        if url and urlsplit(url).hostname == site_host and url not in found:
            found.append(url)
            from_body += 1
    return tuple(found)


def common_feed_urls(site_url: str) -> tuple[str, ...]:
    """Usual feed addresses on the site of ``site_url``, for the edge to probe one by one."""
    parts = urlsplit(site_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return ()
    root = f"{parts.scheme}://{parts.netloc}"
    urls: list[str] = []
    for path in COMMON_FEED_PATHS:
        _add(urls, canonical_url(root + path))
    return tuple(urls)


def looks_like_html(text: str) -> bool:
    """True when a document starts like a web page (used on bodies that fail to parse as a feed)."""
    head = text[:2048].lstrip().lower()
    return head.startswith("<!doctype html") or head.startswith("<html") or "<html" in head[:512] or (
        "<head" in head and "<body" in text[:65536].lower()
    )


def _add(urls: list[str], url: str | None) -> None:
    if url and url not in urls:
        urls.append(url)


def _html_parser() -> html.HTMLParser:
    # no_network: never fetch a DTD or anything else while reading someone else's page.
    return html.HTMLParser(no_network=True, remove_comments=True, huge_tree=False)

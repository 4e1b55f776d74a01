"""Feed parsing: RSS 0.9x/1.0/2.0, Atom 0.3/1.0 and JSON Feed 1.x into plain-text items.

What comes out (``ParsedFeed`` and its ``FeedItem`` values):

- Titles, summaries and content are PLAIN TEXT: HTML tags removed (``<script>``/``<style>`` with
  their content), entities decoded, zero-width and bidi control characters removed, whitespace
  collapsed. Titles and summaries are one line; ``content_text`` keeps one ``\\n`` between
  paragraphs. Lengths are capped: title ``MAX_TITLE_CHARS``, summary ``MAX_SUMMARY_CHARS``,
  content ``MAX_CONTENT_CHARS`` (cut at a word, ending in "…").
- Links are absolute canonical http(s) URLs (relative links resolved against ``xml:base`` or the
  feed URL; ``javascript:`` and other schemes give ``url=None``).
- Dates are UTC-aware; a missing or unreadable date is ``None`` (the caller uses first-seen time).
- Language is the lower-case primary subtag (``fr-FR`` → ``fr``) of the item, else of the feed.
- Items are keyed by ``identity.item_key``; items sharing a key are merged (the newest wins),
  then sorted newest first (undated items after dated ones, in document order) and cut to
  ``MAX_ITEMS``.

How a body is read, and why:

1. Decoding. A BOM wins; else the body is tried as UTF-8; else the declared charset (XML
   declaration, then HTTP ``Content-Type``); else ``charset_normalizer``'s guess; else cp1252.
   UTF-8 that was encoded twice ("Ã©tÃ©") is repaired run by run. Real feeds lie about their
   charset often enough that a declaration is a hint, not a fact.
2. Cleaning. Anything before the XML declaration or the root element (PHP warnings, BOMs,
   blank lines) is dropped; characters XML forbids are removed; HTML named entities
   (``&eacute;``, ``&nbsp;``) become characters and a bare ``&`` becomes ``&amp;``.
3. Safety. A DOCTYPE that declares entities is refused before any parser sees it
   (billion laughs, quadratic blow-up, external entities); other DOCTYPEs are removed. lxml then
   runs with ``resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False``.
4. Parsing. lxml in recover mode reads the tree and this module walks it; feedparser is the
   fallback for damaged documents only (lxml reported an error): it is used when it reads more
   items than lxml's recovered tree holds. lxml is used first
   because it is ~10× faster than feedparser and never expands entities (see
   ``bench/bench_parsing.py``); feedparser 6 does not read JSON Feed, which is read here with ``json``.
5. A web page instead of a feed raises ``NotAFeedError`` with the feeds the page declares.
"""

from __future__ import annotations

import html as html_lib
import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from lxml import etree

from bot.core.discovery import discover_feed_links, looks_like_html
from bot.core.identity import canonical_url, content_hash, item_key
from bot.errors import VeilleError

MAX_ITEMS = 1000
MAX_TITLE_CHARS = 1_000
MAX_SUMMARY_CHARS = 20_000
MAX_CONTENT_CHARS = 200_000
MAX_AUTHOR_CHARS = 200
MAX_CATEGORIES = 30
MAX_CATEGORY_CHARS = 100
# Summary made from the content when an item has no description of its own.
SUMMARY_FROM_CONTENT_CHARS = 1_000
# Damaged documents up to this size are also read by feedparser (slow: ~0.7 ms an item).
FALLBACK_MAX_CHARS = 2_000_000
# Raw markup read per field before stripping: bounds the work on a 1 MB title.
RAW_FIELD_FACTOR = 8


class FeedParseError(VeilleError):
    """The body could not be read as a feed; the message says why in plain words."""


class NotAFeedError(FeedParseError):
    """The body is a web page, not a feed; ``candidates`` are the feeds it offers."""

    def __init__(self, message: str, candidates: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.candidates = candidates


@dataclass(frozen=True, slots=True)
class FeedItem:
    key: str
    guid: str | None
    url: str | None
    title: str
    summary: str
    content_text: str | None
    published: datetime | None
    author: str | None
    categories: tuple[str, ...]
    language: str | None
    content_hash: str


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    title: str | None
    site_url: str | None
    language: str | None
    ttl_seconds: int | None
    hub_url: str | None
    self_url: str | None
    items: tuple[FeedItem, ...]


# --------------------------------------------------------------------------------------------
# Entry point


def parse_feed(body: bytes, *, url: str, content_type: str | None = None) -> ParsedFeed:
    """Parse a feed body fetched from ``url``; raises ``FeedParseError`` or ``NotAFeedError``."""
    if not body or not body.strip():
        raise FeedParseError("the feed is empty (the server sent no content)")
    text = decode_body(body, content_type)
    text = _strip_leading_junk(text)
    if not text:
        raise FeedParseError("the feed is empty (the server sent only whitespace)")
    if text[0] in "{[" or (content_type and "json" in content_type.lower() and text[0] != "<"):
        return _parse_json_feed(text, url)
    if looks_like_html(text) and not _ROOT_START.search(text[:4096]):
        raise _not_a_feed(text, url)
    text = _make_xml_safe(text)
    return _parse_xml_feed(text, url)


# --------------------------------------------------------------------------------------------
# Decoding and cleaning

_BOMS = (
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)
_XML_FORBIDDEN_BYTES = bytes(c for c in range(32) if c not in (9, 10, 13))
_XML_DECL_ENCODING = re.compile(rb"""<\?xml[^>]*?encoding\s*=\s*["']\s*([A-Za-z0-9._:-]+)""")
_HTTP_CHARSET = re.compile(r"""charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.I)
# A run of characters that UTF-8 bytes become when decoded as cp1252/Latin-1: a lead byte
# (Â..ô) followed by continuation bytes (0x80..0xBF and their cp1252 look-alikes).
_MOJIBAKE_RUN = re.compile(
    "[\u00c2-\u00f4][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc"
    "\u2013\u2014\u2018-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122]{1,3}"
)


def decode_body(body: bytes, content_type: str | None = None) -> str:
    """The text of a feed body (see the module docstring, step 1), without the C0 control
    characters XML forbids."""
    for bom, encoding in _BOMS:
        if body.startswith(bom):
            return _INVALID_XML_CHARS.sub("", body[len(bom):].decode(encoding, "replace"))
    if body[:2] in (b"<\x00", b"\x00<"):  # UTF-16 without a BOM
        return _INVALID_XML_CHARS.sub("", body.decode("utf-16-le" if body[0] == 0x3C else "utf-16-be", "replace"))
    # C0 control bytes never occur inside UTF-8 or single-byte characters, and XML forbids them:
    # dropping them from the bytes is much cheaper than a regex over the decoded text.
    body = body.translate(None, _XML_FORBIDDEN_BYTES)
    try:
        return repair_double_utf8(body.decode("utf-8"))
    except UnicodeDecodeError:
        pass
    for declared in _declared_encodings(body, content_type):
        try:
            return body.decode(declared)
        except (UnicodeDecodeError, LookupError):
            continue
    guessed = _guess_non_latin(body)
    return guessed if guessed is not None else body.decode("cp1252", "replace")


def _guess_non_latin(body: bytes) -> str | None:
    """The text of an undeclared non-Latin body (Cyrillic, Greek…), or None for a Latin one.

    charset_normalizer tells scripts apart well but hesitates between Latin code pages on short
    French text (cp1250 "ś" for cp1252 "œ"); a Latin guess is therefore replaced by cp1252,
    the code page of nearly every Western feed that is not UTF-8.
    """
    try:
        from charset_normalizer import from_bytes
    except ImportError:  # pragma: no cover - a dependency
        return None
    best = from_bytes(body[:200_000]).best()
    if best is None or not best.encoding:
        return None
    try:
        text = body.decode(best.encoding, "replace")
    except LookupError:
        return None
    letters = [c for c in text if ord(c) > 0x7F and c.isalpha()]
    non_latin = sum(1 for c in letters if ord(c) > 0x24F)
    return text if letters and non_latin * 2 > len(letters) else None


def _declared_encodings(body: bytes, content_type: str | None) -> list[str]:
    found: list[str] = []
    match = _XML_DECL_ENCODING.search(body[:512])
    if match:
        found.append(match.group(1).decode("ascii").lower())
    if content_type:
        http_match = _HTTP_CHARSET.search(content_type)
        if http_match:
            found.append(http_match.group(1).lower())
    # A "UTF-8" label on bytes that are not UTF-8 is the classic lie; Latin-1 content is the usual
    # truth, and cp1252 is its superset that browsers use for it.
    return [("cp1252" if e in ("iso-8859-1", "latin-1", "latin1", "us-ascii", "ascii") else e)
            for e in found if e.replace("_", "-") not in ("utf-8", "utf8")]


def repair_double_utf8(text: str) -> str:
    """Undo UTF-8 that was decoded as cp1252/Latin-1 and encoded again ("Ã©" → "é")."""
    # Cheap first look for the lead characters French and Cyrillic mojibake starts with; the
    # full pattern also starts on "é" and "à", which every French feed is full of.
    if not any(lead in text for lead in _MOJIBAKE_LEADS) or not _MOJIBAKE_HINT.search(text):
        return text
    return _MOJIBAKE_RUN.sub(_repair_run, text)


def _repair_run(match: re.Match[str]) -> str:
    run = match.group(0)
    try:
        raw = run.encode("cp1252")
    except UnicodeEncodeError:
        try:
            raw = run.encode("latin-1")
        except UnicodeEncodeError:
            return run
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return run


_MOJIBAKE_LEADS = ("\u00c3", "\u00c2", "\u00e2\u20ac", "\u00c5", "\u00d0", "\u00d1")
_MOJIBAKE_HINT = re.compile(
    "[\u00c2\u00c3\u00c5\u00e2\u00d0\u00d1][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e"
    "\u0192\u02c6\u02dc\u2013\u2014\u2018-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122]"
)
_ROOT_START = re.compile(r"<(?:[A-Za-z_][\w.-]*:)?(rss|feed|RDF|channel)[\s>/]")
_XML_DECL = re.compile(r"^<\?xml[^>]*\?>", re.I)


def _strip_leading_junk(text: str) -> str:
    text = text.lstrip("\ufeff\x00 \t\r\n")
    if not text or text[0] in "{[":
        return text
    start = text.find("<?xml")
    if start < 0:
        root = _ROOT_START.search(text[:65536])
        start = root.start() if root and not looks_like_html(text) else text.find("<")
    if start < 0:
        return text
    # Keep the junk out, and drop the declaration: the text is already decoded, so its
    # encoding label can only mislead the parser.
    return _XML_DECL.sub("", text[start:], count=1).lstrip()


_INVALID_XML_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
# Only ampersands XML would choke on: bare ones, HTML named entities, and character references;
# "&amp;", "&lt;", "&gt;", "&quot;", "&apos;" are skipped by the regex itself (no Python call each).
_AMPERSAND = re.compile(r"&(?!(?:amp|lt|gt|quot|apos);)(#[0-9]{1,8};|#[xX][0-9a-fA-F]{1,8};|[A-Za-z][A-Za-z0-9]{0,31};)?")
_XML_ENTITIES = frozenset({"amp;", "lt;", "gt;", "quot;", "apos;"})
_DOCTYPE = re.compile(r"<!DOCTYPE\s[^\[>]*(\[.*?\]\s*)?>", re.I | re.S)
_ENTITY_DECLARATION = re.compile(r"<!ENTITY", re.I)


def _make_xml_safe(text: str) -> str:
    root = _ROOT_START.search(text)
    prologue = text[: root.start()] if root else text
    if _ENTITY_DECLARATION.search(prologue):
        raise FeedParseError(
            "the feed declares its own XML entities (a DOCTYPE with ENTITY), which can be used to "
            "exhaust memory; it was refused without being read"
        )
    if "<!DOCTYPE" in prologue or "<!doctype" in prologue:
        text = _DOCTYPE.sub("", text, count=1)
    if "\ufffe" in text or "\uffff" in text:  # the C0 controls went with the bytes (decode_body)
        text = _INVALID_XML_CHARS.sub("", text)
    return _AMPERSAND.sub(_fix_ampersand, text)


def _fix_ampersand(match: re.Match[str]) -> str:
    reference = match.group(1)
    if reference is None:
        return "&amp;"  # a bare "&" in text: escape it rather than lose the text after it
    if reference[0] == "#":
        try:
            code = int(reference[2:-1], 16) if reference[1] in "xX" else int(reference[1:-1])
        except ValueError:
            return ""
        if code in (0x9, 0xA, 0xD) or 0x20 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD or 0x10000 <= code <= 0x10FFFF:
            return match.group(0)
        return ""  # a reference to a character XML forbids
    if reference in _XML_ENTITIES:
        return match.group(0)
    character = html_lib.entities.html5.get(reference)
    if character is None:
        return "&amp;" + reference
    return "".join(f"&#{ord(c)};" for c in character)


# --------------------------------------------------------------------------------------------
# Plain text

_DROPPED_ELEMENTS = re.compile(
    r"<(script|style|noscript|template|iframe|svg|head|object)\b[^>]*>.*?</\1\s*>", re.I | re.S
)
_BLOCK_TAG = re.compile(
    r"<\s*/?\s*(?:p|div|br|li|ul|ol|h[1-6]|blockquote|tr|table|section|article|header|footer|"
    r"figure|figcaption|pre|hr|dd|dt|dl|aside|nav)\b[^>]*>",
    re.I,
)
_ANY_TAG = re.compile(r"<!--.*?-->|<!\[CDATA\[|\]\]>|</?[A-Za-z][^>]*>", re.S)
_INVISIBLE = re.compile("[\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff"
                        "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def plain_text(markup: str | None, *, limit: int, paragraphs: bool = False, is_html: bool = True) -> str:
    """Plain text of an HTML (or text) fragment, one line unless ``paragraphs``; at most ``limit`` chars."""
    if not markup:
        return ""
    text = markup[: limit * RAW_FIELD_FACTOR + 1024]
    if is_html and ("<" in text or "&" in text):
        if "<" in text:
            text = _DROPPED_ELEMENTS.sub(" ", text)
            text = _BLOCK_TAG.sub("\n", text)
            text = _ANY_TAG.sub("", text)
        text = html_lib.unescape(text)
        # Publishers escape twice often enough ("&amp;eacute;"): a second pass only changes
        # text that still holds an entity.
        if "&" in text and ";" in text:
            text = html_lib.unescape(text)
    text = _INVISIBLE.sub("", text)
    if paragraphs:
        # str.split() and splitlines() run in C: far cheaper than a whitespace regex per item.
        text = "\n".join(joined for line in text.splitlines() if (joined := " ".join(line.split())))
    else:
        text = " ".join(text.split())
    return truncate(text, limit)


def truncate(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters at a word boundary, ending in "…" when cut."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit * 0.8:
        cut = cut[:space]
    return cut.rstrip() + "…"


# --------------------------------------------------------------------------------------------
# Dates


def parse_date(value: str | None) -> datetime | None:
    """A UTC-aware datetime from RFC 822, ISO 8601 or the odder forms feedparser knows; else None."""
    if not value:
        return None
    value = value.strip()[:100]
    if not value:
        return None
    parsed: datetime | None = None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        parsed = None
    if parsed is None:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            parsed = None
    if parsed is None:
        parsed = _feedparser_date(value)
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        parsed = parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        return None
    # Year 1 and year 9999 are placeholders, not publication dates.
    return parsed if 1990 <= parsed.year <= 2200 else None


def _feedparser_date(value: str) -> datetime | None:
    try:
        from feedparser.datetimes import _parse_date
    except ImportError:  # pragma: no cover - feedparser is a dependency
        return None
    try:
        struct = _parse_date(value)
    except (ValueError, TypeError, OverflowError, IndexError):
        return None
    return _struct_to_datetime(struct)


def _struct_to_datetime(struct: time.struct_time | None) -> datetime | None:
    if struct is None:
        return None
    try:
        return datetime(*struct[:6], tzinfo=UTC)
    except (ValueError, TypeError):
        return None


# --------------------------------------------------------------------------------------------
# Building items (shared by the XML, JSON and feedparser paths)


@dataclass(slots=True)
class _RawItem:
    guid: str | None = None
    link: str | None = None
    title: str | None = None
    title_is_html: bool = True
    summary: str | None = None
    content: str | None = None
    content_is_html: bool = True
    date: datetime | None = None
    author: str | None = None
    categories: list[str] | None = None
    language: str | None = None
    base: str | None = None


def _build_item(raw: _RawItem, feed_language: str | None) -> FeedItem | None:
    url = canonical_url(html_lib.unescape(raw.link) if raw.link else None, raw.base)
    title = plain_text(raw.title, limit=MAX_TITLE_CHARS, is_html=raw.title_is_html)
    summary = plain_text(raw.summary, limit=MAX_SUMMARY_CHARS)
    content = plain_text(raw.content, limit=MAX_CONTENT_CHARS, paragraphs=True, is_html=raw.content_is_html)
    if not summary and content:
        summary = truncate(" ".join(content.split()), SUMMARY_FROM_CONTENT_CHARS)
    if not title and summary:
        title = truncate(summary, 120)
    guid = " ".join(raw.guid.split())[:2048] if raw.guid and raw.guid.strip() else None
    if not (title or url or guid):
        return None  # an empty <item/>: nothing to show and nothing to key
    categories = tuple(
        dict.fromkeys(
            c for c in (plain_text(c, limit=MAX_CATEGORY_CHARS) for c in (raw.categories or ())[:MAX_CATEGORIES]) if c
        )
    )
    author = plain_text(raw.author, limit=MAX_AUTHOR_CHARS) or None
    return FeedItem(
        key=item_key(guid=guid, url=url, title=title, published=raw.date),
        guid=guid,
        url=url,
        title=title,
        summary=summary,
        content_text=content or None,
        published=raw.date,
        author=author,
        categories=categories,
        language=normalise_language(raw.language) or feed_language,
        content_hash=content_hash(title, summary, content or None),
    )


def normalise_language(value: str | None) -> str | None:
    """``fr-FR``, ``fr_fr``, ``FR`` → ``fr``; None for anything that is not a language tag."""
    if not value:
        return None
    primary = value.strip().replace("_", "-").split("-")[0].lower()
    return primary if primary.isalpha() and 2 <= len(primary) <= 3 else None


def _finish(
    *, title: str | None, site_url: str | None, language: str | None, ttl: int | None,
    hub: str | None, self_url: str | None, raw_items: list[_RawItem],
) -> ParsedFeed:
    merged: dict[str, tuple[int, FeedItem]] = {}
    for position, raw in enumerate(raw_items):
        item = _build_item(raw, language)
        if item is None:
            continue
        known = merged.get(item.key)
        # Same key twice (duplicate GUIDs are common): keep the newest version, at the first place.
        if known is None:
            merged[item.key] = (position, item)
        elif item.published and (known[1].published is None or item.published > known[1].published):
            merged[item.key] = (known[0], item)
    ordered = sorted(
        merged.values(),
        key=lambda pair: (0, -pair[1].published.timestamp(), pair[0]) if pair[1].published else (1, 0, pair[0]),
    )
    return ParsedFeed(
        title=plain_text(title, limit=MAX_TITLE_CHARS) or None,
        site_url=site_url,
        language=language,
        ttl_seconds=ttl,
        hub_url=hub,
        self_url=self_url,
        items=tuple(item for _, item in ordered[:MAX_ITEMS]),
    )


# --------------------------------------------------------------------------------------------
# XML (RSS and Atom) with lxml

NS_ATOM10 = "http://www.w3.org/2005/Atom"
NS_ATOM03 = "http://purl.org/atom/ns#"
NS_DC = "http://purl.org/dc/elements/1.1/"
NS_CONTENT = "http://purl.org/rss/1.0/modules/content/"
NS_RSS10 = "http://purl.org/rss/1.0/"
NS_RSS090 = "http://my.netscape.com/rdf/simple/0.9/"
NS_SY = "http://purl.org/rss/1.0/modules/syndication/"
NS_XML = "http://www.w3.org/XML/1998/namespace"
XML_LANG = f"{{{NS_XML}}}lang"

BaseOf = Callable[[Any], str]
_RSS_CORE = frozenset({"", NS_RSS10, NS_RSS090})
_ATOM = frozenset({NS_ATOM10, NS_ATOM03})
_ATOM_CORE = frozenset({NS_ATOM10, NS_ATOM03, ""})
_SY_PERIOD_SECONDS = {"hourly": 3600, "daily": 86400, "weekly": 604800, "monthly": 2592000, "yearly": 31536000}


def _xml_parser() -> etree.XMLParser:
    # Never expand entities, never touch the network, never load a DTD, keep libxml2's size limits.
    return etree.XMLParser(
        recover=True,
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        strip_cdata=True,
    )


def _children(element: Any) -> Iterator[tuple[str, str, Any]]:
    """(namespace, local name, child) for the element children of ``element``."""
    for child in element:
        tag = child.tag
        if not isinstance(tag, str):
            continue
        if tag[0] == "{":
            namespace, _, local = tag[1:].partition("}")
            yield namespace, local, child
        else:
            yield "", tag, child


def _text(element: Any) -> str | None:
    """Text of an element; child elements (unescaped HTML inside RSS) are kept as markup."""
    if len(element):
        return (element.text or "") + "".join(
            etree.tostring(child, encoding="unicode", method="html", with_tail=True) for child in element
        )
    return element.text


def _parse_xml_feed(text: str, url: str) -> ParsedFeed:
    parser = _xml_parser()
    try:
        root = etree.fromstring(text.encode("utf-8"), parser, base_url=url)
    except etree.XMLSyntaxError as error:
        root = None
        first_error = str(error)
    else:
        first_error = _first_error(parser)
    if root is None or not isinstance(root.tag, str):
        return _fallback_or_fail(text, url, first_error)
    local = etree.QName(root).localname.lower()
    if local == "html":
        raise _not_a_feed(text, url)
    # lxml's element.base walks the ancestors on every call; only feeds using xml:base need it.
    if "xml:base" in text:
        def base_of(element: Any) -> str:
            return element.base or url
    else:
        def base_of(element: Any) -> str:
            return url
    if local in ("rss", "channel", "rdf"):
        feed = _read_rss(root, url, base_of)
    elif local == "feed":
        feed = _read_atom(root, url, base_of)
    else:
        if looks_like_html(text):
            raise _not_a_feed(text, url)
        raise FeedParseError(f"this document is XML but not a feed (its root element is <{local}>)")
    if not feed.items and first_error:
        # lxml kept nothing of a damaged document: feedparser's loose parser sometimes does better.
        return _fallback_or_fail(text, url, first_error)
    if first_error and len(text) <= FALLBACK_MAX_CHARS:
        # Recovery can nest the items that follow an unclosed tag inside the one before it; the
        # loose parser reads such documents item by item. Whichever keeps more items wins.
        try:
            fallback = _parse_with_feedparser(text, url)
        except FeedParseError:
            return feed
        if len(fallback.items) > len(feed.items):
            return fallback
    return feed


def _first_error(parser: etree.XMLParser) -> str | None:
    for entry in parser.error_log:
        if entry.level >= etree.ErrorLevels.ERROR:
            return f"line {entry.line}: {entry.message.strip()}"
    return None


def _fallback_or_fail(text: str, url: str, error: str | None) -> ParsedFeed:
    if looks_like_html(text):
        raise _not_a_feed(text, url)
    try:
        fallback = _parse_with_feedparser(text, url)
    except FeedParseError:
        fallback = None
    if fallback is not None and fallback.items:
        return fallback
    raise FeedParseError(f"the feed is not valid XML ({error or 'no element found'})")


def _not_a_feed(text: str, url: str) -> NotAFeedError:
    candidates = discover_feed_links(text, url)
    message = "this URL is a web page, not a feed"
    if candidates:
        message += "; it offers these feeds: " + ", ".join(candidates[:5])
    return NotAFeedError(message, candidates)


def _read_rss(root: Any, url: str, base_of: BaseOf) -> ParsedFeed:
    channel = root
    if etree.QName(root).localname.lower() != "channel":
        channel = next((c for ns, local, c in _children(root) if local == "channel"), root)
    title = site_url = language = hub = self_url = None
    ttl: int | None = None
    sy_period: str | None = None
    sy_frequency = 1
    item_elements = []
    for namespace, local, child in _children(channel):
        if local == "item":
            item_elements.append(child)
        elif namespace in _RSS_CORE:
            if local == "title" and title is None:
                title = _text(child)
            elif local == "link" and site_url is None and child.text:
                site_url = canonical_url(child.text, base_of(child))
            elif local == "language" and language is None:
                language = normalise_language(child.text)
            elif local == "ttl":
                ttl = _int(child.text, scale=60)
        elif namespace in _ATOM and local == "link":
            rel = (child.get("rel") or "alternate").lower()
            href = canonical_url(child.get("href"), base_of(child))
            if rel == "self" and self_url is None:
                self_url = href
            elif rel == "hub" and hub is None:
                hub = href
            elif rel == "alternate" and site_url is None:
                site_url = href
        elif namespace == NS_DC and local == "language" and language is None:
            language = normalise_language(child.text)
        elif namespace == NS_SY and local == "updatePeriod":
            sy_period = (child.text or "").strip().lower()
        elif namespace == NS_SY and local == "updateFrequency":
            sy_frequency = max(1, _int(child.text) or 1)
    if channel is not root:  # RSS 0.90/1.0 keep items beside the channel
        item_elements.extend(c for _, local, c in _children(root) if local == "item")
    language = language or normalise_language(root.get(XML_LANG) or channel.get(XML_LANG))
    if ttl is None and sy_period in _SY_PERIOD_SECONDS:
        ttl = _SY_PERIOD_SECONDS[sy_period] // sy_frequency
    return _finish(
        title=title, site_url=site_url, language=language, ttl=ttl, hub=hub, self_url=self_url,
        raw_items=[_read_rss_item(element, base_of) for element in item_elements],
    )


def _read_rss_item(element: Any, base_of: BaseOf) -> _RawItem:
    raw = _RawItem(base=base_of(element), language=element.get(XML_LANG), categories=[])
    permalink_guid: str | None = None
    dates: dict[str, str | None] = {}
    atom_link: str | None = None
    for namespace, local, child in _children(element):
        if namespace in _RSS_CORE:
            if local == "title" and raw.title is None:
                raw.title = _text(child)
            elif local == "link" and raw.link is None:
                raw.link = child.text or child.get("href")
            elif local == "guid" and raw.guid is None:
                raw.guid = child.text
                if (child.get("isPermaLink") or "true").strip().lower() == "true":
                    permalink_guid = child.text
            elif local == "description" and raw.summary is None:
                raw.summary = _text(child)
            elif local == "pubDate":
                dates.setdefault("pub", child.text)
            elif local == "author" and raw.author is None:
                raw.author = _rss_author(child.text)
            elif local == "category":
                raw.categories.append(child.text or "")
        elif namespace == NS_CONTENT and local == "encoded" and raw.content is None:
            raw.content = _text(child)
        elif namespace == NS_DC:
            if local == "creator" and raw.author is None:
                raw.author = child.text
            elif local == "date":
                dates.setdefault("dc", child.text)
            elif local == "subject":
                raw.categories.append(child.text or "")
            elif local == "language" and raw.language is None:
                raw.language = child.text
            elif local == "title" and raw.title is None:
                raw.title = child.text
            elif local == "description" and raw.summary is None:
                raw.summary = _text(child)
        elif namespace in _ATOM:
            if local == "link" and atom_link is None and (child.get("rel") or "alternate") == "alternate":
                atom_link = child.get("href")
            elif local in ("updated", "published"):
                dates.setdefault(local, child.text)
            elif local == "summary" and raw.summary is None:
                raw.summary = _text(child)
            elif local == "content" and raw.content is None:
                raw.content = _text(child)
    if not raw.link:
        raw.link = atom_link or (permalink_guid if permalink_guid and "://" in permalink_guid else None)
    for source in ("pub", "dc", "published", "updated"):
        raw.date = parse_date(dates.get(source))
        if raw.date:
            break
    return raw


def _rss_author(value: str | None) -> str | None:
    # RSS 2.0 says "email (Name)"; show the name, never the address.
    if not value:
        return None
    match = re.search(r"\(([^)]+)\)", value)
    if match:
        return match.group(1)
    return None if "@" in value else value


def _read_atom(root: Any, url: str, base_of: BaseOf) -> ParsedFeed:
    title = site_url = hub = self_url = None
    language = normalise_language(root.get(XML_LANG))
    raw_items: list[_RawItem] = []
    for namespace, local, child in _children(root):
        if namespace not in _ATOM_CORE:
            continue
        if local == "entry":
            raw_items.append(_read_atom_entry(child, base_of))
        elif local == "title" and title is None:
            title = _atom_text(child)[0]
        elif local == "link":
            rel = (child.get("rel") or "alternate").lower()
            href = canonical_url(child.get("href"), base_of(child))
            if rel == "self" and self_url is None:
                self_url = href
            elif rel == "hub" and hub is None:
                hub = href
            elif rel == "alternate" and site_url is None:
                site_url = href
    return _finish(title=title, site_url=site_url, language=language, ttl=None, hub=hub,
                   self_url=self_url, raw_items=raw_items)


def _atom_text(element: Any) -> tuple[str | None, bool]:
    """(text, is_html) of an Atom text construct; type="text" is plain, html/xhtml are markup."""
    kind = (element.get("type") or "text").lower()
    if kind == "xhtml" or "html" in kind:
        return _text(element), True
    if len(element):  # type="text" with markup inside: a publisher's mistake, read as HTML
        return _text(element), True
    return element.text, kind != "text" and kind != "text/plain"


def _read_atom_entry(element: Any, base_of: BaseOf) -> _RawItem:
    raw = _RawItem(base=base_of(element), language=element.get(XML_LANG), categories=[])
    dates: dict[str, str | None] = {}
    for namespace, local, child in _children(element):
        if namespace == NS_DC:
            if local == "creator" and raw.author is None:
                raw.author = child.text
            elif local == "date":
                dates.setdefault("dc", child.text)
            continue
        if namespace not in _ATOM_CORE:
            continue
        if local == "title" and raw.title is None:
            raw.title, raw.title_is_html = _atom_text(child)
        elif local == "link":
            rel = (child.get("rel") or "alternate").lower()
            if rel == "alternate" and raw.link is None:
                raw.link = child.get("href")
                raw.base = base_of(child)
        elif local == "id" and raw.guid is None:
            raw.guid = child.text
        elif local == "summary" and raw.summary is None:
            raw.summary = _atom_text(child)[0]
        elif local == "content" and raw.content is None:
            if child.get("src") is None and (child.get("mode") or "xml").lower() != "base64":
                raw.content, raw.content_is_html = _atom_text(child)
        elif local in ("published", "issued", "updated", "modified", "created"):
            dates.setdefault(local, child.text)
        elif local == "author" and raw.author is None:
            name = next((c.text for _, n, c in _children(child) if n == "name"), None)
            raw.author = name
        elif local == "category":
            raw.categories.append(child.get("label") or child.get("term") or child.text or "")
    for source in ("published", "issued", "dc", "created", "updated", "modified"):
        raw.date = parse_date(dates.get(source))
        if raw.date:
            break
    return raw


def _int(value: str | None, *, scale: int = 1) -> int | None:
    try:
        number = int((value or "").strip())
    except ValueError:
        return None
    return number * scale if number > 0 else None


# --------------------------------------------------------------------------------------------
# JSON Feed 1.x (https://www.jsonfeed.org/version/1.1/)


def _parse_json_feed(text: str, url: str) -> ParsedFeed:
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise FeedParseError(f"the feed is not valid JSON ({error})") from None
    if not isinstance(document, dict) or not isinstance(document.get("items"), list):
        raise FeedParseError("this document is JSON but not a JSON Feed (no \"items\" list)")
    language = normalise_language(_str(document.get("language")))
    hub = None
    for hub_entry in document.get("hubs") or ():
        if isinstance(hub_entry, dict):
            hub = canonical_url(_str(hub_entry.get("url")), url)
            if hub:
                break
    raw_items = [_read_json_item(entry, url) for entry in document["items"] if isinstance(entry, dict)]
    return _finish(
        title=_str(document.get("title")),
        site_url=canonical_url(_str(document.get("home_page_url")), url),
        language=language,
        ttl=None,
        hub=hub,
        self_url=canonical_url(_str(document.get("feed_url")), url),
        raw_items=raw_items,
    )


def _read_json_item(entry: dict[str, Any], url: str) -> _RawItem:
    content_html = _str(entry.get("content_html"))
    authors = entry.get("authors") or ([entry["author"]] if isinstance(entry.get("author"), dict) else [])
    author = next((_str(a.get("name")) for a in authors if isinstance(a, dict) and a.get("name")), None)
    tags = entry.get("tags") if isinstance(entry.get("tags"), list) else []
    guid = entry.get("id")
    return _RawItem(
        guid=str(guid) if isinstance(guid, (str, int)) and not isinstance(guid, bool) else None,
        link=_str(entry.get("url")) or _str(entry.get("external_url")),
        title=_str(entry.get("title")),
        title_is_html=False,
        summary=_str(entry.get("summary")),
        content=content_html or _str(entry.get("content_text")),
        content_is_html=content_html is not None,
        date=parse_date(_str(entry.get("date_published"))) or parse_date(_str(entry.get("date_modified"))),
        author=author,
        categories=[t for t in tags if isinstance(t, str)],
        language=_str(entry.get("language")),
        base=url,
    )


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


# --------------------------------------------------------------------------------------------
# feedparser fallback, for damaged XML only (after the entity check in _make_xml_safe)


def _parse_with_feedparser(text: str, url: str) -> ParsedFeed:
    import feedparser

    result = feedparser.parse(
        text.encode("utf-8"),
        response_headers={"content-location": url, "content-type": "application/xml; charset=utf-8"},
        sanitize_html=False,
        resolve_relative_uris=False,
    )
    if not result.entries:
        raise FeedParseError("the feed has no readable items")
    feed = result.feed
    language = normalise_language(feed.get("language"))
    raw_items = []
    for entry in result.entries:
        content = entry.get("content") or []
        raw_items.append(
            _RawItem(
                guid=entry.get("id"),
                link=entry.get("link"),
                title=entry.get("title"),
                summary=entry.get("summary"),
                content=content[0].get("value") if content else None,
                date=_struct_to_datetime(entry.get("published_parsed") or entry.get("updated_parsed")),
                author=entry.get("author"),
                categories=[t.get("term") or "" for t in entry.get("tags") or ()],
                language=entry.get("language"),
                base=url,
            )
        )
    return _finish(
        title=feed.get("title"),
        site_url=canonical_url(feed.get("link"), url),
        language=language,
        ttl=_int(feed.get("ttl"), scale=60),
        hub=None,
        self_url=None,
        raw_items=raw_items,
    )

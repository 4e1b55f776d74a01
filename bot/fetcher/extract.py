"""Full text of an article page: main text, title, author, date, language and canonical URL.

Rules:

- trafilatura (maintained, best-scoring open extractor in its own and third-party benchmarks)
  finds the main text, in precision mode, without comments or tables. With lxml ≥ 5.2 it needs
  ``lxml_html_clean`` installed (issue #3).
- Page chrome never reaches the text. trafilatura already drops most of it; what is left is
  removed line by line here: a line that *is* a share/follow prompt ("PARTAGEZ:", "Suivez nous
  sur", "Share this"), an advert label ("Publicité", "Advertisement"), a link-list header
  ("Tendance", "Lire aussi", "Related") or a byline stub ("Publié le", "on"). Lines are only
  dropped when they are nothing but that, so prose that mentions "publicité" stays.
- A first line equal to the title is dropped: the title is returned on its own.
- Text is plain, one paragraph per line, invisible characters removed; at most
  ``MAX_TEXT_CHARS``.
- ``None`` when the page has no main text of at least ``MIN_TEXT_CHARS`` characters.
- Language: the page's own declaration when trafilatura finds one, else detected from the text.
- CPU-bound (5–50 ms a page): the caller runs ``extract_article`` in an executor.

``needs_full_text`` decides when the feed gave only a teaser: no content and a summary that is
short (< ``TEASER_MAX_CHARS``) or ends like a teaser ("[…]", "...", "Lire la suite", "Read more").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from bot.core.feeds import FeedItem, normalise_language, parse_date, plain_text
from bot.core.identity import canonical_url

MAX_HTML_BYTES = 10 * 1024 * 1024
MAX_TEXT_CHARS = 200_000
MIN_TEXT_CHARS = 200
TEASER_MAX_CHARS = 400
FULL_CONTENT_MIN_CHARS = 600


@dataclass(frozen=True)
class ExtractedArticle:
    text: str
    title: str | None
    author: str | None
    date: datetime | None
    language: str | None
    canonical_url: str | None


# Whole lines that are page chrome, French and English. Matched after lower-casing and trimming
# the punctuation around the line.
_CHROME_LINE = re.compile(
    r"^(?:"
    r"partage[zr]?(?: (?:cet|l')article| sur .{0,40})?|share(?: this(?: article| story| post)?)?|"
    r"suivez[- ]nous(?: sur.{0,60})?|follow us(?: on.{0,60})?|"
    r"publicit[ée]|advertisement|advertising|sponsored|annonce|pub|"
    r"tendance|tendances|trending|les plus lus|most read|populaires?|"
    r"(?:à )?lire aussi|(?:à )?voir aussi|read more|related(?: articles| stories)?|sur le même sujet|"
    r"publié le|published(?: on)?|on|par|by|mis à jour le|updated|"
    r"facebook|twitter|linkedin|whatsapp|email|e-mail|imprimer|print|copier le lien|copy link"
    r")$"
)
_LINE_TRIM = " \t:|•·-–—»«>"
_TEASER_ENDINGS = re.compile(
    r"(\[\s*(…|\.\.\.)\s*\]|…|\.\.\.|\(\s*suite\s*\)|lire la suite\W*|read more\W*|continue reading\W*|"
    r"en savoir plus\W*|the post .{0,200} appeared first on .{0,200})$",
    re.I,
)


def extract_article(html: bytes | str, *, url: str) -> ExtractedArticle | None:
    """The main content of an article page, or None when there is none worth keeping."""
    import trafilatura

    if isinstance(html, bytes):
        html = html[:MAX_HTML_BYTES]
    elif len(html) > MAX_HTML_BYTES:
        html = html[:MAX_HTML_BYTES]
    if not html:
        return None
    document = trafilatura.bare_extraction(
        html,
        url=url,
        with_metadata=True,
        favor_precision=True,
        include_comments=False,
        include_tables=False,
        include_images=False,
        include_links=False,
        deduplicate=True,
    )
    if document is None:
        return None
    title = plain_text(getattr(document, "title", None), limit=1_000) or None
    text = clean_article_text(getattr(document, "text", None) or "", title=title)
    if len(text) < MIN_TEXT_CHARS:
        return None
    language = normalise_language(getattr(document, "language", None)) or _detect_language(text)
    return ExtractedArticle(
        text=text,
        title=title,
        author=plain_text(getattr(document, "author", None), limit=200) or None,
        date=declared_publication_date(html) or _date(getattr(document, "date", None)),
        language=language,
        canonical_url=canonical_url(getattr(document, "url", None), url) or canonical_url(url),
    )


def clean_article_text(text: str, *, title: str | None) -> str:
    """Plain text, chrome lines dropped, a leading copy of the title dropped (see module rules)."""
    lines = plain_text(text, limit=MAX_TEXT_CHARS, paragraphs=True, is_html=False).split("\n")
    kept: list[str] = []
    title_key = _key(title) if title else None
    for line in lines:
        key = _key(line)
        if not key or _CHROME_LINE.match(key):
            continue
        if not kept and title_key and key == title_key:
            continue
        kept.append(line)
    return "\n".join(kept)


def needs_full_text(item: FeedItem) -> bool:
    """True when the feed item is only a teaser and its page is worth fetching."""
    if not item.url:
        return False
    if item.content_text and len(item.content_text) >= FULL_CONTENT_MIN_CHARS:
        return False
    summary = item.summary.strip()
    if len(summary) < TEASER_MAX_CHARS:
        return True
    return bool(_TEASER_ENDINGS.search(summary[-400:]))


_META_DATE = re.compile(
    r"""<meta\b[^>]*?(?:property|name|itemprop)\s*=\s*["'](?:article:published_time|og:article:published_time|"""
    r"""datePublished|pubdate|publishdate|dc\.date\.issued|dcterms\.created)["'][^>]*>""",
    re.I,
)
_CONTENT_ATTRIBUTE = re.compile(r"""\bcontent\s*=\s*["']([^"']{6,64})["']""", re.I)
_JSON_LD_DATE = re.compile(r'"datePublished"\s*:\s*"([^"]{6,64})"')
_TIME_DATETIME = re.compile(r"""<time\b[^>]*?\bdatetime\s*=\s*["']([^"']{6,64})["']""", re.I)
DATE_SEARCH_CHARS = 300_000


def declared_publication_date(html: bytes | str) -> datetime | None:
    """The publication time the page declares (meta, JSON-LD, first <time datetime>), to the second.

    trafilatura's date is a day, and on sites that put a date in the URL it can be that one; the
    page's own ``article:published_time`` is more precise when present.
    """
    head = html[:DATE_SEARCH_CHARS]
    if isinstance(head, bytes):
        head = head.decode("utf-8", "replace")
    meta = _META_DATE.search(head)
    if meta:
        content = _CONTENT_ATTRIBUTE.search(meta.group(0))
        if content and (parsed := parse_date(content.group(1))):
            return parsed
    for pattern in (_JSON_LD_DATE, _TIME_DATETIME):
        found = pattern.search(head)
        if found and (parsed := parse_date(found.group(1))):
            return parsed
    return None


def _key(line: str) -> str:
    return " ".join(line.lower().strip(_LINE_TRIM).split())


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    parsed = parse_date(value)
    if parsed is None:
        return None
    return parsed.astimezone(UTC)


def _detect_language(text: str) -> str | None:
    from bot.core.language import detect_language

    return detect_language(text)

"""Fuzzing the three parsers of outside input: feeds, queries, and the HTML renderer.

Properties: no input raises anything but the parser's own error; every rendered message is valid
Telegram HTML within the length limit. CI runs a sample; `VEILLE_FUZZ_EXAMPLES=10000 python -m pytest
tests/test_fuzz.py` is the dedicated run (docs/reliability.md records its figures).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.core.feeds import FeedParseError, parse_feed
from bot.core.matching import Document, SubscriptionIndex, match_query
from bot.core.query import QueryError, QueryLimits, parse_query
from bot.core.render import AlertView, pack_alerts, render_alert
from tests.telegram_html import check_telegram_html, visible_length

EXAMPLES = int(os.environ.get("VEILLE_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)

# Text that looks like what reaches Veille: French, markup, entities, control and bidi characters.
HOSTILE_PIECES = [
    "<script>alert(1)</script>", "&amp;", "&", "AT&T", "<b>", "</i>", "&#0;", "&#xD800;", "&lt;", "]]>",
    "\u200b", "\u202e", "\u2066", "\ufeff", "\x00", "\x1b[31m", "l’OTAN", "d'Azerbaïdjan", "Œuvre", "ß",
    "🇫🇷", "👨‍👩‍👧", "مرحبا", "שלום", "\n", "\t", "\r\n", '"', "'", "«", "»", "(", ")", "*", "-", ":",
]
hostile_text = st.lists(
    st.one_of(st.sampled_from(HOSTILE_PIECES), st.text(max_size=20)), max_size=40
).map("".join)


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@st.composite
def feeds(draw: st.DrawFn) -> bytes:
    """Mostly well-formed RSS/Atom/JSON with hostile content, sometimes raw garbage."""
    kind = draw(st.sampled_from(["rss", "atom", "json", "garbage", "truncated"]))
    items = draw(st.lists(st.tuples(hostile_text, hostile_text, hostile_text), max_size=5))
    if kind == "garbage":
        return draw(st.binary(max_size=2000))
    if kind == "json":
        import json

        return json.dumps({
            "version": "https://jsonfeed.org/version/1.1", "title": "t",
            "items": [{"id": a, "title": b, "content_html": c, "url": draw(st.sampled_from(
                ["https://ex.org/1", "javascript:alert(1)", "/relative", "", "file:///etc/passwd"]))}
                for a, b, c in items],
        }).encode(draw(st.sampled_from(["utf-8", "utf-16"])))
    if kind == "atom":
        entries = "".join(
            f"<entry><id>{_xml_escape(a)}</id><title type='html'>{_xml_escape(b)}</title>"
            f"<content type='html'>{_xml_escape(c)}</content><link href='https://ex.org/{len(a)}'/></entry>"
            for a, b, c in items
        )
        body = f"<?xml version='1.0'?><feed xmlns='http://www.w3.org/2005/Atom'><title>t</title>{entries}</feed>"
    else:
        entries = "".join(
            f"<item><guid>{_xml_escape(a)}</guid><title>{_xml_escape(b)}</title>"
            f"<description><![CDATA[{c.replace(']]>', '')}]]></description></item>"
            for a, b, c in items
        )
        body = f"<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>t</title>{entries}</channel></rss>"
    data = body.encode("utf-8", errors="surrogatepass")
    if kind == "truncated":
        data = data[: draw(st.integers(0, len(data)))]
    return data


@FUZZ
@given(feeds())
def test_feed_parser_never_crashes_and_returns_plain_text(body: bytes) -> None:
    try:
        feed = parse_feed(body, url="https://ex.org/feed.xml")
    except FeedParseError as exc:
        assert str(exc)
        return
    for item in feed.items:
        assert item.key
        assert "\x00" not in item.title and "\x00" not in item.summary
        assert item.url is None or item.url.startswith(("http://", "https://"))


@FUZZ
@given(hostile_text)
def test_query_parser_raises_only_query_errors_with_a_position(text: str) -> None:
    try:
        query = parse_query(text, QueryLimits(max_length=500, max_terms=30))
    except QueryError as exc:
        assert str(exc)
        assert exc.position is None or 0 <= exc.position <= len(text)
        return
    again = parse_query(query.text, QueryLimits(max_length=10_000, max_terms=1000))
    assert again.text == query.text
    document = Document(title=text, text=text, source_name="s", source_url="https://ex.org")
    single = match_query(query, document)
    indexed = SubscriptionIndex.build([(1, query)]).match(document)
    assert (single is not None) == bool(indexed)


@FUZZ
@given(title=hostile_text, summary=hostile_text, source=hostile_text, url=hostile_text,
       terms=st.lists(hostile_text, max_size=4), name=st.none() | hostile_text,
       language=st.sampled_from(["fr", "en", "de"]), size=st.integers(0, 6000))
def test_rendered_alerts_are_always_valid_telegram_html(
    title: str, summary: str, source: str, url: str, terms: list[str], name: str | None, language: str, size: int
) -> None:
    view = AlertView(
        title=title, url=url if size % 2 else "https://ex.org/a?b=1&c=<2>", source_name=source,
        published=datetime(2026, 3, 29, 1, 30, tzinfo=UTC), timezone="Europe/Paris",
        summary=summary + "x" * size, matched_terms=terms, alert_name=name, also_in=(source,), language=language,
    )
    message = render_alert(view)
    check_telegram_html(message.text)
    assert 0 < visible_length(message.text) <= 4096
    for count, bundled in pack_alerts([view, view, view]):
        assert count >= 1
        check_telegram_html(bundled.text)

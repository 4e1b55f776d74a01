"""Feed parsing: golden files (input beside expected result) and named bad input.

Golden files live in tests/data/feeds/: ``<name>.<ext>`` is the body, ``<name>.<ext>.expected.json``
holds the URL it was fetched from and the expected ``ParsedFeed`` (or the expected error).
To rewrite the expected files after a deliberate change, run with REGENERATE_GOLDEN=1 and
review the diff.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.core.feeds import (
    MAX_ITEMS,
    MAX_SUMMARY_CHARS,
    MAX_TITLE_CHARS,
    FeedParseError,
    NotAFeedError,
    ParsedFeed,
    decode_body,
    parse_date,
    parse_feed,
    plain_text,
    repair_double_utf8,
)

FEEDS = Path(__file__).parent / "data" / "feeds"
DEFAULT_URL = "https://feeds.example.org/feed.xml"
GOLDEN_INPUTS = sorted(p for p in FEEDS.iterdir() if not p.name.endswith(".expected.json"))


def _jsonable(feed: ParsedFeed) -> dict:
    def convert(value):
        if isinstance(value, datetime):
            return value.isoformat()
        if isinstance(value, tuple):
            return [convert(v) for v in value]
        if dataclasses.is_dataclass(value):
            return {f.name: convert(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return value

    return convert(feed)


def _outcome(body: bytes, url: str) -> dict:
    try:
        return {"result": _jsonable(parse_feed(body, url=url))}
    except NotAFeedError as error:
        return {"error": "NotAFeedError", "message": str(error), "candidates": list(error.candidates)}
    except FeedParseError as error:
        return {"error": "FeedParseError", "message": str(error)}


@pytest.mark.parametrize("path", GOLDEN_INPUTS, ids=lambda p: p.name)
def test_golden_feed_parses_to_its_expected_result(path: Path):
    expected_path = path.with_name(path.name + ".expected.json")
    stored = json.loads(expected_path.read_text("utf-8")) if expected_path.exists() else {"url": DEFAULT_URL}
    actual = {"url": stored["url"], **_outcome(path.read_bytes(), stored["url"])}
    if os.environ.get("REGENERATE_GOLDEN"):
        expected_path.write_text(json.dumps(actual, ensure_ascii=False, indent=2) + "\n", "utf-8")
    assert expected_path.exists(), f"no expected result beside {path.name}"
    assert actual == json.loads(expected_path.read_text("utf-8"))


def _parse_golden(name: str) -> ParsedFeed:
    path = FEEDS / name
    url = json.loads(path.with_name(name + ".expected.json").read_text("utf-8"))["url"]
    return parse_feed(path.read_bytes(), url=url)


# ---- facts the golden files hold, stated so a reader does not have to diff JSON -------------


def test_french_feed_keeps_accents_elisions_and_teaser_marker():
    feed = _parse_golden("rss20-eureporter-fr.xml")
    (item,) = feed.items
    assert item.title.startswith("Le chef de l'OTAN salue le soutien de l'Azerbaïdjan")
    assert item.summary.endswith("[…]")
    assert item.published == datetime(2021, 12, 14, 15, 12, 3, tzinfo=UTC)
    assert (item.author, item.categories, item.language) == ("Catherine Feore", ("Azerbaïdjan", "OTAN"), "fr")
    assert item.key == "guid:https://www.eureporter.co/?p=1234567"


@pytest.mark.parametrize(
    ("name", "expected_title"),
    [
        ("latin1-undeclared.xml", "Fête de l'été à Évreux"),
        ("utf8-declared-but-cp1252.xml", "L’œuvre « inédite » – 5 €"),
        ("cp1251-declared.xml", "Привет, мир"),
        ("double-encoded-utf8.xml", "Élection à l’Assemblée : résultats"),
        ("rss091-netscape-doctype.xml", "L'État et la presse"),
        ("junk-before-declaration.xml", "Article"),
        ("bad-entities.xml", "Prix : 3€ — R&D &foo; fin"),
    ],
)
def test_damaged_encoding_or_markup_still_gives_the_right_title(name, expected_title):
    assert _parse_golden(name).items[0].title == expected_title


def test_relative_links_are_resolved_against_xml_base_and_fragments_dropped():
    feed = _parse_golden("atom10-xmlbase-relative.xml")
    assert [i.url for i in feed.items] == [
        "https://blog.example.com/posts/2024/rates.html",
        "https://blog.example.com/other",
    ]
    assert (feed.site_url, feed.self_url, feed.hub_url) == (
        "https://blog.example.com/",
        "https://blog.example.com/atom.xml",
        "https://pubsubhubbub.appspot.com/",
    )


def test_atom_text_type_keeps_angle_brackets_and_html_is_stripped():
    first, second = _parse_golden("atom10-xmlbase-relative.xml").items
    assert first.title == "Rates < 5% & rising"
    assert first.summary == "Short summary."
    assert first.content_text == "First paragraph.\nSecond paragraph."
    assert second.content_text == "Body only, no summary."  # the <script> and its text are gone
    assert second.summary == "Body only, no summary."


def test_hostile_links_never_come_out_and_invisible_characters_are_removed():
    items = {i.key: i for i in _parse_golden("hostile-links-and-text.xml").items}
    assert items["guid:js"].url is None
    assert items["guid:file"].url is None
    relative = next(i for i in items.values() if i.title == "Relative link")
    assert relative.url == "https://links.example.org/2024/article.html?page=2"
    html_item = next(i for i in items.values() if i.url == "https://links.example.org/html")
    assert html_item.title == "Bold title with zerowidth and bidi"
    assert html_item.summary == "Para one. Para two."
    assert html_item.content_text == "Heading\nFirst.\nOne\nTwo"


def test_duplicate_guids_are_merged_keeping_the_newest_version():
    feed = _parse_golden("duplicate-guids.xml")
    titles = [i.title for i in feed.items]
    assert titles.count("New version") == 1 and "Old version" not in titles
    same_link = [i for i in feed.items if i.url == "https://dup.example.org/c"]
    assert len(same_link) == 1  # tracking parameter, case, default port and fragment ignored
    permalink = next(i for i in feed.items if i.title == "Permalink guid")
    assert permalink.url == "https://dup.example.org/d"


def test_dates_missing_or_unreadable_are_none_and_others_are_utc():
    by_title = {i.title: i.published for i in _parse_golden("odd-dates.xml").items}
    assert by_title["RFC 822 with named zone"] == datetime(2024, 7, 6, 13, 0, tzinfo=UTC)
    assert by_title["ISO without zone"] == datetime(2024, 7, 5, 10, 0, tzinfo=UTC)
    assert by_title["dc:date only"] == datetime(2024, 7, 5, 1, 30, tzinfo=UTC)
    assert by_title["Garbage date"] is None
    assert by_title["No date"] is None
    assert by_title["Year zero placeholder"] is None


def test_json_feed_is_read_without_feedparser():
    feed = _parse_golden("jsonfeed11.json")
    assert (feed.title, feed.language, feed.hub_url) == ("Carnet JSON", "fr", "https://hub.example.net/")
    assert [i.key for i in feed.items] == ["guid:2", "guid:1", "guid:3"]
    assert feed.items[0].categories == ("a", "b")
    assert feed.items[1].url == "https://json.example.net/1"
    assert feed.items[1].content_text == "Texte brut\nsur deux lignes"
    assert feed.items[2].title == "Sans titre ni date"


def test_rss_ttl_and_syndication_period_become_seconds():
    assert _parse_golden("rss091-netscape-doctype.xml").ttl_seconds == 3600
    assert _parse_golden("rss10-rdf.xml").ttl_seconds == 1800


# ---- bad input, named (issue #3) -----------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<rss version="2.0"><channel><title>&lol9;</title><item><title>&lol9;</title></item></channel></rss>"""

QUADRATIC_BLOWUP = (
    b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "' + b"x" * 50_000 + b'">]>'
    b"<rss><channel><item><title>" + b"&a;" * 50_000 + b"</title></item></channel></rss>"
)

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<rss version="2.0"><channel><item><title>&xxe;</title></item></channel></rss>"""

PARAMETER_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY % remote SYSTEM "http://127.0.0.1:9/evil.dtd"> %remote;]>
<rss version="2.0"><channel><item><title>x</title></item></channel></rss>"""


@pytest.mark.parametrize(
    "body",
    [BILLION_LAUGHS, QUADRATIC_BLOWUP, EXTERNAL_ENTITY, PARAMETER_ENTITY],
    ids=["billion-laughs", "quadratic-blowup", "external-entity", "parameter-entity"],
)
def test_entity_declarations_are_refused_before_parsing(body):
    with pytest.raises(FeedParseError, match="declares its own XML entities"):
        parse_feed(body, url=DEFAULT_URL)


def test_external_dtd_without_entities_is_never_fetched_and_feed_still_parses():
    body = b"""<?xml version="1.0"?>
<!DOCTYPE rss SYSTEM "http://127.0.0.1:9/never-fetched.dtd">
<rss version="2.0"><channel><item><title>Hello &unknown; world</title><link>https://a.example/1</link></item></channel></rss>"""
    (item,) = parse_feed(body, url=DEFAULT_URL).items
    assert item.title == "Hello &unknown; world"


def test_malformed_xml_error_names_the_line():
    body = b"<?xml version='1.0'?>\n<rss>\n<<<>>> \x00 </nope"
    with pytest.raises(FeedParseError, match=r"not valid XML \(line \d+"):
        parse_feed(body, url=DEFAULT_URL)


def test_truncated_feed_keeps_the_items_before_the_cut():
    body = (FEEDS / "duplicate-guids.xml").read_bytes()[:-200]
    feed = parse_feed(body, url=DEFAULT_URL)
    assert "New version" in [i.title for i in feed.items]


@pytest.mark.parametrize("body", [b"", b"   \n\t  "], ids=["empty", "whitespace"])
def test_empty_body_is_a_parse_error(body):
    with pytest.raises(FeedParseError, match="empty"):
        parse_feed(body, url=DEFAULT_URL)


def test_html_error_page_with_status_200_is_not_a_feed_and_offers_its_feeds():
    body = (FEEDS / "html-page-not-feed.html").read_bytes()
    with pytest.raises(NotAFeedError, match="this URL is a web page, not a feed") as caught:
        parse_feed(body, url="https://www.example.fr/fr/page", content_type="text/html; charset=utf-8")
    assert caught.value.candidates == (
        "https://www.example.fr/fr/feed/",
        "https://www.example.fr/atom.xml",
        "https://www.example.fr/rss.xml",
    )


def test_json_that_is_not_a_json_feed_is_refused_with_a_reason():
    with pytest.raises(FeedParseError, match="not a JSON Feed"):
        parse_feed(b'{"hello": "world"}', url=DEFAULT_URL)


def test_xml_that_is_not_a_feed_is_refused_with_its_root_name():
    with pytest.raises(FeedParseError, match="<svg>"):
        parse_feed(b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>', url=DEFAULT_URL)


def test_feed_with_ten_thousand_items_keeps_the_newest_thousand():
    start = datetime(2024, 1, 1, tzinfo=UTC)
    items = "".join(
        f"<item><title>n{n}</title><link>https://big.example/{n}</link>"
        f"<pubDate>{(start + timedelta(minutes=n)).strftime('%a, %d %b %Y %H:%M:%S +0000')}</pubDate></item>"
        for n in range(10_000)
    )
    feed = parse_feed(f"<rss><channel><title>Big</title>{items}</channel></rss>".encode(), url=DEFAULT_URL)
    assert len(feed.items) == MAX_ITEMS
    assert feed.items[0].title == "n9999"
    assert feed.items[-1].title == f"n{10_000 - MAX_ITEMS}"


def test_one_megabyte_title_and_summary_are_capped():
    huge = "mot " * 250_000
    body = f"<rss><channel><item><title>{huge}</title><description>{huge}</description></item></channel></rss>"
    (item,) = parse_feed(body.encode(), url=DEFAULT_URL).items
    assert len(item.title) <= MAX_TITLE_CHARS and item.title.endswith("…")
    assert len(item.summary) <= MAX_SUMMARY_CHARS


def test_changed_summary_changes_the_content_hash_but_not_the_key():
    template = "<rss><channel><item><guid>g1</guid><title>T</title><description>{}</description></item></channel></rss>"
    before = parse_feed(template.format("v1").encode(), url=DEFAULT_URL).items[0]
    after = parse_feed(template.format("v2").encode(), url=DEFAULT_URL).items[0]
    assert before.key == after.key
    assert before.content_hash != after.content_hash


def test_feed_parsing_never_uses_the_network_or_the_clock_for_dates(monkeypatch):
    def no_clock(*_args, **_kwargs):
        raise AssertionError("parse_feed read the clock")

    monkeypatch.setattr(time, "time", no_clock)
    feed = _parse_golden("odd-dates.xml")
    assert len(feed.items) == 6


# ---- helpers, table-driven -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("markup", "expected"),
    [
        ("<p>Un</p><p>deux</p>", "Un deux"),
        ("l&rsquo;OTAN &amp; l&#8217;UE", "l’OTAN & l’UE"),
        ("a\u00a0:\u202fb", "a : b"),
        ("x<script>alert('y')</script>z", "x z"),
        ("<!-- comment -->visible", "visible"),
        ("a < b and c > d", "a < b and c > d"),
        ("double &amp;eacute;t&amp;eacute;", "double été"),
        ("\u200bzero\u200dwidth\ufeff", "zerowidth"),
        ("", ""),
    ],
)
def test_plain_text_strips_markup_and_invisible_characters(markup, expected):
    assert plain_text(markup, limit=1000) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Tue, 14 Dec 2021 15:12:03 +0000", datetime(2021, 12, 14, 15, 12, 3, tzinfo=UTC)),
        ("Tue, 14 Dec 2021 16:12:03 +0100", datetime(2021, 12, 14, 15, 12, 3, tzinfo=UTC)),
        ("2021-12-14T15:12:03Z", datetime(2021, 12, 14, 15, 12, 3, tzinfo=UTC)),
        ("2021-12-14T16:12:03+01:00", datetime(2021, 12, 14, 15, 12, 3, tzinfo=UTC)),
        ("2021-12-14", datetime(2021, 12, 14, tzinfo=UTC)),
        ("14 Dec 2021 15:12 GMT", datetime(2021, 12, 14, 15, 12, tzinfo=UTC)),
        ("not a date", None),
        ("", None),
        (None, None),
        ("9999-12-31T23:59:59Z", None),
    ],
)
def test_parse_date_reads_rfc822_and_iso8601_into_utc(value, expected):
    assert parse_date(value) == expected


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        ("été".encode(), None, "été"),
        ("été".encode("latin-1"), None, "été"),
        ("été".encode("cp1252"), "text/xml; charset=utf-8", "été"),
        ('<?xml version="1.0" encoding="windows-1251"?>мир'.encode("cp1251"), None,
         '<?xml version="1.0" encoding="windows-1251"?>мир'),
        (b"\xef\xbb\xbf\xc3\xa9", None, "é"),
        ("é".encode("utf-16"), None, "é"),
    ],
)
def test_decode_body_finds_the_real_charset(body, content_type, expected):
    assert decode_body(body, content_type) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Ã©tÃ©", "été"),
        ("lâ€™OTAN", "l’OTAN"),
        ("déjà correct", "déjà correct"),
        ("Â«Â\u00a0citationÂ\u00a0Â»", "«\u00a0citation\u00a0»"),
    ],
)
def test_double_encoded_utf8_is_repaired(text, expected):
    assert repair_double_utf8(text) == expected


def test_items_nested_by_an_unclosed_tag_are_recovered_by_the_fallback_parser():
    body = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
        b"<item><title>A</title><link>https://a.example/1</link><description><p>x<br></description></item>"
        b"<item><title>B</title><link>https://a.example/2</link></item></channel></rss>"
    )
    assert [i.title for i in parse_feed(body, url=DEFAULT_URL).items] == ["A", "B"]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16", "cp1252"])
def test_control_characters_xml_forbids_are_dropped_in_any_encoding(encoding):
    body = "<rss><channel><item><title>a\x01b\x0bc\x1bd</title></item></channel></rss>".encode(encoding)
    assert parse_feed(body, url=DEFAULT_URL).items[0].title == "abcd"


def test_common_feed_urls_are_offered_for_probing():
    from bot.core.discovery import common_feed_urls

    urls = common_feed_urls("https://www.example.fr/some/page?x=1")
    assert urls[:3] == ("https://www.example.fr/feed/", "https://www.example.fr/rss", "https://www.example.fr/rss.xml")
    assert common_feed_urls("javascript:alert(1)") == ()


def test_discovery_ignores_other_hosts_in_body_links_and_honours_base_href():
    from bot.core.discovery import discover_feed_links

    page = (
        '<html><head><base href="https://cdn.example.fr/fr/"><link rel="alternate" type="application/atom+xml" '
        'href="atom.xml"></head><body><a href="https://other.example/feed/">x</a>'
        '<a href="https://www.example.fr/blog/feed/">y</a></body></html>'
    )
    assert discover_feed_links(page, "https://www.example.fr/") == (
        "https://cdn.example.fr/fr/atom.xml",
        "https://www.example.fr/blog/feed/",
    )

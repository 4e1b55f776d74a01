"""Canonical URLs and item keys (bot.core.identity)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.core.identity import MAX_KEY_LENGTH, canonical_url, content_hash, item_key


@pytest.mark.parametrize(
    ("url", "base", "expected"),
    [
        ("HTTPS://WWW.Example.ORG/Path", None, "https://www.example.org/Path"),
        ("https://example.org", None, "https://example.org/"),
        ("https://example.org:443/a", None, "https://example.org/a"),
        ("http://example.org:80/a", None, "http://example.org/a"),
        ("http://example.org:8080/a", None, "http://example.org:8080/a"),
        ("https://example.org/a#section", None, "https://example.org/a"),
        ("https://example.org/a?utm_source=rss&utm_medium=feed&id=3", None, "https://example.org/a?id=3"),
        ("https://example.org/a?fbclid=x&gclid=y&msclkid=z", None, "https://example.org/a"),
        ("https://example.org/a?b=2&a=1", None, "https://example.org/a?b=2&a=1"),
        ("https://example.org/a?q=caf%C3%A9", None, "https://example.org/a?q=caf%C3%A9"),
        ("https://user:secret@example.org/a", None, "https://example.org/a"),
        ("  https://example.org/a \n", None, "https://example.org/a"),
        ("../b/c.html", "https://example.org/x/y/feed.xml", "https://example.org/x/b/c.html"),
        ("/root", "https://example.org/x/", "https://example.org/root"),
        ("//cdn.example.org/p", "https://example.org/", "https://cdn.example.org/p"),
        ("http://[2001:db8::1]:8080/a", None, "http://[2001:db8::1]:8080/a"),
        ("javascript:alert(1)", None, None),
        ("JavaScript:alert(1)", "https://example.org/", None),
        ("mailto:someone@example.org", None, None),
        ("file:///etc/passwd", None, None),
        ("data:text/html,hi", None, None),
        ("ftp://example.org/file", None, None),
        ("https://", None, None),
        ("http://example.org:99999/", None, None),
        ("", None, None),
        (None, None, None),
    ],
)
def test_canonical_url(url, base, expected):
    assert canonical_url(url, base) == expected


WHEN = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("guid", "url", "title", "published", "expected_prefix"),
    [
        ("  abc-123 ", "https://example.org/a", "T", WHEN, "guid:abc-123"),
        (None, "https://example.org/a", "T", WHEN, "url:https://example.org/a"),
        ("   ", "https://example.org/a", "T", WHEN, "url:https://example.org/a"),
        (None, None, "T", WHEN, "hash:"),
        (None, None, None, None, "hash:"),
    ],
)
def test_item_key_prefers_guid_then_link_then_hash(guid, url, title, published, expected_prefix):
    assert item_key(guid=guid, url=url, title=title, published=published).startswith(expected_prefix)


def test_hash_key_depends_on_title_and_date():
    a = item_key(guid=None, url=None, title="Titre", published=WHEN)
    assert a == item_key(guid=None, url=None, title="Titre", published=WHEN)
    assert a != item_key(guid=None, url=None, title="Titre", published=None)
    assert a != item_key(guid=None, url=None, title="Autre", published=WHEN)


def test_very_long_guid_is_hashed_to_fit_a_column():
    key = item_key(guid="x" * 5000, url=None, title=None, published=None)
    assert key.startswith("guid:sha256:") and len(key) <= MAX_KEY_LENGTH


def test_content_hash_changes_with_any_visible_field():
    base = content_hash("t", "s", "c")
    assert base == content_hash("t", "s", "c")
    assert len({base, content_hash("t2", "s", "c"), content_hash("t", "s2", "c"), content_hash("t", "s", None)}) == 4

"""The pure rules behind the chat commands (issue #6): times, quiet hours, time zones, deep links,
the throttling window, the export format and the preview's matching."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.core.query import parse_query
from bot.db.chat_queries import StoredArticle
from bot.services.chats import ChatSettingError, parse_quiet_hours, parse_timezone
from bot.services.preview import preview_matches
from bot.services.subscriptions import BadImportFile, normalize_time, parse_alerts_export
from bot.telegram.middlewares import SlidingWindow
from bot.telegram.texts import deep_link_payload, query_from_deep_link


@pytest.mark.parametrize(
    ("text", "expected"),
    [("8:30", "08:30"), ("08h30", "08:30"), ("8h", "08:00"), ("20", "20:00"), (" 7.05 ", "07:05"),
     ("24:00", None), ("12:60", None), ("midi", None), ("", None), ("123:00", None)],
)
def test_times_people_write_become_hh_mm(text: str, expected: str | None) -> None:
    assert normalize_time(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("22:00-07:00", ("22:00", "07:00")), ("22h - 7h", ("22:00", "07:00")), ("23:30 à 6:15", ("23:30", "06:15")),
     ("13:00–14:00", ("13:00", "14:00")), ("off", None), ("aucun", None)],
)
def test_quiet_hours_are_read_across_midnight_and_removable(text: str, expected: tuple | None) -> None:
    assert parse_quiet_hours(text) == expected


@pytest.mark.parametrize("text", ["22:00", "demain", "22:00-22:00", "25:00-07:00"])
def test_unreadable_quiet_hours_are_refused(text: str) -> None:
    with pytest.raises(ChatSettingError):
        parse_quiet_hours(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("Europe/Paris", "Europe/Paris"), ("europe/paris", "Europe/Paris"), ("utc", "UTC"),
     ("America/New York", "America/New_York")],
)
def test_time_zones_are_iana_names_in_any_case(text: str, expected: str) -> None:
    assert parse_timezone(text) == expected


@pytest.mark.parametrize("text", ["Mars/Olympus", "Paris", "../etc/passwd", ""])
def test_unknown_time_zones_are_refused(text: str) -> None:
    with pytest.raises(ChatSettingError):
        parse_timezone(text)


@pytest.mark.parametrize("query", ["OTAN Azerbaidjan", "Azerbaïdjan", '"Caucase du Sud" -football', "a-b c"])
def test_deep_link_payload_round_trips_and_fits_telegram(query: str) -> None:
    payload = deep_link_payload(query)
    assert payload is not None and len(payload) <= 64
    assert all(c.isascii() and (c.isalnum() or c in "_-") for c in payload)
    assert query_from_deep_link(payload) == query


def test_deep_links_that_are_not_subscriptions_are_ignored() -> None:
    assert query_from_deep_link(None) is None
    assert query_from_deep_link("ref_42") is None
    assert query_from_deep_link("subx_!!!") is None
    assert deep_link_payload("x" * 100) is None


def test_sliding_window_warns_once_then_drops_until_the_window_frees() -> None:
    now = [0.0]
    window = SlidingWindow(2, window=60, clock=lambda: now[0])
    assert [window.hit(1) for _ in range(5)] == ["ok", "ok", "warn", "drop", "drop"]
    assert window.hit(2) == "ok"  # another user is unaffected
    now[0] = 61
    assert window.hit(1) == "ok"


def test_export_entries_are_normalised_and_bad_files_refused() -> None:
    entries = parse_alerts_export(
        b'{"alerts": [{"query": "OTAN", "mode": "weekly", "digest_time": "7h", "digest_weekday": 9},'
        b' "Arm\xc3\xa9nie", {"query": "x", "mode": "hourly", "sources": ["https://a/feed", 3]}]}'
    )
    assert [(e["query"], e["mode"], e["digest_time"], e["digest_weekday"]) for e in entries] == [
        ("OTAN", "weekly", "07:00", None), ("Arménie", "instant", None, None), ("x", "instant", None, None)]
    assert entries[2]["sources"] == ["https://a/feed"]
    for bad in (b"not json", b'{"alerts": 3}', b'{"alerts": [{"name": "no query"}]}', b"x" * (1024 * 1024 + 1)):
        with pytest.raises(BadImportFile):
            parse_alerts_export(bad)


def test_preview_counts_matches_per_source_newest_first() -> None:
    def article(i: int, title: str, source: str) -> StoredArticle:
        return StoredArticle(i, title, "", None, "fr", 1, source, "https://x/feed", datetime(2025, 1, 10 - i, tzinfo=UTC))

    articles = [article(1, "L'OTAN à Bakou", "B"), article(2, "Botanique", "A"), article(3, "OTAN et Arménie", "A"),
                article(4, "NATO summit", "A")]
    result = preview_matches(parse_query("OTAN"), articles, days=7, newest=1)
    assert (result.count, result.scanned) == (2, 4)
    assert [a.id for a in result.newest] == [1]
    assert result.per_source == (("A", 1), ("B", 1))

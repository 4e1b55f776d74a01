"""Digest composition: grouped by alert, best first, one entry per story, split to fit, "more"."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.core.digest import DigestItem, DigestLabels, compose_digest
from tests.telegram_html import check_telegram_html, visible_length


def item(alert: int, article: int, *, story: int | None = None, outlets: int = 1, day: int = 1,
         title: str | None = None, url: str | None = None) -> DigestItem:
    return DigestItem(
        alert_id=alert, alert_name=f"Alerte {alert}", article_id=article, title=title or f"Titre {article}",
        url=url if url is not None else f"https://news.example/{article}", source_name="Le Fil",
        published=datetime(2026, 1, day, tzinfo=UTC), story_id=story, outlets=outlets,
    )


def titles(html: str) -> list[str]:
    return [line.split(">", 2)[1].split("<")[0] for line in html.splitlines() if line.startswith("• ")]


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        # best first: more outlets, then newer
        ([item(1, 1, outlets=1, day=5), item(1, 2, outlets=3, day=1), item(1, 3, outlets=1, day=9)],
         ["Titre 2", "Titre 3", "Titre 1"]),
        # the same story twice (two sources) is one entry; under two alerts, it stays under the better one
        ([item(1, 1, story=7), item(1, 2, story=7), item(2, 3, story=7, outlets=2)], ["Titre 3"]),
        # alerts ordered by their best entry
        ([item(1, 1, outlets=1), item(2, 2, outlets=4)], ["Titre 2", "Titre 1"]),
    ],
)
def test_entries_are_grouped_ranked_and_deduplicated(items: list[DigestItem], expected: list[str]) -> None:
    digest = compose_digest(items)
    assert [t for part in digest.parts for t in titles(part.html)] == expected
    assert len(digest.kept) + len(digest.dropped) == len(items)


def test_a_small_digest_is_one_message_with_header_and_headings() -> None:
    [part] = compose_digest([item(1, 1), item(2, 2, outlets=2)]).parts
    check_telegram_html(part.html)
    assert part.html.startswith("📬 <b>Digest</b> — 2 articles")
    assert "🔔 <b>Alerte 2</b>" in part.html and "(+1)" in part.html and part.more == 0


def test_hostile_text_is_escaped_and_bad_links_are_not_linked() -> None:
    [part] = compose_digest([item(1, 1, title="<b>x</b> & \u202eevil", url="javascript:alert(1)")]).parts
    check_telegram_html(part.html)
    assert "&lt;b&gt;x&lt;/b&gt; &amp; evil" in part.html and "javascript" not in part.html


def test_a_long_digest_splits_into_messages_that_fit_and_offers_more() -> None:
    items = [item(1 + n % 3, n, title=f"Titre {n} " + "mot " * 40) for n in range(200)]
    digest = compose_digest(items, DigestLabels(more="➕ {count} de plus"), max_messages=2)
    assert len(digest.parts) > 2
    for part in digest.parts:
        check_telegram_html(part.html)
        assert visible_length(part.html) <= 4096
    shown = sum(p.entries for p in digest.parts)
    assert shown == 200
    second = digest.parts[1]
    assert second.more == 200 - digest.parts[0].entries - second.entries
    assert second.html.endswith(f"➕ {second.more} de plus")
    assert all(p.more == 0 for p in digest.parts[:1])
    # a continued alert repeats its heading
    assert any(p.html.startswith("🔔 <b>Alerte") and "…" in p.html.split("\n", 1)[0] for p in digest.parts[1:])


def test_nothing_to_digest_gives_no_message() -> None:
    assert compose_digest([]).parts == ()


def test_max_messages_must_be_positive() -> None:
    with pytest.raises(ValueError):
        compose_digest([item(1, 1)], max_messages=0)

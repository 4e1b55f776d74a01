"""Article extraction (bot.fetcher.extract): golden page and teaser heuristics."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.core.feeds import FeedItem
from bot.fetcher.extract import (
    clean_article_text,
    declared_publication_date,
    extract_article,
    needs_full_text,
)

DATA = Path(__file__).parent / "data"
ARTICLE_URL = (
    "https://www.eureporter.co/fr/world/azerbaijan/2021/12/15/"
    "nato-chief-welcomes-azerbaijans-support-for-security-and-stability-in-the-south-caucasus/"
)


@pytest.fixture(scope="module")
def eureporter():
    return extract_article((DATA / "eureporter-fr-otan-azerbaidjan.html").read_bytes(), url=ARTICLE_URL + "?utm_source=x")


def test_golden_page_text_starts_with_the_first_paragraph(eureporter):
    assert eureporter.text.startswith("Avant le sommet du Partenariat oriental")


@pytest.mark.parametrize("chrome", ["Suivez nous sur", "PARTAGEZ", "Partagez", "Publicité", "Tendance",
                                    "La Commission approuve", "Tous droits réservés", "Accueil"])
def test_golden_page_chrome_never_reaches_the_text(eureporter, chrome):
    assert chrome not in eureporter.text


def test_golden_page_keeps_every_paragraph_and_its_metadata(eureporter):
    assert eureporter.text.rstrip().endswith("pour tout le monde. »")
    assert eureporter.text.count("\n") == 7  # the page's eight paragraphs, one per line
    assert eureporter.title.startswith("Le chef de l'OTAN salue le soutien de l'Azerbaïdjan")
    assert eureporter.date == datetime(2021, 12, 14, 15, 12, 3, tzinfo=UTC)
    assert eureporter.language == "fr"
    assert eureporter.canonical_url == ARTICLE_URL


@pytest.mark.parametrize("page", [b"", b"<html><body><nav>Menu</nav></body></html>", b"\x00\x01 not html"])
def test_page_without_main_text_gives_none(page):
    assert extract_article(page, url="https://example.org/a") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Titre\nPARTAGEZ:\nCorps du texte.", "Corps du texte."),
        ("Publicité\nLa publicité en ligne recule.\nSuivez-nous sur Twitter", "La publicité en ligne recule."),
        ("Tendance\nLire aussi :\nShare this article\nTexte.", "Texte."),
        ("Autre titre\nTitre", "Autre titre\nTitre"),  # only a leading copy of the title is dropped
    ],
)
def test_clean_article_text_drops_only_whole_chrome_lines(text, expected):
    assert clean_article_text(text, title="Titre") == expected


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ('<meta property="article:published_time" content="2021-12-14T15:12:03+00:00">',
         datetime(2021, 12, 14, 15, 12, 3, tzinfo=UTC)),
        ('<meta content="2021-12-14T16:00:00+01:00" itemprop="datePublished">', datetime(2021, 12, 14, 15, tzinfo=UTC)),
        ('<script type="application/ld+json">{"datePublished": "2021-12-14T15:00:00Z"}</script>',
         datetime(2021, 12, 14, 15, tzinfo=UTC)),
        ('<time datetime="2021-12-14">14 déc.</time>', datetime(2021, 12, 14, tzinfo=UTC)),
        ("<p>no date</p>", None),
    ],
)
def test_declared_publication_date(html, expected):
    assert declared_publication_date(html) == expected


def _item(summary: str, content: str | None = None, url: str | None = "https://example.org/a") -> FeedItem:
    return FeedItem(key="k", guid=None, url=url, title="T", summary=summary, content_text=content, published=None,
                    author=None, categories=(), language=None, content_hash="h")


LONG = "Une phrase complète qui dit quelque chose d'utile. " * 20


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        (_item("Court résumé."), True),
        (_item(LONG + " […]"), True),
        (_item(LONG + " [...]"), True),
        (_item(LONG + " Lire la suite"), True),
        (_item(LONG + " Read more →"), True),
        (_item(LONG), False),
        (_item("Court", content=LONG), False),
        (_item("Court", content="Contenu court."), True),
        (_item("Court", url=None), False),  # nothing to fetch
    ],
)
def test_needs_full_text_detects_teasers(item, expected):
    assert needs_full_text(item) is expected

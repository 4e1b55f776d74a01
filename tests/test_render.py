"""Alert rendering: golden files for the layout, the strict checker for validity, limits for length.

Golden files live in tests/data/render/<case>.html. After a deliberate change of layout, regenerate
them with `UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_render.py` and review the diff.
"""

from __future__ import annotations

import dataclasses
import os
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.render import (
    AlertView,
    RenderedMessage,
    escape,
    render_alert,
    render_alerts_bundle,
    utf16_length,
)
from bot.core.summary import summarize
from tests.telegram_html import check_telegram_html, visible_length, visible_text

DATA = Path(__file__).parent / "data"
GOLDEN = DATA / "render"
SAMPLE_TITLE = "Le chef de l'OTAN salue le soutien de l'Azerbaïdjan à la sécurité et à la stabilité dans le Caucase du Sud"
SAMPLE_URL = "https://www.eureporter.co/fr/world/azerbaijan/2021/12/15/nato-chief-azerbaijan/"
PUBLISHED = datetime(2021, 12, 14, 17, 5, tzinfo=UTC)

BASE = AlertView(
    title=SAMPLE_TITLE,
    url=SAMPLE_URL,
    source_name="EU Reporter",
    published=PUBLISHED,
    timezone="Europe/Paris",
    summary=summarize(
        (DATA / "eureporter-fr-otan-azerbaidjan.txt").read_text(encoding="utf-8"),
        language="fr",
        title=SAMPLE_TITLE,
    ),
    matched_terms=("OTAN", "Azerbaïdjan"),
)

CASES: dict[str, AlertView] = {
    "fr_sample": BASE,
    "fr_several_alerts_and_also_in": dataclasses.replace(
        BASE, alert_name="Caucase du Sud", also_in=("Le Monde", "Euractiv", "eu reporter", "le monde")
    ),
    "en_labels_and_new_york_time": dataclasses.replace(
        BASE,
        title="NATO chief hails Azerbaijan's support",
        summary="NATO's secretary general met President Aliyev. They discussed the South Caucasus.",
        timezone="America/New_York",
        language="en",
        matched_terms=("NATO",),
        also_in=("Reuters",),
    ),
    "hostile_markup": dataclasses.replace(
        BASE,
        title='<script>alert("x")</script> AT&T &amp; <b>bold</b>',
        url='https://example.org/search?q=a&b="c"<d>',
        source_name="Evil & Co <i>",
        summary="1 < 2 && 3 > 2; \"quotes\" & 'apostrophes' &lt;not decoded&gt;.",
        matched_terms=("AT&T", "<b>"),
        alert_name="</b>Alerte",
    ),
    "emoji_and_rtl": dataclasses.replace(
        BASE,
        title="🔥 عاجل: الرئيس يزور باريس \u202eevil\u202c 👨‍👩‍👧",
        summary="שלום עולם. Un résumé mêlé d'hébreu et d'emoji 🎉.",
        matched_terms=("باريس", "🔥"),
    ),
    "no_link_no_time_no_title": dataclasses.replace(
        BASE, title="  \n ", url="javascript:alert(1)", published=None, summary="", matched_terms=()
    ),
    "bad_timezone_and_naive_time": dataclasses.replace(
        BASE, timezone="Mars/Olympus_Mons", published=datetime(2021, 12, 14, 17, 5)
    ),
    "control_characters": dataclasses.replace(
        BASE, title="Line one\nline two\x00\x07\tend", summary="Tab\there.\r\nNext line.\u2028Separator."
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_rendering_matches_golden_file(case: str) -> None:
    text = render_alert(CASES[case]).text
    golden = GOLDEN / f"{case}.html"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8")


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_case_is_valid_telegram_html(case: str) -> None:
    check_telegram_html(render_alert(CASES[case]).text)


def test_sample_alert_says_what_why_and_where() -> None:
    text = render_alert(BASE).text
    assert text.startswith(f'<b><a href="{SAMPLE_URL}">Le chef de l\'OTAN')
    assert "<i>EU Reporter</i> · 14 déc. 2021, 18:05" in text  # 17:05 UTC is 18:05 in Paris in winter
    assert "Avant le sommet du Partenariat oriental" in text
    assert text.endswith("🔎 OTAN, Azerbaïdjan")


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("AT&T", "AT&amp;T"),
        ("&amp;", "&amp;amp;"),
        ("<script>", "&lt;script&gt;"),
        ('"q"', "&quot;q&quot;"),
        ("l'OTAN", "l'OTAN"),
        ("🔎 é", "🔎 é"),
    ],
)
def test_escape(raw: str, escaped: str) -> None:
    assert escape(raw) == escaped


def test_hostile_text_never_becomes_markup() -> None:
    text = render_alert(CASES["hostile_markup"]).text
    assert "<script>" not in text and "<b>bold" not in text
    assert visible_text(text).splitlines()[0] == '<script>alert("x")</script> AT&T &amp; <b>bold</b>'


def test_bidi_overrides_are_removed_but_rtl_text_kept() -> None:
    text = render_alert(CASES["emoji_and_rtl"]).text
    assert "\u202e" not in text and "\u202c" not in text
    assert "الرئيس يزور باريس" in text and "שלום עולם" in text


@pytest.mark.parametrize("url", ["javascript:alert(1)", "ftp://example.org/", "", "example.org", "https://"])
def test_non_http_links_are_not_rendered(url: str) -> None:
    text = render_alert(dataclasses.replace(BASE, url=url)).text
    assert "<a " not in text
    assert text.startswith("<b>Le chef")


LONG_TEXT = " ".join(f"Phrase numéro {n} d'un texte très long, avec 🔎 emoji." for n in range(120))


@pytest.mark.parametrize("max_length", [4096, 1000, 300, 120])
def test_long_summary_shrinks_first_and_keeps_the_link(max_length: int) -> None:
    assert len(LONG_TEXT) > 5000
    view = dataclasses.replace(BASE, summary=LONG_TEXT, also_in=("Le Monde",))
    text = render_alert(view, max_length=max_length).text
    check_telegram_html(text, max_length=max_length)
    assert f'<a href="{SAMPLE_URL}">' in text
    assert SAMPLE_TITLE in visible_text(text)
    if max_length >= 300:
        assert "🔎 OTAN, Azerbaïdjan" in text and "Le Monde" in text
        summary = visible_text(text).split("\n\n")[1]
        assert summary.endswith(".")  # whole sentences kept, no word cut
        assert summary.startswith("Phrase numéro 0 ")


def test_length_counts_utf16_units_of_emoji() -> None:
    # 2,000 emoji are 4,000 UTF-16 units: with the header they cannot all fit.
    view = dataclasses.replace(BASE, summary="🔎" * 2000 + " fin.")
    text = render_alert(view).text
    check_telegram_html(text)
    assert visible_length(text) <= 4096
    assert "fin." not in text


def test_huge_title_is_capped_and_other_lines_survive() -> None:
    view = dataclasses.replace(BASE, title="Titre " * 1000, source_name="S" * 5000)
    text = render_alert(view).text
    check_telegram_html(text)
    first_line = visible_text(text).splitlines()[0]
    assert first_line.endswith("…") and utf16_length(first_line) <= 300
    assert "🔎 OTAN" in text and "Avant le sommet" in text


def test_tiny_limit_still_gives_a_valid_nonempty_message() -> None:
    view = dataclasses.replace(BASE, summary=LONG_TEXT, alert_name="Alerte", also_in=("A", "B"))
    text = render_alert(view, max_length=20).text
    check_telegram_html(text, max_length=20)
    assert f'href="{SAMPLE_URL}"' in text


@pytest.mark.parametrize(
    ("language", "label", "date"),
    [
        ("fr", "Aussi dans\u00a0:", "14 déc. 2021, 18:05"),
        ("en", "Also in:", "14 Dec 2021, 18:05"),
        ("de", "Also in:", "14 Dec 2021, 18:05"),
    ],
)
def test_labels_follow_the_chat_language(language: str, label: str, date: str) -> None:
    text = render_alert(dataclasses.replace(BASE, language=language, also_in=("Le Monde",))).text
    assert f"📰 {label} Le Monde" in text
    assert date in text


def test_summer_time_is_applied() -> None:
    view = dataclasses.replace(BASE, published=datetime(2022, 7, 1, 10, 0, tzinfo=UTC))
    assert "1 juil. 2022, 12:00" in render_alert(view).text


def small_view(n: int) -> AlertView:
    return dataclasses.replace(
        BASE, title=f"Alerte {n}", url=f"https://example.org/{n}", summary=f"Résumé {n}."
    )


def test_bundle_of_small_alerts_fits_in_one_message_without_preview() -> None:
    messages = render_alerts_bundle([small_view(n) for n in range(3)])
    assert len(messages) == 1
    assert messages[0].disable_link_preview
    check_telegram_html(messages[0].text)
    assert [int(n) for n in re.findall(r"Alerte (\d+)", messages[0].text)] == [0, 1, 2]


def test_bundle_of_one_alert_is_that_alert_with_preview() -> None:
    assert render_alerts_bundle([BASE]) == [RenderedMessage(render_alert(BASE).text, False)]


def test_bundle_splits_when_alerts_do_not_fit_and_keeps_order() -> None:
    views = [dataclasses.replace(small_view(n), summary=LONG_TEXT[:1500]) for n in range(10)]
    messages = render_alerts_bundle(views)
    assert 1 < len(messages) < 10
    numbers: list[int] = []
    for message in messages:
        check_telegram_html(message.text)
        numbers += [int(n) for n in re.findall(r"Alerte (\d+)", message.text)]
    assert numbers == list(range(10))


def test_bundle_of_nothing_is_no_message() -> None:
    assert render_alerts_bundle([]) == []


outside_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)) | st.sampled_from(list("<>&\"';#🔎é\u202e\n ")),
    max_size=300,
)


@settings(max_examples=150, deadline=None)
@given(
    title=outside_text,
    source=outside_text,
    summary=st.text(max_size=6000) | outside_text,
    terms=st.lists(outside_text, max_size=5),
    alert_name=st.none() | outside_text,
    max_length=st.sampled_from([4096, 500, 60]),
)
def test_any_outside_text_renders_to_a_valid_message(
    title: str, source: str, summary: str, terms: list[str], alert_name: str | None, max_length: int
) -> None:
    view = dataclasses.replace(
        BASE, title=title, source_name=source, summary=summary, matched_terms=terms, alert_name=alert_name
    )
    check_telegram_html(render_alert(view, max_length=max_length).text, max_length=max_length)


@pytest.mark.parametrize(
    ("url", "href"),
    [
        ("https://example.org/a?b=1&c=2", "https://example.org/a?b=1&amp;c=2"),
        ("https://example.org/a b", "https://example.org/a%20b"),
        ('https://example.org/"x"<y>', "https://example.org/%22x%22%3Cy%3E"),
        ("https://example.org/déjà", "https://example.org/d%C3%A9j%C3%A0"),
        ("https://example.org/d%C3%A9j%C3%A0#frag", "https://example.org/d%C3%A9j%C3%A0#frag"),
        ("HTTP://EXAMPLE.ORG/", "HTTP://EXAMPLE.ORG/"),
    ],
)
def test_links_are_percent_encoded_and_escaped(url: str, href: str) -> None:
    assert f'<a href="{href}">' in render_alert(dataclasses.replace(BASE, url=url)).text

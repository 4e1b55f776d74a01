"""Language detection: French and English reliably, other news languages by code, None when unsure."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.core.language import NEWS_LANGUAGES, detect_language
from bot.core.summary import clean_text

SAMPLE = (Path(__file__).parent / "data" / "eureporter-fr-otan-azerbaidjan.txt").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("text", "language"),
    [
        (SAMPLE, "fr"),
        (clean_text(SAMPLE), "fr"),
        ("Le chef de l'OTAN salue le soutien de l'Azerbaïdjan", "fr"),
        ("Macron annonce un remaniement du gouvernement", "fr"),
        ("NATO chief hails Azerbaijan support for security", "en"),
        ("Trump says tariffs will stay in place next year", "en"),
        ("Brexit: UK and EU reach a deal on fishing rights", "en"),
        ("Die Bundesregierung hat heute ein neues Gesetz beschlossen", "de"),
        ("El presidente del gobierno anunció nuevas medidas económicas", "es"),
        ("Il governo italiano ha approvato la nuova legge di bilancio", "it"),
        ("Президент России заявил о новых мерах поддержки экономики", "ru"),
        ("الرئيس الفرنسي يزور الجزائر الأسبوع المقبل", "ar"),
    ],
)
def test_detects_news_languages(text: str, language: str) -> None:
    assert detect_language(text) == language


@pytest.mark.parametrize("text", ["", "ok", "12345 678", "OTAN Azerbaïdjan", "🔎🔎🔎", "Le président"])
def test_too_short_or_unclear_text_gives_none(text: str) -> None:
    assert detect_language(text) is None


def test_answers_are_two_letter_codes_of_the_news_set() -> None:
    assert all(len(code) == 2 for code in NEWS_LANGUAGES)
    assert {"fr", "en"} <= set(NEWS_LANGUAGES)


def test_only_the_beginning_is_read() -> None:
    english = "The government announced new measures to support the economy on Tuesday. " * 40
    assert detect_language(english + "Le gouvernement a annoncé de nouvelles mesures. " * 200) == "en"

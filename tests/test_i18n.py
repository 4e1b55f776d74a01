"""Translations: every string the code marks has a French translation, with the same placeholders, and
renders as valid Telegram HTML."""

from __future__ import annotations

import string

import pytest

from bot.i18n import catalogue, normalize_language, translator
from bot.i18n_extract import extract_msgids
from tests.telegram_html import check_telegram_html

MSGIDS = sorted(extract_msgids())


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_the_code_marks_strings_for_translation() -> None:
    assert len(MSGIDS) >= 15


@pytest.mark.parametrize("msgid", MSGIDS, ids=[m[:40] for m in MSGIDS])
def test_every_string_has_a_french_translation_with_the_same_placeholders(msgid: str) -> None:
    french = catalogue("fr").get(msgid)
    assert french, f"missing French translation for {msgid!r}: add it to bot/locales/fr/LC_MESSAGES/veille.po"
    assert _placeholders(french) == _placeholders(msgid)
    sample = {name: "x" for name in _placeholders(msgid)}
    check_telegram_html(french.format(**sample))
    check_telegram_html(msgid.format(**sample))


@pytest.mark.parametrize(
    ("code", "expected"),
    [("fr", "fr"), ("fr-CA", "fr"), ("en", "en"), ("en-GB", "en"), ("de", "en"), (None, "fr"), ("", "fr")],
)
def test_telegram_language_codes_map_to_a_spoken_language(code: str | None, expected: str) -> None:
    assert normalize_language(code) == expected


def test_translator_falls_back_to_english_and_formats() -> None:
    assert translator("fr")("🗑 Alert #{id} deleted: <b>{query}</b>", id=3, query="OTAN") == (
        "🗑 Alerte n°3 supprimée : <b>OTAN</b>"
    )
    assert translator("en")("🗑 Alert #{id} deleted: <b>{query}</b>", id=3, query="OTAN") == (
        "🗑 Alert #3 deleted: <b>OTAN</b>"
    )
    assert translator("de")("not in any catalogue") == "not in any catalogue"

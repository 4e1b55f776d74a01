"""Translations: gettext catalogues (`bot/locales/<lang>/LC_MESSAGES/*.po`), English msgids.

Each feature keeps its own `.po` file (veille.po for the core, chat.po, admin.po, …); a language's
catalogue is all of them merged.

The `.po` files are read with Babel at start (no compiled `.mo` to keep in sync). `translator(lang)`
returns the `_` a handler uses; an unknown language or a missing entry falls back to English, and a
test fails when any msgid in the code lacks a French translation.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from babel.messages.pofile import read_po

LOCALES_DIR = Path(__file__).resolve().parent / "locales"
DOMAIN = "veille"
LANGUAGES = ("fr", "en")

Gettext = Callable[..., str]


@cache
def catalogue(language: str) -> dict[str, str]:
    entries: dict[str, str] = {}
    for path in sorted((LOCALES_DIR / language / "LC_MESSAGES").glob("*.po")):
        with path.open("rb") as handle:
            po = read_po(handle, locale=language)
        entries.update({str(m.id): str(m.string) for m in po if m.id and m.string and not m.fuzzy})
    return entries


def normalize_language(code: str | None, default: str = "fr") -> str:
    """Telegram's `language_code` ("fr-CA", "en") → one of the languages Veille speaks."""
    if not code:
        return default
    primary = code.split("-")[0].split("_")[0].lower()
    return primary if primary in LANGUAGES else "en"


def translator(language: str) -> Gettext:
    entries = catalogue(language) if language != "en" else {}

    def gettext(message: str, /, **params: Any) -> str:
        text = entries.get(message, message)
        return text.format(**params) if params else text

    return gettext


def N_(message: str) -> str:
    """Marks a string for extraction without translating it now (translated where it is shown)."""
    return message

"""Finds the translatable strings in Veille's code: `_("…")` calls and `N_("…")` marks.

Used by the test that fails when a string lacks a translation, and by `python -m bot.i18n_extract`
which prints the msgids missing from a catalogue (to add them to the .po file).
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.extract import extract_from_dir

PACKAGE = Path(__file__).resolve().parent


def extract_msgids() -> set[str]:
    found: set[str] = set()
    for _filename, _lineno, message, _comments, _context in extract_from_dir(
        str(PACKAGE), method_map=[("**.py", "python")], keywords={"_": None, "N_": None}
    ):
        if isinstance(message, str) and message:
            found.add(message)
    return found


def main() -> int:
    from bot.i18n import catalogue

    language = sys.argv[1] if len(sys.argv) > 1 else "fr"
    missing = sorted(extract_msgids() - set(catalogue(language)))
    for msgid in missing:
        print(repr(msgid))
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())

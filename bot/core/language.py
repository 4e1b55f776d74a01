"""Language of an article, as an ISO 639-1 code, or None when the text does not say.

Rules:
- The detector is py3langid (a naive Bayes model over byte n-grams that ships inside the package:
  nothing is downloaded). It is restricted to `NEWS_LANGUAGES`, the two-letter codes of languages a
  news feed plausibly carries: the full model's 140 labels include dialects and constructed languages
  ("vec", "pcm", "vo") that a short English headline sometimes lands on.
- Fewer than `MIN_LETTERS` letters (a bare name, "OTAN Azerbaïdjan", a number) give None: no model
  can tell a language from that.
- A best guess whose probability is below `MIN_CONFIDENCE` gives None, so callers fall back to the
  feed's declared language or to no language-specific treatment at all.
- Only the first `MAX_CHARS` characters are read: the language does not change halfway through an
  article, and it bounds the cost.

The model is loaded once, on first use (about half a second), and kept: the functions are pure from
then on. Callers run detection in an executor, like summaries.
"""

from __future__ import annotations

import functools
import re

__all__ = ["MIN_CONFIDENCE", "MIN_LETTERS", "NEWS_LANGUAGES", "detect_language"]

# fmt: off
NEWS_LANGUAGES: tuple[str, ...] = (
    "fr", "en", "de", "es", "it", "pt", "nl", "ca", "ro", "pl", "cs", "sk", "hu", "sv", "da", "no",
    "fi", "el", "ru", "uk", "bg", "sr", "hr", "sl", "lt", "lv", "et", "tr", "az", "hy", "ka", "ar",
    "fa", "he", "hi", "zh", "ja", "ko", "id", "vi",
)
# fmt: on
MIN_LETTERS = 12
MIN_CONFIDENCE = 0.5
MAX_CHARS = 2000

_LETTER = re.compile(r"[^\W\d_]")


def detect_language(text: str) -> str | None:
    """ISO 639-1 code of the text's language ("fr", "en", …), or None when too short or unsure."""
    sample = text[:MAX_CHARS]
    if len(_LETTER.findall(sample)) < MIN_LETTERS:
        return None
    language, confidence = _identifier().classify(sample)
    if confidence < MIN_CONFIDENCE:
        return None
    return str(language)


@functools.cache
def _identifier():  # -> py3langid.langid.LanguageIdentifier, imported lazily: numpy is slow to import
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(list(NEWS_LANGUAGES))
    return identifier

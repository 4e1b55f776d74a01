"""The one text normaliser: queries, matching, story clustering and summaries all go through it.

Rules, applied identically to queries and to article text:

- Case is ignored (`str.lower`), and so are accents: every letter is reduced to its NFKD base
  (é è ê ë → e, ç → c, ñ → n, fullwidth and ligature forms to their plain letters).
- Ligatures and special letters expand: œ → oe, æ → ae, ß → ss, ø → o, ł → l, đ/ð → d, þ → th.
- Every apostrophe-like mark (’ ‘ ʼ ′ ` ´ ＇) is the straight apostrophe.
- A word is a run of letters and digits. Everything else separates words: spaces, non-breaking
  spaces, line breaks, hyphens of every kind (Haut-Karabakh is the two words haut karabakh),
  punctuation, quotes, slashes, underscores.
- French elisions are split off and dropped: an elided form at the start of a word followed by an
  apostrophe (l' d' j' m' t' n' s' c' qu' jusqu' lorsqu' puisqu') is not a word, so l’OTAN and
  d'Azerbaïdjan give `otan` and `azerbaidjan`. Other apostrophes just separate words
  (aujourd'hui → aujourd hui), on both sides alike, so phrases still line up.

`tokenize` keeps, for each word, its span in the ORIGINAL string so an alert can highlight it.

Speed matters (the matcher normalises every article once, thousands per second): instead of a
per-character loop or `str.translate` (slow on non-ASCII text in CPython), the normaliser looks at
the few distinct characters a text contains and rewrites each with one `str.replace`, keeping
positions one-to-one except for the rare characters that expand (œ) or vanish (combining marks),
whose offsets are recorded so spans can still be mapped back.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["Token", "fold", "tokenize", "normalize_words", "normalize_text", "NormalizedText", "ELISIONS"]

APOSTROPHES = "'’‘ʼ′`´＇‛"
# Letters that NFKD does not decompose but that readers treat as plain Latin letters.
_SPECIAL_LETTERS = {
    "œ": "oe", "æ": "ae", "ß": "ss", "ø": "o", "đ": "d", "ð": "d", "ł": "l", "þ": "th",
    "ħ": "h", "ı": "i", "ŀ": "l",
}
# Longest first is not needed for correctness (each is matched with a leading space), but keeps the
# list readable: the elided forms of French articles, pronouns and conjunctions.
ELISIONS = ("jusqu", "lorsqu", "puisqu", "qu", "l", "d", "j", "m", "t", "n", "s", "c")
_ELISION_PATTERNS = tuple((" " + form + "'", " " * (len(form) + 2)) for form in ELISIONS)
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
# ASCII characters that separate words (everything but letters, digits, the space and "'").
_ASCII_SEPARATORS = tuple(c for c in map(chr, range(128)) if not c.isalnum() and c not in " '")
# The only character whose lower-case form is longer than itself (İ → i + combining dot).
_DOTTED_CAPITAL_I = "\u0130"


@lru_cache(maxsize=8192)
def _fold_char(char: str) -> str:
    """Fold one already lower-cased character (see the module rules); idempotent."""
    if char.isascii():
        return char
    if char in APOSTROPHES:
        return "'"
    special = _SPECIAL_LETTERS.get(char)
    if special is not None:
        return special
    decomposed = unicodedata.normalize("NFKD", char)
    base = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
    if base == char:
        return char
    if len(base) > 1 and not all(c.isalnum() or c in APOSTROPHES for c in base):
        # Symbols that decompose into several words or punctuation (¼ → 1⁄4, … → ...) stay
        # themselves: one character must not turn into several words.
        return char
    # A decomposition can itself contain apostrophes or special letters (ŉ → ʼn).
    return "".join(_fold_char(c) if c != char else c for c in base)


@lru_cache(maxsize=8192)
def _word_char(char: str) -> str:
    """What `char` (lower-cased) becomes in the word view: folded letters, spaces, or "'"."""
    out = []
    for c in _fold_char(char):
        if c == "'" or c == " ":
            out.append(c)
        elif c.isalnum():
            out.append(c)
        elif unicodedata.category(c).startswith("M"):
            # Spacing marks of other scripts (Devanagari vowel signs) belong to their word;
            # combining accents were already removed by the NFKD folding above.
            out.append(c)
        else:
            out.append(" ")
    return "".join(out)


# Lower-case characters frequent in French and English news, with their word-view form: checked one
# by one with `in` (a memchr-speed scan), which beats collecting a text's distinct characters with a
# regular expression (the scan that dominated normalisation).
_COMMON_WORD_CHARS = tuple(
    (char, _word_char(char))
    for char in "éèêëàâäîïôöûùüçœæÿñáíóú\xa0\u202f\u2009’‘“”«»–—…•·°€£\u200b"
    if _word_char(char) != char
)


def fold(text: str) -> str:
    """Lower-case, strip accents, expand ligatures, unify apostrophes; punctuation is kept."""
    if _DOTTED_CAPITAL_I in text:
        text = text.replace(_DOTTED_CAPITAL_I, "i")
    folded = text.lower()
    if folded.isascii():
        return folded
    for char in set(_NON_ASCII.findall(folded)):
        mapped = _fold_char(char)
        if mapped != char:
            folded = folded.replace(char, mapped)
    return folded


@dataclass(frozen=True, slots=True)
class Token:
    text: str  # the normalised word
    start: int  # span in the original string
    end: int


class NormalizedText:
    """A text in its word view: `flat` holds only normalised words separated by spaces.

    `flat` has the same length as the original text except where characters expanded or vanished;
    `original_span` maps a span of `flat` back to the original string.
    """

    __slots__ = ("original", "flat", "_breaks", "_words")

    def __init__(self, original: str, flat: str, uneven: list[tuple[str, int]]) -> None:
        self.original = original
        self.flat = flat
        self._words: list[str] | None = None
        self._breaks: tuple[list[int], list[int], list[int]] | None = (
            self._find_breaks(original, uneven) if uneven else None
        )

    @staticmethod
    def _find_breaks(original: str, uneven: list[tuple[str, int]]) -> tuple[list[int], list[int], list[int]]:
        lengths = dict(uneven)
        lowered = original.replace(_DOTTED_CAPITAL_I, "i").lower()
        pattern = re.compile("|".join(re.escape(char) for char in lengths))
        flat_starts, flat_lengths, original_starts = [], [], []
        shift = 0
        for m in pattern.finditer(lowered):
            length = lengths[m.group()]
            flat_starts.append(m.start() + shift)
            flat_lengths.append(length)
            original_starts.append(m.start())
            shift += length - 1
        return flat_starts, flat_lengths, original_starts

    @property
    def words(self) -> list[str]:
        if self._words is None:
            self._words = self.flat.split()
        return self._words

    def _original_start(self, pos: int) -> int:
        assert self._breaks is not None
        flat_starts, flat_lengths, original_starts = self._breaks
        k = bisect_right(flat_starts, pos) - 1
        if k < 0:
            return pos
        expanded_end = flat_starts[k] + flat_lengths[k]
        if pos < expanded_end:
            return original_starts[k]
        return original_starts[k] + 1 + (pos - expanded_end)

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """Map the span [start, end) of `flat` (word boundaries) to the original string."""
        if self._breaks is None:
            return start, end
        flat_starts, flat_lengths, original_starts = self._breaks
        last = end - 1
        k = bisect_right(flat_starts, last) - 1
        if k >= 0 and flat_starts[k] <= last < flat_starts[k] + flat_lengths[k]:
            original_end = original_starts[k] + 1  # the word ends inside an expanded character
        else:
            original_end = self._original_start(end)
        return self._original_start(start), original_end


def normalize_text(text: str) -> NormalizedText:
    """The word view of `text`, computed once and shared by matching and highlighting."""
    if _DOTTED_CAPITAL_I in text:
        lowered = text.replace(_DOTTED_CAPITAL_I, "i").lower()
    else:
        lowered = text.lower()
    flat = lowered
    uneven: list[tuple[str, int]] = []
    # Only the distinct characters present are rewritten, one C-level `str.replace` each.
    for char in (c for c in _ASCII_SEPARATORS if c in lowered):
        flat = flat.replace(char, " ")
    if not flat.isascii():
        # The usual characters of French and English news first, each found by a C-level scan;
        # only what is left (other scripts, rare symbols) pays for the regular expression.
        for char, mapped in _COMMON_WORD_CHARS:
            if char in flat:
                if len(mapped) != 1:
                    uneven.append((char, len(mapped)))
                flat = flat.replace(char, mapped)
        if not flat.isascii():
            for char in set(_NON_ASCII.findall(flat)):
                mapped = _word_char(char)
                if mapped != char:
                    if len(mapped) != 1:
                        uneven.append((char, len(mapped)))
                    flat = flat.replace(char, mapped)
    if "'" in flat:
        flat = " " + flat
        for elided, blanks in _ELISION_PATTERNS:
            if elided in flat:
                flat = flat.replace(elided, blanks)
        flat = flat[1:].replace("'", " ")
    return NormalizedText(text, flat, uneven)


_WORD = re.compile(r"[^ ]+")


def tokenize(text: str) -> list[Token]:
    """The words of `text` with their spans in `text` itself."""
    normalized = normalize_text(text)
    return [
        Token(m.group(), *normalized.original_span(m.start(), m.end())) for m in _WORD.finditer(normalized.flat)
    ]


def normalize_words(text: str) -> list[str]:
    """The normalised words of `text`: `[t.text for t in tokenize(text)]`, faster."""
    return normalize_text(text).words

"""Sentence splitting for French and English news text.

Rules, in the order they are applied:

- A line break always ends a sentence: extracted article text holds one paragraph (or one heading,
  one caption) per line, and a heading has no final full stop to split on.
- Inside a line, a sentence ends after `.`, `!`, `?` or `…` (possibly repeated, possibly followed by
  closing quotes or brackets, including the French spaced ` »`), when whitespace follows and the next
  sentence visibly starts: an upper-case letter, a digit, an opening quote or bracket, a dash.
  A lower-case word after the stop means the stop was not an end ("etc. et", "env. trois").
- A full stop does not end a sentence after a known abbreviation or title (M., Mme, Dr., Prof., St.,
  janv., p., no., art., vs.), after a single capital initial ("J. Stoltenberg"), or after a dotted
  acronym ("U.S.", "U.E.", "a.m."): those are far more often followed by a name than by a new
  sentence, and for a summary a missed split is harmless while a wrong one ends it mid-sentence.
- Numbers are never split: "3.5", "120,000", "15 décembre" hold no whitespace after the dot, or no
  dot at all.

The splitter returns sentences stripped of surrounding whitespace, in order, and never an empty one.
`language` is accepted for the day a language needs rules of its own; French and English share these.
"""

from __future__ import annotations

import re

__all__ = ["ABBREVIATIONS", "ends_with_terminal_punctuation", "split_sentences"]

# Lower-cased, without the final dot. Both French and English: articles quote each other's names.
# fmt: off
ABBREVIATIONS: frozenset[str] = frozenset(
    {
        # French titles and forms of address
        "m", "mm", "mme", "mmes", "mlle", "mlles", "mgr", "pr", "dr", "drs", "ste", "st", "vve",
        # English titles
        "mr", "mrs", "ms", "messrs", "prof", "sr", "jr", "gen", "gov", "sen", "rep", "lt", "col",
        "capt", "cpt", "sgt", "maj", "cmdr", "adm", "rev", "hon", "pres", "supt", "insp", "fr",
        # references commonly followed by a name
        "al", "cf", "ed", "éd", "vs", "env", "approx", "bd", "boul", "ave", "tel", "tél", "mt", "ft",
        "dept", "réf", "ref", "resp", "sq",
        # months, French and English
        "janv", "fév", "févr", "avr", "juil", "sept", "oct", "nov", "déc", "jan", "feb", "mar",
        "apr", "jun", "jul", "aug", "sep", "dec",
    }
)
# fmt: on

# Abbreviations that are also ordinary words ("he said no.", "Ils étaient sept."): they only hold a
# sentence together when a number follows ("no. 10", "p. 12", "art. 49.3").
NUMBER_ABBREVIATIONS: frozenset[str] = frozenset(
    {"no", "nos", "n°", "nº", "vol", "p", "pp", "art", "chap", "fig", "ch", "op", "ex"}
)
# Case-sensitive ones: "Me Dupont" (Maître, the French title of lawyers) but "tell me. Then".
CASED_ABBREVIATIONS: frozenset[str] = frozenset({"Me", "Mes"})

_TERMINAL = ".!?…"
_CLOSERS = "\"'”’»)]"
# A candidate end: terminal punctuation, attached closers, optionally a spaced French closing
# guillemet, then whitespace. Group 1 is the end of the sentence.
_END = re.compile(r"([.!?…]+[\"'”’»)\]]*(?:[ \u00a0\u202f]+[»”])?)\s+")
# Besides capitals, digits and letters of scripts without case (Arabic, CJK), a sentence may start with these.
_OPENERS = frozenset("«\"“‘'([¿¡—–-")
_WORD_BEFORE = re.compile(r"(\S+)$")
_DOTTED_ACRONYM = re.compile(r"(?:\w\.){2,}$")
_SINGLE_INITIAL = re.compile(r"(?:^|[\s(«\"“])[A-ZÀ-ÖØ-Þ]$")


def split_sentences(text: str, language: str | None = None) -> list[str]:
    """Sentences of `text`, in order; see the module docstring for the rules."""
    sentences: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if line:
            sentences.extend(_split_line(line))
    return sentences


def ends_with_terminal_punctuation(sentence: str) -> bool:
    """True when the sentence closes with . ! ? or … (closing quotes and brackets allowed after)."""
    stripped = sentence.rstrip().rstrip(_CLOSERS + " \u00a0\u202f")
    return bool(stripped) and stripped[-1] in _TERMINAL


def _split_line(line: str) -> list[str]:
    pieces: list[str] = []
    start = 0
    for match in _END.finditer(line):
        next_start = match.end()
        if next_start >= len(line):
            break
        if not _starts_sentence(line[next_start]):
            continue
        if match.group(1)[0] == "." and not _dot_can_end(line[start : match.start(1)], line[next_start]):
            continue
        piece = line[start : match.end(1)].strip()
        if piece:
            pieces.append(piece)
        start = next_start
    tail = line[start:].strip()
    if tail:
        pieces.append(tail)
    return pieces


def _starts_sentence(char: str) -> bool:
    return char.isupper() or char.isdigit() or char in _OPENERS or (char.isalpha() and not char.islower())


def _dot_can_end(before: str, next_char: str) -> bool:
    """Whether a dot after `before`, with `next_char` starting the next word, may end a sentence."""
    # Only the last word matters; an anchored search over a long line would rescan it at every dot.
    before = before[-40:]
    found = _WORD_BEFORE.search(before)
    if found is None:
        return True
    # "l'art." is "art.": the elided article is not part of the abbreviation.
    word = re.split(r"['’]", found.group(1).lstrip("(«\"“‘'["))[-1]
    if _DOTTED_ACRONYM.search(word + "."):
        return False
    if _SINGLE_INITIAL.search(before):
        return False
    if word in CASED_ABBREVIATIONS:
        return False
    lowered = word.lower()
    if lowered in NUMBER_ABBREVIATIONS:
        return not next_char.isdigit()
    return lowered not in ABBREVIATIONS

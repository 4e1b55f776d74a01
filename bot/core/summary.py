"""Extractive summaries: two or three of the article's own sentences, read in two seconds.

Cleaning (`clean_text`), line by line:
- Page chrome is dropped: a line that is only a share/follow prompt ("PARTAGEZ:", "Partagez cet
  article:", "Suivez nous sur", "Share this article"), an advert label ("Publicité", "Advertisement"),
  a byline stub ("Publié le", "on"), a cookie or newsletter banner, a copyright line.
- A section header that introduces links ("Lire aussi", "À lire aussi", "Tendance", "Trending",
  "Related", "Les plus lus") is dropped together with the list that follows it: every following line
  that does not read as prose (at least `_PROSE_MIN_WORDS` words and a final full stop).
  "Lire aussi : <headline>" on one line is dropped alone.
- Sentences carrying a scraping artefact ("XNUMX", a translation plugin's placeholder for numbers, or
  the U+FFFD replacement character) are removed from their paragraph: the number is lost, so the
  sentence can no longer be trusted, and repairing it would invent text.
- HTML entities left undecoded are decoded; invisible characters (zero-width, soft hyphen) removed.
  Paragraphs stay one per line.

Summary (`summarize`):
- Candidates are the cleaned text's sentences that read as sentences: at least `_MIN_WORDS` words,
  a final . ! ? or …, balanced « » quotes, not the title repeated.
- The lead is always kept (news is written as an inverted pyramid: the first sentence says what
  happened). Other candidates are ranked by a LexRank-style degree centrality over shared content
  words (how much a sentence says what the others say), plus a bonus for words of the title and a
  decaying bonus for position; only the first `_MAX_CANDIDATES` candidates are considered, which keeps
  the cost bounded and matches where news puts its substance.
- The best-ranked candidates that still fit within `max_chars` are added, up to `_MAX_SENTENCES`, and
  printed in document order, joined by a space.
- When even the lead does not fit, it is cut at a word boundary and ends with "…". When no sentence
  qualifies, the longest usable line is cut the same way; only a text with no words gives "".
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass

from bot.core.sentences import ends_with_terminal_punctuation, split_sentences

__all__ = ["clean_text", "has_scraping_artefact", "summarize", "truncate_at_word"]

DEFAULT_MAX_CHARS = 400
_MAX_SENTENCES = 3
_MAX_CANDIDATES = 20
_MIN_WORDS = 6
_PROSE_MIN_WORDS = 12
_ELLIPSIS = "…"

# Whole-line chrome, compared after lower-casing, folding apostrophes and stripping punctuation/spaces at the ends.
# fmt: off
_CHROME_LINES: frozenset[str] = frozenset(
    {
        "publicité", "publicite", "advertisement", "advertising", "ad", "sponsored", "contenu sponsorisé",
        "partagez", "partager", "partagez cet article", "partager cet article", "partager sur facebook",
        "partager sur twitter", "partager sur x", "partager sur linkedin", "share", "share this",
        "share this article", "share this story", "share on facebook", "share on twitter", "tweet",
        "suivez nous sur", "suivez-nous sur", "suivez nous", "suivez-nous", "follow us on", "follow us",
        "publié le", "publié", "mis à jour le", "published on", "published", "updated", "on", "le", "by",
        "par", "imprimer", "print", "email", "e-mail", "envoyer", "commenter", "comments", "commentaires",
        "s'abonner", "abonnez-vous", "subscribe", "newsletter", "inscrivez-vous à notre newsletter",
        "sign up for our newsletter", "lire la suite", "read more", "en savoir plus", "voir plus",
        "fermer", "close", "menu", "accueil", "home", "rechercher", "search", "copier le lien",
        "copy link", "lien copié", "écouter cet article", "listen to this article",
    }
)
# fmt: on
# Header lines after which a list of links follows.
# fmt: off
_LIST_HEADERS: frozenset[str] = frozenset(
    {
        "tendance", "tendances", "trending", "trending now", "lire aussi", "à lire aussi", "a lire aussi",
        "voir aussi", "sur le même sujet", "dans la même rubrique", "les plus lus", "les plus lues",
        "articles les plus lus", "les plus partagés", "related", "related articles", "related stories",
        "read also", "see also", "more stories", "most read", "most popular", "popular", "recommandé",
        "recommended", "à la une", "dernières nouvelles", "latest news", "plus d'articles", "more from",
        "vous aimerez aussi", "you may also like", "you might also like", "nos autres articles",
    }
)
# fmt: on
# Lines that are chrome whatever follows the prefix ("Lire aussi : Un autre titre").
_CHROME_PREFIX = re.compile(
    r"^(?:©|(?:lire aussi|à lire aussi|a lire aussi|voir aussi|read also|read more|related|see also"
    r"|crédit photo|credit photo|photo credit|copyright|tous droits réservés|all rights reserved"
    r"|publié le|mis à jour le|published on|updated on)\b)",
    re.IGNORECASE,
)
_COOKIE_WORDS = re.compile(r"\bcookies?\b|\btraceurs\b|\bconsentement\b|\bconsent\b", re.IGNORECASE)
_COOKIE_ACTION = re.compile(
    r"\b(?:accept\w*|refuse\w*|param[eè]tr\w*|politique de confidentialit[ée]|privacy|personnalis\w*|"
    r"utilis(?:e|ons|ez)|use[sd]?|agree|g[ée]rer|manage)\b",
    re.IGNORECASE,
)
_ARTEFACT = re.compile(r"XNUMX|\ufffd|\{\{|\}\}|&[a-z]+;|&#\d+;")
# Runs of whitespace collapse to one space, except no-break spaces: French typography needs them
# before « ? ! : » and the summary keeps them.
_BLANKS = re.compile(r"[^\S\u00a0\u202f]+")
_INVISIBLE = re.compile(r"[\u00ad\u200b\u200c\u200d\u2060\ufeff]")
_WORD = re.compile(r"[^\W_]+(?:[-'’][^\W_]+)*")
_CONTENT_WORD = re.compile(r"[^\W\d_]{3,}")
_EDGE_PUNCT = " \t:;,.!?-–—•·|*#>»«\"'“”"

_ANAPHORA = re.compile(
    r"^(?:il|elle|ils|elles|cela|ceci|ce|celui-ci|celle-ci|ces|he|she|they|it|this|these|those|that)\b",
    re.IGNORECASE,
)

_STOPWORDS: frozenset[str] = frozenset(
    """
    les des une un le la du de et est sont été être avoir ont eu que qui quoi dont où pour par sur sous
    dans avec sans entre vers chez aux au ce cet cette ces son sa ses leur leurs nous vous ils elles
    elle lui mais ou donc car pas plus moins très tout tous toute toutes aussi comme même déjà encore
    fait faire dit selon après avant depuis pendant lors alors ainsi cela ceci celui celle ceux qu'il
    notamment également être sera seront était étaient avait avaient peut doit mme
    the and for are was were been being have has had not but with from this that these those their
    they them his her its our your you she him who whom which what when where why how than then
    there here also into onto over under about after before said says will would could should can
    may might must more most such only other some any each all both just very into upon while
    """.split()
)


def clean_text(text: str) -> str:
    """The text without page chrome, link lists and artefact sentences, one paragraph per line."""
    return "\n".join(_clean_lines(text))


def _clean_lines(text: str) -> Iterator[str]:
    """`clean_text`'s lines, lazily: a summary reads only as far as it needs."""
    text = _INVISIBLE.sub("", html.unescape(text) if "&" in text else text)
    in_link_list = False
    for raw_line in text.splitlines():
        line = _BLANKS.sub(" ", raw_line).strip()
        if not line:
            continue
        key = _line_key(line)
        if key in _LIST_HEADERS:
            in_link_list = True
            continue
        if in_link_list:
            if not _reads_as_prose(line):
                continue
            in_link_list = False
        if not key or key in _CHROME_LINES or _CHROME_PREFIX.match(key) or _is_cookie_banner(line):
            continue
        if _ARTEFACT.search(line):
            line = " ".join(s for s in split_sentences(line) if not _ARTEFACT.search(s))
            if not line:
                continue
        yield line


def has_scraping_artefact(text: str) -> bool:
    return _ARTEFACT.search(text) is not None


def summarize(
    text: str, *, language: str | None = None, max_chars: int = DEFAULT_MAX_CHARS, title: str | None = None
) -> str:
    """Two or three of the text's most informative sentences, lead first, within `max_chars`."""
    if max_chars <= 0:
        return ""
    title_words = _content_words(title) if title else frozenset()
    title_key = _sentence_key(title) if title else ""
    candidates: list[_Candidate] = []
    first_usable = ""
    position = 0
    for line in _clean_lines(text):
        for sentence in split_sentences(line, language):
            position += 1
            words = _WORD.findall(sentence)
            if not words or (title_key and _words_key(words) == title_key):
                continue
            if _is_candidate(sentence, len(words)):
                candidates.append(_Candidate(position, sentence, _content_words(sentence)))
            elif not first_usable:
                first_usable = sentence
        if len(candidates) >= _MAX_CANDIDATES:
            break
    candidates = candidates[:_MAX_CANDIDATES]
    if not candidates:
        # No sentence qualifies (a feed description, a headline): its first words are better than nothing.
        return truncate_at_word(first_usable, max_chars)
    lead = candidates[0]
    if len(lead.text) > max_chars:
        return truncate_at_word(lead.text, max_chars)
    chosen = [lead]
    used = len(lead.text)
    for candidate in _ranked(candidates[1:], candidates, title_words):
        if len(chosen) >= _MAX_SENTENCES:
            break
        if used + 1 + len(candidate.text) <= max_chars:
            chosen.append(candidate)
            used += 1 + len(candidate.text)
    chosen.sort(key=lambda candidate: candidate.position)
    return " ".join(candidate.text for candidate in chosen)


def truncate_at_word(text: str, max_chars: int) -> str:
    """`text` if it fits, else its longest word-boundary prefix that fits with a final "…"."""
    text = text.strip()
    if len(text) <= max_chars:
        return text
    if max_chars <= len(_ELLIPSIS):
        return ""
    room = max_chars - len(_ELLIPSIS)
    cut = text[: room + 1]
    boundary = cut.rfind(" ")
    if boundary <= 0:
        # One unbroken word longer than the room: cut it, there is no better boundary.
        head = text[:room]
    else:
        head = cut[:boundary]
    head = head.rstrip(" ,;:–—-([«\"'“")
    return head + _ELLIPSIS if head else ""


@dataclass(frozen=True, slots=True)
class _Candidate:
    position: int
    text: str
    words: frozenset[str]


def _ranked(
    pool: list[_Candidate], everyone: list[_Candidate], title_words: frozenset[str]
) -> list[_Candidate]:
    """`pool` best first: degree centrality (LexRank without iteration), title overlap, position."""
    if not pool:
        return []
    log_size = {candidate.position: math.log(len(candidate.words) + 1) for candidate in everyone}
    centrality: dict[int, float] = {}
    for candidate in pool:
        total = 0.0
        for other in everyone:
            if other is candidate:
                continue
            shared = len(candidate.words & other.words)
            if shared:
                # TextRank's overlap similarity: normalised by sentence lengths so long sentences do not win by size.
                total += shared / (log_size[candidate.position] + log_size[other.position])
        centrality[candidate.position] = total
    top = max(centrality.values()) or 1.0

    def score(candidate: _Candidate) -> float:
        title_overlap = len(candidate.words & title_words) / len(title_words) if title_words else 0.0
        position_bonus = 1.0 / (1.0 + 0.3 * candidate.position)
        value = 0.55 * centrality[candidate.position] / top + 0.25 * title_overlap + 0.2 * position_bonus
        # "Il a également…" away from its antecedent reads as a riddle: prefer self-contained sentences.
        return value * 0.6 if _ANAPHORA.match(candidate.text) else value

    return sorted(pool, key=lambda candidate: (-score(candidate), candidate.position))


def _is_candidate(sentence: str, word_count: int) -> bool:
    if word_count < _MIN_WORDS or not ends_with_terminal_punctuation(sentence):
        return False
    if sentence.count("«") != sentence.count("»"):
        return False
    # All capitals is a banner or a shouted headline, not news prose.
    return sentence != sentence.upper() or sentence == sentence.lower()


def _content_words(text: str) -> frozenset[str]:
    return frozenset(
        word for word in (match.lower() for match in _CONTENT_WORD.findall(text)) if word not in _STOPWORDS
    )


def _sentence_key(text: str) -> str:
    return _words_key(_WORD.findall(text))


def _words_key(words: list[str]) -> str:
    return " ".join(words).lower()


def _line_key(line: str) -> str:
    return line.lower().replace("’", "'").strip(_EDGE_PUNCT)


def _reads_as_prose(line: str) -> bool:
    return len(_WORD.findall(line)) >= _PROSE_MIN_WORDS and ends_with_terminal_punctuation(line)


def _is_cookie_banner(line: str) -> bool:
    return bool(_COOKIE_WORDS.search(line) and _COOKIE_ACTION.search(line)) and len(line) < 600

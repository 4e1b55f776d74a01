"""A straightforward matcher, obviously correct, that the fast index is checked against.

It walks the query tree and, for every word or phrase, scans the article's tokens one position at
a time. No sets, no Aho-Corasick, no triggers, no CNF: just the rules of `bot.core.matching`.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from bot.core.matching import Document, TermHit
from bot.core.query import And, LangTerm, Node, Not, Or, Query, SourceTerm, TextTerm
from bot.core.text import Token, normalize_words, tokenize


def _occurrences(term: TextTerm, tokens: list[Token]) -> list[tuple[int, int]]:
    spans = []
    n = len(term.words)
    for i in range(len(tokens) - n + 1):
        window = tokens[i : i + n]
        exact = all(t.text == w for t, w in zip(window[:-1], term.words[:-1], strict=True))
        last = window[-1].text
        last_ok = last.startswith(term.words[-1]) if term.prefix else last == term.words[-1]
        if exact and last_ok:
            spans.append((window[0].start, window[-1].end))
    return spans


def _host(url: str) -> str:
    if not url:
        return ""
    return (urlsplit(url if "://" in url else "//" + url).hostname or "").rstrip(".")


def _source_matches(term: SourceTerm, doc: Document) -> bool:
    host = _host(doc.source_url)
    if host and (host == term.value or host.endswith("." + term.value)):
        return True
    words = normalize_words(doc.source_name)
    return bool(words) and term.value in (" ".join(words), "".join(words))


def _lang_matches(term: LangTerm, doc: Document) -> bool:
    if not doc.lang:
        return False
    return doc.lang.strip().replace("_", "-").split("-")[0].lower() == term.code


def _true(node: Node, doc: Document, title: list[Token], text: list[Token]) -> bool:
    if isinstance(node, And):
        return all(_true(c, doc, title, text) for c in node.children)
    if isinstance(node, Or):
        return any(_true(c, doc, title, text) for c in node.children)
    if isinstance(node, Not):
        return not _true(node.child, doc, title, text)
    if isinstance(node, SourceTerm):
        return _source_matches(node, doc)
    if isinstance(node, LangTerm):
        return _lang_matches(node, doc)
    if _occurrences(node, title):
        return True
    return not node.in_title and bool(_occurrences(node, text))


def _positive_terms(node: Node, positive: bool = True) -> list[TextTerm]:
    if isinstance(node, Not):
        return _positive_terms(node.child, not positive)
    if isinstance(node, And | Or):
        return [t for c in node.children for t in _positive_terms(c, positive)]
    return [node] if positive and isinstance(node, TextTerm) else []


def reference_match(query: Query, doc: Document) -> tuple[TermHit, ...] | None:
    """The hits if `query` matches `doc` (as a set, sorted like the index sorts them), else None."""
    title, text = tokenize(doc.title), tokenize(doc.text)
    if not _true(query.root, doc, title, text):
        return None
    hits = set()
    for term in _positive_terms(query.root):
        hits.update(TermHit(term.display, "title", s, e) for s, e in _occurrences(term, title))
        if not term.in_title:
            hits.update(TermHit(term.display, "text", s, e) for s, e in _occurrences(term, text))
    return tuple(sorted(hits, key=lambda h: (h.field != "title", h.start, h.end, h.term)))

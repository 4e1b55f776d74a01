"""Matching articles against every subscription at once.

What matches (the rules users rely on; the query language is described in `bot.core.query`):

- A word matches a whole word of the article after normalisation (`bot.core.text`): case, accents,
  ligatures, apostrophes and elisions do not matter; `OTAN` never matches `botanique`, `Arménie`
  never matches `arméniens` (write `arménie*` for that).
- A phrase matches its words in a row; anything that is not a word between them (punctuation, line
  breaks, an elided article) does not break the row: "Caucase du Sud" matches "Caucase, du Sud".
- A word or phrase without a field matches in the title or the text; `intitle:` only in the title.
  Phrases never span from the title into the text.
- `source:lemonde.fr` matches the article's host and its sub-domains (www.lemonde.fr), on label
  boundaries (not monlemonde.fr); `source:"France 24"` matches the source's name, normalised, with
  or without its spaces (source:france24). `lang:fr` matches the primary subtag of the article's
  language (fr-FR → fr); an article of unknown language matches no `lang:`.
- Each match lists every occurrence of the query's non-excluded words and phrases (term as the user
  wrote it, field, span in the original title or text) so the alert can highlight them and say why
  it fired.

How it stays fast with 100k subscriptions (the reasons behind the structure):

- Subscriptions with the same canonical query share one compiled entry; the fan-out to
  subscription ids happens only after the entry is known to match.
- An article is normalised once per field. Single words are found with one set intersection
  against the vocabulary of all subscriptions; phrases and prefixes with one Aho-Corasick pass
  (pyahocorasick, C) over the article's words joined by single spaces, where every pattern starts
  (and, unless it is a prefix, ends) with a space, so only whole words match.
- Each entry is indexed under a *trigger*: a set of words/phrases one of which must be present for
  the query to be true (its rarest required term, or all the alternatives of an OR). Only entries
  whose trigger fired are evaluated, in conjunctive normal form with C-level set operations; the
  rare query whose CNF would be large is evaluated on its tree.
- Spans are computed only for what matched, by a regular expression built from normalised words
  (never from user input as a pattern: words are escaped and the pattern has no nested repetition).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import product
from urllib.parse import urlsplit

import ahocorasick

from bot.core.query import And, Node, Not, Or, Query, TextTerm
from bot.core.text import NormalizedText, normalize_text, normalize_words

__all__ = ["Document", "TermHit", "Match", "SubscriptionIndex", "match_query"]


@dataclass(frozen=True, slots=True)
class Document:
    title: str
    text: str
    source_name: str = ""
    source_url: str = ""
    lang: str | None = None


@dataclass(frozen=True, slots=True)
class TermHit:
    term: str  # as written in the query: "Azerbaïdjan", "Caucase du Sud", "azerbaïdjan*"
    field: str  # "title" or "text"
    start: int  # span in the original field string
    end: int


@dataclass(frozen=True, slots=True)
class Match:
    subscription_id: int
    hits: tuple[TermHit, ...]


# Words too common to be a good trigger: an entry indexed under "le" would be evaluated for
# almost every French article. Any other term is preferred to these when one is required anyway.
_COMMON_WORDS = frozenset(
    """le la les un une des de du et ou a au aux en dans sur pour par pas plus ne que qui il elle ils
    est sont ce cette ces son sa ses leur leurs se avec mais nous vous on y the of and or to in on for
    is are was be by with as at it this that from an not has have had will""".split()
)
# Beyond this many clauses a query is evaluated on its tree instead of in CNF.
_MAX_CNF_CLAUSES = 64


def _term_cost(term: TextTerm) -> float:
    """A static guess of how often a term occurs: rarer terms make better triggers."""
    cost = min(1000.0 if w in _COMMON_WORDS else max(1.0, 30.0 - 2 * len(w)) for w in term.words)
    if len(term.words) > 1:
        cost /= 2
    if term.prefix:
        cost *= 4
    if term.in_title:
        cost /= 3
    return cost


def _trigger(node: Node) -> tuple[float, frozenset[str]] | None:
    """Atoms one of which is present whenever `node` is true, with their cost; None if none exist."""
    if isinstance(node, TextTerm):
        return _term_cost(node), frozenset((node.atom,))
    if isinstance(node, And):
        options = [t for t in map(_trigger, node.children) if t is not None]
        return min(options, key=lambda t: t[0]) if options else None
    if isinstance(node, Or):
        parts = [_trigger(c) for c in node.children]
        if any(p is None for p in parts):
            return None
        return sum(p[0] for p in parts), frozenset().union(*(p[1] for p in parts))
    return None


_Clause = tuple[frozenset[str], frozenset[str]]  # true if a positive atom is present or a negative one absent


def _cnf(node: Node, negate: bool = False) -> list[_Clause] | None:
    if isinstance(node, Not):
        return _cnf(node.child, not negate)
    if isinstance(node, And | Or):
        conjunction = isinstance(node, And) != negate
        parts = [_cnf(c, negate) for c in node.children]
        if any(p is None for p in parts):
            return None
        if conjunction:
            return [clause for part in parts for clause in part]
        if _product_size(parts) > _MAX_CNF_CLAUSES:
            return None
        return [
            (frozenset().union(*(c[0] for c in combo)), frozenset().union(*(c[1] for c in combo)))
            for combo in product(*parts)
        ]
    atom = frozenset((node.atom,))
    return [(frozenset(), atom)] if negate else [(atom, frozenset())]


def _product_size(parts: list[list[_Clause]]) -> int:
    size = 1
    for part in parts:
        size *= len(part)
    return size


def _evaluate(node: Node, present: set[str]) -> bool:
    if isinstance(node, And):
        return all(_evaluate(c, present) for c in node.children)
    if isinstance(node, Or):
        return any(_evaluate(c, present) for c in node.children)
    if isinstance(node, Not):
        return not _evaluate(node.child, present)
    return node.atom in present


class _Entry:
    """One distinct query, shared by every subscription that typed it."""

    __slots__ = ("query", "subscribers", "trigger", "required", "forbidden", "any_of", "mixed", "tree",
                 "always", "hit_terms", "text_keys")

    def __init__(self, query: Query) -> None:
        self.query = query
        self.subscribers: set[int] = set()
        trigger = _trigger(query.root)
        if trigger is None:  # parse_query refuses these; a hand-built Query could still get here
            raise ValueError(f"query has nothing to trigger on: {query.text}")
        self.trigger = trigger[1]
        atoms = query.atoms()
        self.text_keys = [a.key for a, _ in atoms if isinstance(a, TextTerm)]
        self.hit_terms = tuple(
            dict.fromkeys((a.atom, a.key, a.in_title, a.display) for a, positive in atoms
                          if positive and isinstance(a, TextTerm))
        )
        clauses = _cnf(query.root)
        self.tree: Node | None = None if clauses is not None else query.root
        required, forbidden, any_of, mixed = set(), set(), [], []
        for positive, negative in clauses or ():
            if positive & negative:
                continue  # always true
            if len(positive) == 1 and not negative:
                required |= positive
            elif len(negative) == 1 and not positive:
                forbidden |= negative
            elif not negative:
                any_of.append(positive)
            else:
                mixed.append((positive, negative))
        self.required = frozenset(required)
        self.forbidden = frozenset(forbidden)
        self.any_of = tuple(any_of)
        self.mixed = tuple(mixed)
        # The trigger fired and it is the whole query: no need to evaluate anything.
        self.always = self.tree is None and self.required == self.trigger and not (forbidden or any_of or mixed)

    def accepts(self, present: set[str]) -> bool:
        if self.always:
            return True
        if self.tree is not None:
            return _evaluate(self.tree, present)
        if not self.required <= present or not self.forbidden.isdisjoint(present):
            return False
        for positive in self.any_of:
            if positive.isdisjoint(present):
                return False
        for positive, negative in self.mixed:
            if positive.isdisjoint(present) and negative <= present:
                return False
        return True


def _span_pattern(key: str) -> re.Pattern[str]:
    """A phrase key, to be matched at the start of its first word in `NormalizedText.flat`."""
    prefix = key.endswith("*")
    words = key.rstrip("*").split(" ")
    body = " +".join(map(re.escape, words))
    return re.compile(body + (r"\S*" if prefix else "") + r"(?!\S)")


def _host_of(url: str) -> str:
    if not url:
        return ""
    if "://" not in url:
        url = "//" + url
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return ""
    return host.rstrip(".")


def _document_field_atoms(doc: Document) -> set[str]:
    atoms: set[str] = set()
    if doc.lang:
        atoms.add("lang:" + re.split(r"[-_]", doc.lang.strip(), maxsplit=1)[0].lower())
    host = _host_of(doc.source_url)
    if host:
        labels = host.split(".")
        atoms.update("source:" + ".".join(labels[i:]) for i in range(len(labels)))
    name_words = normalize_words(doc.source_name) if doc.source_name else []
    if name_words:
        atoms.add("source:" + " ".join(name_words))
        atoms.add("source:" + "".join(name_words))
    return atoms


class _ArticleView:
    """One article, normalised once, with the terms of the index it contains."""

    __slots__ = ("title", "text", "title_keys", "text_keys", "present", "_spans")

    def __init__(self, title: NormalizedText, text: NormalizedText) -> None:
        self.title = title
        self.text = text
        self._spans: dict[tuple[str, str], list[tuple[int, int]]] = {}

    def spans(self, field: str, key: str, pattern: re.Pattern[str] | None) -> list[tuple[int, int]]:
        cached = self._spans.get((field, key))
        if cached is None:
            normalized = self.title if field == "title" else self.text
            flat = normalized.flat
            if pattern is None:
                found = _word_spans(flat, key)
            else:
                # Anchored tries at each occurrence of the first word: a pattern starting with a
                # look-behind would defeat the regex engine's literal search.
                first_word = key.split(" ", 1)[0]
                found = [m.span() for start, _ in _word_spans(flat, first_word)
                         if (m := pattern.match(flat, start)) is not None]
            cached = [normalized.original_span(start, end) for start, end in found]
            self._spans[(field, key)] = cached
        return cached


def _word_spans(flat: str, key: str) -> list[tuple[int, int]]:
    """Spans of a one-word key (exact or prefix) in `flat`, with `str.find` (much faster than re)."""
    padded = " " + flat + " "
    prefix = key.endswith("*")
    word = key[:-1] if prefix else key
    needle = " " + word if prefix else " " + word + " "
    spans = []
    i = padded.find(needle)
    while i >= 0:
        end = padded.find(" ", i + 1) - 1 if prefix else i + len(word)  # in `flat` coordinates
        spans.append((i, end))
        i = padded.find(needle, end + 1)
    return spans


class SubscriptionIndex:
    """Every active subscription's query, compiled for matching articles in one pass each."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}  # canonical query text → entry
        self._by_subscription: dict[int, _Entry] = {}
        self._triggers: dict[str, set[_Entry]] = {}  # atom → entries indexed under it
        self._word_refs: dict[str, int] = {}  # single-word keys → number of entries using them
        self._pattern_refs: dict[str, int] = {}  # phrase and prefix keys → number of entries
        self._span_patterns: dict[str, re.Pattern[str]] = {}
        self._automaton: ahocorasick.Automaton | None = None
        self._automaton_stale = False
        self._field_atoms = 0  # entries using source: or lang:

    @classmethod
    def build(cls, items: Iterable[tuple[int, Query]]) -> SubscriptionIndex:
        index = cls()
        for subscription_id, query in items:
            index.add(subscription_id, query)
        return index

    def __len__(self) -> int:
        return len(self._by_subscription)

    def add(self, subscription_id: int, query: Query) -> None:
        """Add a subscription, or replace its query."""
        current = self._by_subscription.get(subscription_id)
        if current is not None:
            if current.query.text == query.text:
                return
            self.remove(subscription_id)
        entry = self._entries.get(query.text)
        if entry is None:
            entry = _Entry(query)
            self._entries[query.text] = entry
            self._register(entry)
        entry.subscribers.add(subscription_id)
        self._by_subscription[subscription_id] = entry

    def remove(self, subscription_id: int) -> None:
        """Forget a subscription; unknown ids are ignored."""
        entry = self._by_subscription.pop(subscription_id, None)
        if entry is None:
            return
        entry.subscribers.discard(subscription_id)
        if not entry.subscribers:
            del self._entries[entry.query.text]
            self._unregister(entry)

    def _register(self, entry: _Entry) -> None:
        for atom in entry.trigger:
            self._triggers.setdefault(atom, set()).add(entry)
        for key in entry.text_keys:
            refs = self._word_refs if _is_single_word(key) else self._pattern_refs
            count = refs.get(key, 0)
            refs[key] = count + 1
            if count == 0 and refs is self._pattern_refs:
                self._automaton_stale = True
        if any(not isinstance(a, TextTerm) for a, _ in entry.query.atoms()):
            self._field_atoms += 1

    def _unregister(self, entry: _Entry) -> None:
        for atom in entry.trigger:
            entries = self._triggers[atom]
            entries.discard(entry)
            if not entries:
                del self._triggers[atom]
        for key in entry.text_keys:
            refs = self._word_refs if _is_single_word(key) else self._pattern_refs
            refs[key] -= 1
            if refs[key] == 0:
                del refs[key]
                self._span_patterns.pop(key, None)
                if refs is self._pattern_refs:
                    self._automaton_stale = True
        if any(not isinstance(a, TextTerm) for a, _ in entry.query.atoms()):
            self._field_atoms -= 1

    def _current_automaton(self) -> ahocorasick.Automaton | None:
        if self._automaton_stale:
            self._automaton_stale = False
            self._automaton = None
            if self._pattern_refs:
                automaton = ahocorasick.Automaton()
                for key in self._pattern_refs:
                    automaton.add_word(_ac_pattern(key), key)
                automaton.make_automaton()
                self._automaton = automaton
        return self._automaton

    def _keys_in(self, normalized: NormalizedText, automaton: ahocorasick.Automaton | None) -> set[str]:
        words = normalized.words
        keys = self._word_refs.keys() & set(words)
        if automaton is not None and words:
            keys.update(key for _, key in automaton.iter(" " + " ".join(words) + " "))
        return keys

    def _view(self, doc: Document) -> _ArticleView:
        automaton = self._current_automaton()
        view = _ArticleView(normalize_text(doc.title), normalize_text(doc.text))
        view.title_keys = self._keys_in(view.title, automaton)
        view.text_keys = self._keys_in(view.text, automaton)
        present = view.title_keys | view.text_keys
        present.update(["title:" + key for key in view.title_keys])
        if self._field_atoms:
            present |= _document_field_atoms(doc)
        view.present = present
        return view

    def _matching_entries(self, view: _ArticleView) -> list[_Entry]:
        candidates: set[_Entry] = set()
        triggers = self._triggers
        for atom in triggers.keys() & view.present:
            candidates |= triggers[atom]
        present = view.present
        return [entry for entry in candidates if entry.accepts(present)]

    def _hits(self, entry: _Entry, view: _ArticleView) -> tuple[TermHit, ...]:
        hits: list[TermHit] = []
        present = view.present
        for atom, key, in_title, display in entry.hit_terms:
            if atom not in present:
                continue
            pattern = None
            if " " in key:  # phrases need a pattern: any run of spaces may separate their words
                pattern = self._span_patterns.get(key)
                if pattern is None:
                    pattern = self._span_patterns[key] = _span_pattern(key)
            if key in view.title_keys:
                hits.extend(TermHit(display, "title", s, e) for s, e in view.spans("title", key, pattern))
            if not in_title and key in view.text_keys:
                hits.extend(TermHit(display, "text", s, e) for s, e in view.spans("text", key, pattern))
        # The same occurrence can come from two terms (OTAN and intitle:OTAN): list it once.
        return tuple(sorted(dict.fromkeys(hits), key=_hit_order))

    def match(self, doc: Document) -> list[Match]:
        """Every subscription whose query matches `doc`, sorted by subscription id, with its hits."""
        view = self._view(doc)
        matches = []
        for entry in self._matching_entries(view):
            hits = self._hits(entry, view)
            matches.extend(Match(sid, hits) for sid in entry.subscribers)
        matches.sort(key=_subscription_id)
        return matches

    def match_ids(self, doc: Document) -> list[int]:
        """The ids of `match(doc)`, sorted, without computing hits (for fan-out only)."""
        ids: list[int] = []
        for entry in self._matching_entries(self._view(doc)):
            ids.extend(entry.subscribers)
        ids.sort()
        return ids

    def memory_hint(self) -> dict[str, int]:
        """Sizes for the benchmark: entries, vocabulary, automaton bytes."""
        automaton = self._current_automaton()
        return {
            "subscriptions": len(self._by_subscription),
            "distinct_queries": len(self._entries),
            "words": len(self._word_refs),
            "patterns": len(self._pattern_refs),
            "automaton_bytes": automaton.get_stats()["total_size"] if automaton is not None else 0,
        }


def _hit_order(hit: TermHit) -> tuple[bool, int, int, str]:
    return hit.field != "title", hit.start, hit.end, hit.term


def _subscription_id(match: Match) -> int:
    return match.subscription_id


def _is_single_word(key: str) -> bool:
    return " " not in key and not key.endswith("*")


def _ac_pattern(key: str) -> str:
    """Spaces on both sides make the pattern match whole words only; a prefix leaves the end open."""
    return " " + key[:-1] if key.endswith("*") else " " + key + " "


def match_query(query: Query, doc: Document) -> Match | None:
    """Match one query (for /preview): same rules as the index; the Match has subscription_id 0."""
    matches = SubscriptionIndex.build([(0, query)]).match(doc)
    return matches[0] if matches else None


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

How it stays fast with 100k subscriptions (the reasons behind the structure, issue #4):

- Subscriptions with the same canonical query share one compiled entry (many people follow
  "OTAN"); the fan-out to subscription ids happens only after the entry is known to match.
- Every atom some entry uses (a word, phrase or prefix key; its `title:` form; a `source:` or
  `lang:` atom) has one slot holding all the index knows about it: the subscription ids whose
  whole query is that atom, the other entries it triggers, its refcount. At 100k subscriptions
  matching waits on memory rather than on instructions, so an article costs one dictionary lookup
  per word (in C, `map(dict.get, words)`), one Aho-Corasick pass (pyahocorasick, C) for phrases and
  prefixes over the article's words joined by single spaces (every pattern starts, and unless it is
  a prefix ends, with a space, so only whole words match), and then only reads of the slots found.
- Each entry is indexed under a *trigger*: words/phrases one of which must be present for the
  query to be true (its rarest required term, or all the alternatives of an OR). Only entries whose
  trigger fired are looked at. An entry whose trigger is its whole query (one word, one phrase)
  needs no evaluation: its subscription ids sit in its slot. Other entries are evaluated in
  conjunctive normal form with C-level set methods on tuples of slots (hashed by identity, so a
  test never reads an atom's string); the rare query whose CNF would be large is evaluated on its
  tree.
- Compiled entries hold strings, tuples and slots (atoms interned, shared by every entry), not the
  Query objects nor per-entry sets, which keeps 100k subscriptions in tens of megabytes.
- `add` and `remove` are incremental; only a change in the set of phrases and prefixes marks the
  automaton stale, and it is rebuilt once, at the next match. `bot.services.matcher.Matcher.load`
  uses them to apply a reload from the database as a difference.
- A Match computes its hits on first use, once per term and article (spans found with `str.find`
  and an anchored regular expression built from normalised words, never from user input as a
  pattern), and the same TermHit objects are shared by every Match that reports them; `terms`, all
  that the poller stores, needs no span.
"""

from __future__ import annotations

import gc
import re
import sys
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain, product
from operator import attrgetter
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


# A compiled test, true when the query holds given the atoms present in an article (the trigger
# having fired): None (nothing more to check), a Node (evaluated on the tree), or the CNF as
# (required atoms, forbidden atoms, clauses "one of these", clauses "one of these or not all of those"),
# shortened to (required atoms, forbidden atoms) when there are no such clauses (most queries).
_Test = (
    tuple[tuple[str, ...], tuple[str, ...], tuple[tuple[str, ...], ...], tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]]
    | tuple[tuple[str, ...], tuple[str, ...]]
    | Node
    | None
)
_HitTerm = tuple[str, bool, str]  # (key, title only, display): one word or phrase to report
# Hit terms of an entry, flattened to save memory: key, title only, display, key, title only, ...
_HitTerms = tuple[str | bool, ...]


def _passes(test: _Test, present: set[str]) -> bool:
    if test is None:
        return True
    if not isinstance(test, tuple):
        return _evaluate(test, present)
    if len(test) == 2:
        return present.issuperset(test[0]) and present.isdisjoint(test[1])
    required, forbidden, any_of, mixed = test
    if not present.issuperset(required) or not present.isdisjoint(forbidden):
        return False
    for positive in any_of:
        if present.isdisjoint(positive):
            return False
    for positive, negative in mixed:
        if present.isdisjoint(positive) and present.issuperset(negative):
            return False
    return True


_intern = sys.intern


class _Entry:
    """One distinct query, compiled, shared by every subscription that typed it."""

    __slots__ = ("text", "subscribers", "trigger", "test", "hit_terms")

    def __init__(self, text: str, trigger: tuple[str, ...], test: _Test, hit_terms: _HitTerms | None) -> None:
        self.text = text
        # Most queries have one subscriber: an int until a second one comes (a list costs 90 bytes).
        self.subscribers: int | list[int] = []
        self.trigger = trigger
        self.test = test
        # None for a query that is one plain word or phrase as typed: (key, False, text).
        self.hit_terms = hit_terms

    def add_subscriber(self, subscription_id: int) -> None:
        subscribers = self.subscribers
        if isinstance(subscribers, int):
            self.subscribers = [subscribers, subscription_id]
        elif subscribers:
            subscribers.append(subscription_id)
        else:
            self.subscribers = subscription_id

    def remove_subscriber(self, subscription_id: int) -> bool:
        """Forget one subscriber; true if none is left."""
        subscribers = self.subscribers
        if isinstance(subscribers, int):
            self.subscribers = []
            return True
        subscribers.remove(subscription_id)
        if len(subscribers) == 1:
            self.subscribers = subscribers[0]
        return False

    def subscriber_ids(self) -> list[int]:
        subscribers = self.subscribers
        return [subscribers] if isinstance(subscribers, int) else subscribers

    @property
    def direct(self) -> bool:
        """Its one trigger atom being present is the whole query."""
        return self.test is None and len(self.trigger) == 1

    def terms(self) -> _HitTerms:
        return self.hit_terms or (self.trigger[0], False, self.text)

    def atoms(self) -> set[str]:
        """Every atom its matching looks at (recomputed when needed rather than kept: memory)."""
        atoms = set(self.trigger)
        terms = self.terms()
        atoms.update(terms[::3])
        # A title-only term is reported by its title: atom, even when the query's test no longer
        # needs it ("-(-intitle:A intitle:A) …" simplifies away): its slot must exist to be found.
        atoms.update("title:" + key for key, in_title in zip(terms[::3], terms[1::3], strict=True) if in_title)
        test = self.test
        if isinstance(test, tuple):
            required, forbidden, any_of, mixed = test if len(test) == 4 else (*test, (), ())
            groups = [required, forbidden, *any_of, *(p for p, _ in mixed), *(n for _, n in mixed)]
            atoms.update(_atom_name(atom) for group in groups for atom in group)
        elif test is not None:
            atoms.update(_tree_atoms(test))
        return atoms


def _atom_name(atom: str | _Slot) -> str:
    """Registered entries test slots; compiled ones, atoms."""
    return atom if isinstance(atom, str) else atom.atom


def _tree_atoms(node: Node) -> Iterable[str]:
    if isinstance(node, Not):
        yield from _tree_atoms(node.child)
    elif isinstance(node, And | Or):
        for child in node.children:
            yield from _tree_atoms(child)
    else:
        yield node.atom


_FIELD_PREFIXES = ("source:", "lang:")


def _compile(query: Query) -> _Entry:
    root = query.root
    if isinstance(root, TextTerm):  # the most common alert by far: one word or one phrase
        key = _intern(root.key)
        if not root.in_title and query.text == root.display:
            return _Entry(query.text, (key,), None, None)
        trigger = (_intern("title:" + key),) if root.in_title else (key,)
        return _Entry(query.text, trigger, None, (key, root.in_title, root.display))
    atoms = query.atoms()
    hit_terms = tuple(field for term in dict.fromkeys((_intern(a.key), a.in_title, _intern(a.display))
                                                      for a, positive in atoms if positive and isinstance(a, TextTerm))
                      for field in term)
    if isinstance(root, Or) and all(isinstance(c, TextTerm) for c in root.children):
        # Alternatives only ("Kaboul OR Kabul"): any of them present is the whole query.
        trigger = tuple(sorted({_intern(c.atom) for c in root.children}))
        return _Entry(query.text, trigger, None, hit_terms)
    if isinstance(root, And) and all(_is_literal(c) or _is_alternatives(c) for c in root.children):
        # Terms, excluded terms and groups of alternatives ("A B", "A -B", "(A OR B) C", "A source:x"):
        # the CNF is the query itself.
        children = root.children
        positive = [_intern(c.atom) for c in children if not isinstance(c, Not | Or)]
        forbidden = tuple(dict.fromkeys(_intern(c.child.atom) for c in children if isinstance(c, Not)))
        groups = [tuple(sorted({_intern(a.atom) for a in c.children})) for c in children if isinstance(c, Or)]
        options = [(_term_cost(c), (_intern(c.atom),)) for c in children if isinstance(c, TextTerm)]
        options += [(sum(map(_term_cost, c.children)), group)
                    for c, group in zip((c for c in children if isinstance(c, Or)), groups, strict=True)]
        if not options:  # parse_query refuses these; a hand-built Query could still get here
            raise ValueError(f"query has nothing to trigger on: {query.text}")
        trigger = min(options, key=_first)[1]
        required = tuple(a for a in dict.fromkeys(positive) if (a,) != trigger)
        any_of = tuple(group for group in dict.fromkeys(groups) if group != trigger)
        test = (required, forbidden, any_of, ()) if any_of else (required, forbidden) if required or forbidden else None
        return _Entry(query.text, trigger, test, hit_terms)
    found = _trigger(root)
    if found is None:  # parse_query refuses these; a hand-built Query could still get here
        raise ValueError(f"query has nothing to trigger on: {query.text}")
    trigger = tuple(sorted(map(_intern, found[1])))
    clauses = _cnf(root)
    if clauses is None:
        return _Entry(query.text, trigger, root, hit_terms)
    fired = frozenset(trigger)
    required, forbidden, any_of, mixed = set(), set(), [], []
    for positive, negative in clauses:
        if positive & negative or positive >= fired:
            continue  # always true, or true whenever the entry is looked at (its trigger fired)
        if len(positive) == 1 and not negative:
            required |= positive
        elif len(negative) == 1 and not positive:
            forbidden |= negative
        elif not negative:
            any_of.append(positive)
        else:
            mixed.append((positive, negative))
    test: _Test = None
    if any_of or mixed:
        test = (_atoms_tuple(required), _atoms_tuple(forbidden), tuple(map(_atoms_tuple, any_of)),
                tuple((_atoms_tuple(p), _atoms_tuple(n)) for p, n in mixed))
    elif required or forbidden:
        test = (_atoms_tuple(required), _atoms_tuple(forbidden))
    return _Entry(query.text, trigger, test, hit_terms)


def _atoms_tuple(atoms: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(map(_intern, atoms)))


def _is_alternatives(node: Node) -> bool:
    return isinstance(node, Or) and all(isinstance(c, TextTerm) for c in node.children)


def _is_literal(node: Node) -> bool:
    return not isinstance(node, And | Or) and not (isinstance(node, Not) and isinstance(node.child, And | Or | Not))


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


def _document_field_atoms(doc: Document) -> frozenset[str]:
    return _field_atoms(doc.lang, doc.source_url, doc.source_name)


@lru_cache(maxsize=4096)  # a few hundred sources, a few languages: computed once per source
def _field_atoms(lang: str | None, source_url: str, source_name: str) -> frozenset[str]:
    atoms: set[str] = set()
    if lang:
        atoms.add("lang:" + re.split(r"[-_]", lang.strip(), maxsplit=1)[0].lower())
    host = _host_of(source_url)
    if host:
        labels = host.split(".")
        atoms.update("source:" + ".".join(labels[i:]) for i in range(len(labels)))
    name_words = normalize_words(source_name) if source_name else []
    if name_words:
        atoms.add("source:" + " ".join(name_words))
        atoms.add("source:" + "".join(name_words))
    return frozenset(atoms)


class _Slot:
    """Everything the index knows about one atom, found with one dictionary lookup per article word.

    Plain keys (words, phrases, prefixes) are looked up in the article; `title` links a key to the
    slot of its `title:` atom, if some query uses it; `refs` counts the entries that need the atom
    looked up, `direct` holds the subscription ids whose whole query is this atom, `entries` the
    other entries it triggers. Tuples, not lists: their items sit in the object itself, one memory
    access fewer per atom and article (at 100k subscriptions matching waits on memory, not on
    instructions). Registered entries test slots rather than atom strings for the same reason: a
    slot hashes by identity, without reading the object.
    """

    __slots__ = ("atom", "refs", "direct", "entries", "title")

    def __init__(self, atom: str) -> None:
        self.atom = atom
        self.refs = 0
        self.direct: tuple[int, ...] | None = None
        self.entries: tuple[_Entry, ...] | None = None
        self.title: _Slot | None = None


_slot_atom = attrgetter("atom")
_slot_direct = attrgetter("direct")
_slot_entries = attrgetter("entries")


class _ArticleView:
    """One article, normalised once, with the index's slots it contains and its hits so far."""

    __slots__ = ("title", "text", "title_slots", "text_slots", "found", "_present", "_patterns", "_hits", "_words",
                 "_entry_hits", "_title_keys", "_text_keys")

    def __init__(self, title: NormalizedText, text: NormalizedText, title_slots: set[_Slot],
                 text_slots: set[_Slot], found: set[_Slot], patterns: dict[str, re.Pattern[str]]) -> None:
        self.title = title
        self.text = text
        self.title_slots = title_slots
        self.text_slots = text_slots
        self.found = found  # the slot of every atom present: keys, title: atoms, source: and lang: atoms
        self._present: set[str] | None = None
        self._patterns = patterns
        self._hits: dict[_HitTerm, tuple[TermHit, ...]] = {}
        self._words: dict[str, _FieldWords] = {}
        self._entry_hits: dict[_Entry, tuple[TermHit, ...]] = {}
        self._title_keys: set[str] | None = None
        self._text_keys: set[str] | None = None

    def _field(self, field: str) -> _FieldWords:
        words = self._words.get(field)
        if words is None:
            words = self._words[field] = _FieldWords(self.title if field == "title" else self.text)
        return words

    @property
    def present(self) -> set[str]:
        """The atoms present, by name (for hits and the rare query evaluated on its tree)."""
        if self._present is None:
            self._present = set(map(_slot_atom, self.found))
        return self._present

    def _keys(self, field: str) -> set[str]:
        if field == "title":
            if self._title_keys is None:
                self._title_keys = set(map(_slot_atom, self.title_slots))
            return self._title_keys
        if self._text_keys is None:
            self._text_keys = set(map(_slot_atom, self.text_slots))
        return self._text_keys

    def hits(self, hit_term: _HitTerm) -> tuple[TermHit, ...]:
        """Every occurrence of one word or phrase, in the title then the text; computed once per article."""
        cached = self._hits.get(hit_term)
        if cached is None:
            key, in_title, display = hit_term
            pattern = None
            if " " in key:  # phrases need a pattern: any run of spaces may separate their words
                patterns = self._patterns
                pattern = patterns.get(key)
                if pattern is None:
                    pattern = patterns[key] = _span_pattern(key)
            found: list[TermHit] = []
            if key in self._keys("title"):
                found.extend(TermHit(display, "title", s, e) for s, e in self._field("title").spans(key, pattern))
            if not in_title and key in self._keys("text"):
                found.extend(TermHit(display, "text", s, e) for s, e in self._field("text").spans(key, pattern))
            cached = self._hits[hit_term] = tuple(found)
        return cached

    def present_terms(self, entry: _Entry) -> list[_HitTerm]:
        """The entry's words and phrases that this article contains (in its field), in query order."""
        present = self.present
        terms = entry.terms()
        return [term for term in zip(terms[::3], terms[1::3], terms[2::3], strict=True)
                if (term[0] if not term[1] else "title:" + term[0]) in present]

    def entry_hits(self, entry: _Entry) -> tuple[TermHit, ...]:
        cached = self._entry_hits.get(entry)
        if cached is None:
            found = [self.hits(term) for term in self.present_terms(entry)]
            if len(found) == 1:
                cached = found[0]  # one term's hits are already in order
            else:
                # The same occurrence can come from two terms (OTAN and intitle:OTAN): list it once.
                cached = tuple(sorted(dict.fromkeys(hit for hits in found for hit in hits), key=_hit_order))
            self._entry_hits[entry] = cached
        return cached


class Match:
    """A subscription that an article fires, with what fired it.

    `terms` (the query's words and phrases found, as the user wrote them, in query order) is cheap;
    `hits` (every occurrence with its field and span in the original text, for highlighting) is
    computed on first use, once per term and article, and shared by every Match that reports it.
    """

    __slots__ = ("subscription_id", "_hits", "_entry", "_view")

    def __init__(self, subscription_id: int, hits: tuple[TermHit, ...] | None = None,
                 _entry: _Entry | None = None, _view: _ArticleView | None = None) -> None:
        self.subscription_id = subscription_id
        self._hits = hits if hits is not None or _view is not None else ()
        self._entry = _entry
        self._view = _view

    @property
    def hits(self) -> tuple[TermHit, ...]:
        hits = self._hits
        if hits is None:
            hits = self._hits = self._view.entry_hits(self._entry)  # type: ignore[union-attr,arg-type]
        return hits

    @property
    def terms(self) -> tuple[str, ...]:
        entry = self._entry
        if self._view is None or entry is None:
            return tuple(dict.fromkeys(hit.term for hit in self.hits))
        if entry.direct:  # one word or phrase: it fired, it is there
            return (entry.text if entry.hit_terms is None else entry.hit_terms[2],)  # type: ignore[return-value]
        return tuple(dict.fromkeys(display for _, _, display in self._view.present_terms(entry)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Match):
            return NotImplemented
        return self.subscription_id == other.subscription_id and self.hits == other.hits

    def __hash__(self) -> int:
        return hash((self.subscription_id, self.hits))

    def __repr__(self) -> str:
        return f"Match(subscription_id={self.subscription_id!r}, hits={self.hits!r})"


class _FieldWords:
    """Where each word of a field starts in its `flat` text, built at the first hit asked for."""

    __slots__ = ("normalized", "starts", "ordered")

    def __init__(self, normalized: NormalizedText) -> None:
        self.normalized = normalized
        self.ordered: list[str] | None = None  # the distinct words, sorted, for prefixes
        starts: dict[str, list[int]] = {}
        for m in _WORD.finditer(normalized.flat):
            found = starts.get(m.group())
            if found is None:
                starts[m.group()] = [m.start()]
            else:
                found.append(m.start())
        self.starts = starts

    def spans(self, key: str, pattern: re.Pattern[str] | None) -> list[tuple[int, int]]:
        """Spans in the original text of a word, prefix or phrase key present in this field."""
        starts = self.starts
        if pattern is None and not key.endswith("*"):
            found = [(start, start + len(key)) for start in starts.get(key, ())]
        elif pattern is None:  # a prefix: the words it begins are a range of the sorted words
            ordered = self.ordered
            if ordered is None:
                ordered = self.ordered = sorted(starts)
            stem = key[:-1]
            found = []
            for i in range(bisect_left(ordered, stem), len(ordered)):
                word = ordered[i]
                if not word.startswith(stem):
                    break
                found.extend((start, start + len(word)) for start in starts[word])
            found.sort()
        else:
            # Anchored tries at each occurrence of the first word: a pattern starting with a
            # look-behind would defeat the regex engine's literal search.
            flat = self.normalized.flat
            found = [m.span() for start in starts.get(key.split(" ", 1)[0], ())
                     if (m := pattern.match(flat, start)) is not None]
        original_span = self.normalized.original_span
        return [original_span(start, end) for start, end in found]


_WORD = re.compile(r"[^ ]+")


class SubscriptionIndex:
    """Every active subscription's query, compiled for matching articles in one pass each."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}  # canonical query text → entry
        self._by_subscription: dict[int, _Entry] = {}
        self._slots: dict[str, _Slot] = {}  # atom → slot, for every atom some entry uses
        self._span_patterns: dict[str, re.Pattern[str]] = {}
        self._patterns: dict[str, _Slot] = {}  # phrase and prefix slots: the automaton looks for them
        self._automaton: ahocorasick.Automaton | None = None
        self._automaton_stale = False
        self._field_entries = 0  # entries using source: or lang:

    @classmethod
    def build(cls, items: Iterable[tuple[int, Query]]) -> SubscriptionIndex:
        index = cls()
        # Hundreds of thousands of small objects, all kept: the cyclic garbage collector would
        # walk them again and again while they are created (a third of the build time) to find nothing.
        collecting = gc.isenabled()
        gc.disable()
        try:
            for subscription_id, query in items:
                index.add(subscription_id, query)
        finally:
            if collecting:
                gc.enable()
        return index

    def __len__(self) -> int:
        return len(self._by_subscription)

    def query_text(self, subscription_id: int) -> str | None:
        """The canonical text of a subscription's indexed query, None if it is not indexed."""
        entry = self._by_subscription.get(subscription_id)
        return None if entry is None else entry.text

    def subscription_ids(self) -> set[int]:
        return set(self._by_subscription)

    def add(self, subscription_id: int, query: Query) -> None:
        """Add a subscription, or replace its query."""
        current = self._by_subscription.get(subscription_id)
        if current is not None:
            if current.text == query.text:
                return
            self.remove(subscription_id)
        entry = self._entries.get(query.text)
        if entry is None:
            entry = _compile(query)
            self._entries[entry.text] = entry
            self._register(entry)
        entry.add_subscriber(subscription_id)
        if entry.direct:
            slot = self._slots[entry.trigger[0]]
            slot.direct = (*slot.direct, subscription_id)  # type: ignore[misc]
        self._by_subscription[subscription_id] = entry

    def remove(self, subscription_id: int) -> None:
        """Forget a subscription; unknown ids are ignored."""
        entry = self._by_subscription.pop(subscription_id, None)
        if entry is None:
            return
        if entry.direct:
            slot = self._slots[entry.trigger[0]]
            slot.direct = tuple(sid for sid in slot.direct if sid != subscription_id)  # type: ignore[union-attr]
        if entry.remove_subscriber(subscription_id):
            del self._entries[entry.text]
            self._unregister(entry)

    def _slot(self, atom: str) -> _Slot:
        slot = self._slots.get(atom)
        if slot is None:
            slot = self._slots[atom] = _Slot(atom)
            if atom.startswith("title:"):
                self._slot(atom[6:]).title = slot
            elif not _is_single_word(atom) and not atom.startswith(_FIELD_PREFIXES):
                self._patterns[atom] = slot
                self._automaton_stale = True
        return slot

    def _release(self, atom: str) -> None:
        slot = self._slots[atom]
        slot.refs -= 1
        if slot.refs:
            return
        del self._slots[atom]
        if atom.startswith("title:"):
            self._slots[atom[6:]].title = None
        elif not _is_single_word(atom) and not atom.startswith(_FIELD_PREFIXES):
            del self._patterns[atom]
            self._automaton_stale = True
        self._span_patterns.pop(atom, None)

    def _register(self, entry: _Entry) -> None:
        if entry.direct and entry.hit_terms is None:  # half of all queries: one word or phrase, typed plainly
            slot = self._slot(entry.trigger[0])
            slot.refs += 1
            if slot.direct is None:
                slot.direct = ()
            return
        # Plain keys first: a title: slot links to the slot of its key, which must exist.
        atoms = sorted(_looked_up(entry.atoms()), key=_title_last)
        for atom in atoms:
            self._slot(atom).refs += 1
        if entry.direct:
            slot = self._slots[entry.trigger[0]]
            if slot.direct is None:
                slot.direct = ()
            return
        for atom in entry.trigger:
            slot = self._slots[atom]
            slot.entries = (entry,) if slot.entries is None else (*slot.entries, entry)
        entry.test = self._slot_test(entry.test)
        self._field_entries += any(atom.startswith(_FIELD_PREFIXES) for atom in atoms)

    def _slot_test(self, test: _Test) -> _Test:
        """The same test on the slots of its atoms (see `_Slot`); a tree is evaluated on atom names."""
        if not isinstance(test, tuple):
            return test
        slots = self._slots

        def on_slots(atoms: tuple) -> tuple:
            return tuple(slots[atom] for atom in atoms)

        if len(test) == 2:
            return on_slots(test[0]), on_slots(test[1])
        required, forbidden, any_of, mixed = test  # type: ignore[misc]
        return (on_slots(required), on_slots(forbidden), tuple(map(on_slots, any_of)),
                tuple((on_slots(p), on_slots(n)) for p, n in mixed))

    def _unregister(self, entry: _Entry) -> None:
        slots = self._slots
        if entry.direct:
            slot = slots[entry.trigger[0]]
            if not slot.direct:
                slot.direct = None
        else:
            for atom in entry.trigger:
                slot = slots[atom]
                slot.entries = tuple(e for e in slot.entries if e is not entry) or None  # type: ignore[union-attr]
        atoms = sorted(_looked_up(entry.atoms()), key=_title_last, reverse=True)
        self._field_entries -= any(atom.startswith(_FIELD_PREFIXES) for atom in atoms)
        for atom in atoms:
            self._release(atom)

    def _current_automaton(self) -> ahocorasick.Automaton | None:
        if self._automaton_stale:
            self._automaton_stale = False
            self._automaton = None
            if self._patterns:
                automaton = ahocorasick.Automaton()
                for atom, slot in self._patterns.items():
                    automaton.add_word(_ac_pattern(atom), slot)
                automaton.make_automaton()
                self._automaton = automaton
        return self._automaton

    def _slots_in(self, normalized: NormalizedText, automaton: ahocorasick.Automaton | None) -> set[_Slot]:
        """The slots of the plain keys (words, phrases, prefixes) the text contains."""
        words = normalized.words
        # One lookup per distinct word, in C: the dictionary is large and each lookup waits on memory,
        # so the few microseconds spent removing repeated words pay for themselves.
        found = set(filter(None, map(self._slots.get, set(words))))
        if automaton is not None and words:
            found.update([slot for _, slot in automaton.iter(" " + " ".join(words) + " ")])
        return found

    def _view(self, doc: Document) -> tuple[_ArticleView, set[_Slot]]:
        automaton = self._current_automaton()
        title, text = normalize_text(doc.title), normalize_text(doc.text)
        title_slots = self._slots_in(title, automaton)
        text_slots = self._slots_in(text, automaton)
        found = title_slots | text_slots
        for slot in title_slots:
            if slot.title is not None:
                found.add(slot.title)
        if self._field_entries:
            found.update(filter(None, map(self._slots.get, _document_field_atoms(doc))))
        return _ArticleView(title, text, title_slots, text_slots, found, self._span_patterns), found

    @staticmethod
    def _fired(found: set[_Slot], view: _ArticleView) -> tuple[list[int], list[_Entry]]:
        """Subscription ids whose query is one present atom, and the other entries whose query holds."""
        direct = list(chain.from_iterable(filter(None, map(_slot_direct, found))))
        candidates = set(chain.from_iterable(filter(None, map(_slot_entries, found))))
        passed = []
        issuperset, isdisjoint = found.issuperset, found.isdisjoint
        for entry in candidates:
            test = entry.test
            # The two commonest tests inline (nothing more to check; required and forbidden atoms).
            if test is None or (
                test.__class__ is tuple and len(test) == 2 and issuperset(test[0]) and isdisjoint(test[1])
            ):
                passed.append(entry)
            elif test.__class__ is tuple:
                if len(test) != 2 and _passes(test, found):
                    passed.append(entry)
            elif _evaluate(test, view.present):  # type: ignore[arg-type]
                passed.append(entry)
        return direct, passed

    def match(self, doc: Document) -> list[Match]:
        """Every subscription whose query matches `doc`, sorted by subscription id, with its hits."""
        view, found = self._view(doc)
        direct, passed = self._fired(found, view)
        by_subscription = self._by_subscription
        matches = [Match(sid, None, by_subscription[sid], view) for sid in direct]
        for entry in passed:
            matches.extend([Match(sid, None, entry, view) for sid in entry.subscriber_ids()])
        matches.sort(key=_subscription_id)
        return matches

    def match_ids(self, doc: Document) -> list[int]:
        """The ids of `match(doc)`, sorted, without computing hits (for fan-out only)."""
        view, found = self._view(doc)
        ids, passed = self._fired(found, view)
        for entry in passed:
            ids.extend(entry.subscriber_ids())
        ids.sort()
        return ids

    def memory_hint(self) -> dict[str, int]:
        """Sizes for the benchmark: entries, vocabulary, automaton bytes."""
        automaton = self._current_automaton()
        return {
            "subscriptions": len(self._by_subscription),
            "distinct_queries": len(self._entries),
            "direct_queries": sum(entry.direct for entry in self._entries.values()),
            "atoms": len(self._slots),
            "patterns": len(self._patterns),
            "automaton_bytes": automaton.get_stats()["total_size"] if automaton is not None else 0,
        }


_subscription_id = attrgetter("subscription_id")


def _title_last(atom: str) -> bool:
    return atom.startswith("title:")


def _looked_up(atoms: set[str]) -> set[str]:
    """An entry's atoms and the plain keys behind its title: atoms (found in the title's words)."""
    return atoms | {atom[6:] for atom in atoms if atom.startswith("title:")}


def _first(pair: tuple) -> object:
    return pair[0]


def _hit_order(hit: TermHit) -> tuple[bool, int, int, str]:
    return hit.field != "title", hit.start, hit.end, hit.term


def _is_single_word(key: str) -> bool:
    return " " not in key and not key.endswith("*")


def _ac_pattern(key: str) -> str:
    """Spaces on both sides make the pattern match whole words only; a prefix leaves the end open."""
    return " " + key[:-1] if key.endswith("*") else " " + key + " "


def match_query(query: Query, doc: Document) -> Match | None:
    """Match one query (for /preview): same rules as the index; the Match has subscription_id 0."""
    matches = SubscriptionIndex.build([(0, query)]).match(doc)
    return matches[0] if matches else None


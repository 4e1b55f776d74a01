"""The alert query language: parsing, validation, canonical form.

Grammar (OR binds tighter than the implicit AND, as in web search engines):

    query    := all EOF
    all      := any+                      implicit AND; `AND` / `ET` may be written, they change nothing
    any      := unary (OR unary)*         `OR`, `OU` or `|` (upper-case words only)
    unary    := ("-" | "NOT ") unary | primary
    primary  := "(" all ")" | field? term
    field    := intitle: | source: | lang:   (aliases titre:, site:, langue:; case-insensitive)
    term     := word | word* | "phrase" | « phrase » | “phrase” | "phrase*"

Terms are normalised by `bot.core.text` (case, accents, ligatures, apostrophes, elisions), so a
bare word that normalises to several words (Haut-Karabakh, aujourd'hui) is a phrase. A trailing
`*` makes the last word a prefix (min. 3 letters). Words with no letters or digits (`&`, `—`) are
ignored. `source:` takes a domain (lemonde.fr, which also matches www.lemonde.fr) or a source name
(source:"France 24"); `lang:` a language code (fr, en). Every query needs at least one word or
phrase that is not excluded, in every OR alternative, so that no query matches "everything but".

Errors are `QueryError`s with a stable `code`, `params` for translation, and a 1-based
character `position` where it helps.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bot.core.text import normalize_words
from bot.errors import VeilleError

__all__ = [
    "QueryError", "QueryLimits", "Query", "parse_query",
    "TextTerm", "SourceTerm", "LangTerm", "Not", "And", "Or", "Node", "MIN_PREFIX_LENGTH",
]

MIN_PREFIX_LENGTH = 3

_MESSAGES = {
    "empty": "The query is empty: type the words to look for",
    "too_long": "The query is too long: {length} characters, the limit is {limit}",
    "too_many_terms": "The query has too many terms: {count}, the limit is {limit}",
    "too_deep": "Too many nested parentheses at position {position} (at most {limit} levels)",
    "unclosed_quote": "Unclosed quote at position {position}",
    "empty_phrase": "Empty quotes at position {position}",
    "unbalanced_parenthesis": "Unbalanced parenthesis at position {position}",
    "empty_group": "Empty parentheses at position {position}",
    "dangling_operator": "{operator} at position {position} needs a term on both sides",
    "dangling_exclusion": "Nothing to exclude after the minus sign at position {position}",
    "empty_field": "{field}: at position {position} needs a value, e.g. {field}:OTAN",
    "bad_language": "Unknown language code “{value}” at position {position}: use a code such as fr or en",
    "bad_source": "“{value}” at position {position} is not a site or source name",
    "prefix_too_short": "The prefix “{value}” at position {position} is too short: "
    "give at least {limit} letters before the *",
    "only_exclusions": "Nothing to match: the query only excludes",
    "no_keyword": "Nothing to search for: add a word or phrase; source: and lang: only narrow a search",
    "or_without_keyword": "Each OR alternative needs a word or phrase to look for, and “{alternative}” has none",
}


class QueryError(VeilleError):
    """A query the user typed cannot be used; `str(error)` explains why in English."""

    def __init__(self, code: str, position: int | None = None, **params: object) -> None:
        self.code = code
        self.position = position  # 1-based character number, as people count
        self.params: dict[str, object] = dict(params)
        if position is not None:
            self.params["position"] = position
        self.message = _MESSAGES[code].format(**self.params)
        super().__init__(self.message)


@dataclass(frozen=True)
class QueryLimits:
    max_length: int = 500
    max_terms: int = 30
    max_depth: int = 8


# --- the syntax tree -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TextTerm:
    """Words that must appear in a row (one word for a plain keyword), in the title or anywhere."""

    words: tuple[str, ...]  # normalised
    prefix: bool  # the last word is a prefix
    in_title: bool
    display: str  # as the user wrote it, without quotes or field, e.g. "Caucase du Sud", "azerbaïdjan*"
    quoted: bool

    @property
    def key(self) -> str:
        """The field-less identity of what is searched: "otan", "caucase du sud", "azerbaidjan*"."""
        return " ".join(self.words) + ("*" if self.prefix else "")

    @property
    def atom(self) -> str:
        return "title:" + self.key if self.in_title else self.key

    def render(self) -> str:
        body = _quote(self.display) if self.quoted else self.display
        return "intitle:" + body if self.in_title else body


@dataclass(frozen=True, slots=True)
class SourceTerm:
    value: str  # normalised: a host ("lemonde.fr") or the words of a name ("france 24")
    display: str
    quoted: bool

    @property
    def atom(self) -> str:
        return "source:" + self.value

    def render(self) -> str:
        return "source:" + (_quote(self.display) if self.quoted else self.display)


@dataclass(frozen=True, slots=True)
class LangTerm:
    code: str

    @property
    def atom(self) -> str:
        return "lang:" + self.code

    def render(self) -> str:
        return f"lang:{self.code}"


@dataclass(frozen=True, slots=True)
class Not:
    child: Node


@dataclass(frozen=True, slots=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    children: tuple[Node, ...]


Node = TextTerm | SourceTerm | LangTerm | Not | And | Or
Atom = TextTerm | SourceTerm | LangTerm


def _quote(phrase: str) -> str:
    """Quote a phrase so that it parses back unchanged, whatever quotes it contains."""
    if '"' not in phrase:
        return f'"{phrase}"'
    if "»" not in phrase:
        return f"«{phrase}»"
    return '"' + phrase.replace('"', " ") + '"'


def _render(node: Node, parent: str = "") -> str:
    if isinstance(node, And):
        body = " ".join(_render(c, "and") for c in node.children)
        return f"({body})" if parent in ("or", "not") else body
    if isinstance(node, Or):
        body = " OR ".join(_render(c, "or") for c in node.children)
        return f"({body})" if parent in ("and", "not") else body
    if isinstance(node, Not):
        return "-" + _render(node.child, "not")
    return node.render()


def _atoms(node: Node, positive: bool = True):
    """Yield (atom, is_positive) for every leaf; double negation is positive."""
    if isinstance(node, Not):
        yield from _atoms(node.child, not positive)
    elif isinstance(node, And | Or):
        for child in node.children:
            yield from _atoms(child, positive)
    else:
        yield node, positive


@dataclass(frozen=True)
class Query:
    """A parsed, valid query. `text` is its canonical form; `parse_query(q.text) == q`."""

    root: Node
    text: str = field(compare=False)

    def atoms(self) -> list[tuple[Atom, bool]]:
        return list(_atoms(self.root))

    def positive_terms(self) -> list[str]:
        """The words and phrases that make the query fire, as written (for display and highlighting)."""
        seen: dict[str, None] = {}
        for atom, positive in _atoms(self.root):
            if positive and isinstance(atom, TextTerm):
                seen.setdefault(atom.display, None)
        return list(seen)

    def __str__(self) -> str:
        return self.text


# --- lexing ----------------------------------------------------------------------------------

_QUOTES = {'"': '"', "«": "»", "“": "”", "„": "“", "”": "”"}
_STOP = set(" \t\r\n\u00a0\u202f()") | set(_QUOTES) | {"»"}
_FIELD = re.compile(r"(intitle|titre|source|site|lang|langue):", re.IGNORECASE)
_FIELD_NAMES = {"intitle": "intitle", "titre": "intitle", "source": "source", "site": "source",
                "lang": "lang", "langue": "lang"}
_OR_WORDS = {"OR", "OU", "|"}
_AND_WORDS = {"AND", "ET"}
_NOT_WORDS = {"NOT"}
_LANG_CODE = re.compile(r"[a-z]{2,3}")
_HOST = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z0-9-]{2,}")


@dataclass(frozen=True, slots=True)
class _Lexeme:
    kind: str  # "(" ")" "or" "not" "term"
    pos: int  # 0-based
    field: str = ""
    value: str = ""
    quoted: bool = False


def _lex(text: str) -> list[_Lexeme]:
    out: list[_Lexeme] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace() or c == "»":  # a stray closing guillemet is punctuation, not a term
            i += 1
        elif c in "()":
            out.append(_Lexeme(c, i))
            i += 1
        elif c == "-" and i + 1 < n and not text[i + 1].isspace():
            out.append(_Lexeme("not", i))
            i += 1
        else:
            start = i
            field_name = ""
            m = _FIELD.match(text, i)
            if m:
                field_name = _FIELD_NAMES[m.group(1).lower()]
                i = m.end()
                if i >= n or text[i].isspace() or text[i] in "()»":
                    raise QueryError("empty_field", start + 1, field=field_name)
            if text[i] in _QUOTES:
                close = _QUOTES[text[i]]
                end = text.find(close, i + 1)
                if end < 0 and close == "”":
                    end = text.find('"', i + 1)
                if end < 0:
                    raise QueryError("unclosed_quote", i + 1)
                value = " ".join(text[i + 1 : end].split())
                i = end + 1
                if i < n and text[i] == "*" and not value.endswith("*"):
                    value += "*"
                    i += 1
                if not value.strip("* "):
                    raise QueryError("empty_phrase", start + 1)
                out.append(_Lexeme("term", start, field_name, value, quoted=True))
            else:
                while i < n and text[i] not in _STOP:
                    i += 1
                if i == start:
                    # Every branch must consume input: a stop character no branch above handles would
                    # otherwise spin forever on a user's query (found by tests/test_fuzz.py).
                    i += 1
                    continue
                word = text[start:i] if not field_name else text[m.end() : i]
                if not field_name and word in _OR_WORDS:
                    out.append(_Lexeme("or", start))
                elif not field_name and word in _NOT_WORDS:
                    out.append(_Lexeme("not", start))
                elif not field_name and word in _AND_WORDS:
                    pass
                elif field_name or any(ch.isalnum() for ch in word):
                    out.append(_Lexeme("term", start, field_name, word))
                # else: a word with no letters or digits ("&", "—") is ignored
    return out


# --- parsing ---------------------------------------------------------------------------------


class _Parser:
    def __init__(self, lexemes: list[_Lexeme], limits: QueryLimits) -> None:
        self.lexemes = lexemes
        self.i = 0
        self.limits = limits
        self.depth = 0

    def peek(self) -> _Lexeme | None:
        return self.lexemes[self.i] if self.i < len(self.lexemes) else None

    def parse(self) -> Node:
        node = self.all()
        extra = self.peek()
        if extra is not None:  # only a stray ")" can stop `all` early
            raise QueryError("unbalanced_parenthesis", extra.pos + 1)
        return node

    def all(self) -> Node:
        children = []
        while (lx := self.peek()) is not None and lx.kind != ")":
            if lx.kind == "or":
                raise QueryError("dangling_operator", lx.pos + 1, operator="OR")
            children.append(self.any())
        if not children:
            raise QueryError("empty")
        return children[0] if len(children) == 1 else And(tuple(children))

    def any(self) -> Node:
        children = [self.unary()]
        while (lx := self.peek()) is not None and lx.kind == "or":
            self.i += 1
            nxt = self.peek()
            if nxt is None or nxt.kind in (")", "or"):
                raise QueryError("dangling_operator", lx.pos + 1, operator="OR")
            children.append(self.unary())
        return children[0] if len(children) == 1 else Or(tuple(children))

    def unary(self) -> Node:
        lx = self.peek()
        assert lx is not None
        if lx.kind == "not":
            self.i += 1
            nxt = self.peek()
            if nxt is None or nxt.kind in (")", "or"):
                raise QueryError("dangling_exclusion", lx.pos + 1)
            return Not(self.unary())
        return self.primary()

    def primary(self) -> Node:
        lx = self.peek()
        assert lx is not None
        self.i += 1
        if lx.kind == "(":
            self.depth += 1
            if self.depth > self.limits.max_depth:
                raise QueryError("too_deep", lx.pos + 1, limit=self.limits.max_depth)
            nxt = self.peek()
            if nxt is not None and nxt.kind == ")":
                raise QueryError("empty_group", lx.pos + 1)
            if nxt is None:
                raise QueryError("unbalanced_parenthesis", lx.pos + 1)
            node = self.all()
            close = self.peek()
            if close is None or close.kind != ")":
                raise QueryError("unbalanced_parenthesis", lx.pos + 1)
            self.i += 1
            self.depth -= 1
            return node
        if lx.kind == ")":
            raise QueryError("unbalanced_parenthesis", lx.pos + 1)
        return _make_term(lx)


def _make_term(lx: _Lexeme) -> Node:
    value = lx.value
    if lx.field == "lang":
        code = value.lower()
        if not _LANG_CODE.fullmatch(code):
            raise QueryError("bad_language", lx.pos + 1, value=value)
        return LangTerm(code)
    if lx.field == "source":
        return SourceTerm(_source_value(value, lx.pos), value, lx.quoted)
    prefix = value.endswith("*")
    body = value.rstrip("*") if prefix else value
    words = tuple(normalize_words(body))
    if not words:
        raise QueryError("empty_field" if lx.field else "empty_phrase", lx.pos + 1, field=lx.field or "term")
    if prefix and len(words[-1]) < MIN_PREFIX_LENGTH:
        raise QueryError("prefix_too_short", lx.pos + 1, value=value, limit=MIN_PREFIX_LENGTH)
    return TextTerm(words, prefix, lx.field == "intitle", body.strip() + ("*" if prefix else ""), lx.quoted)


def _source_value(value: str, pos: int) -> str:
    """A host (scheme, path and a leading www. removed) or the normalised words of a source name."""
    candidate = value.strip().lower()
    is_url = re.match(r"[a-z][a-z0-9+.-]*://", candidate) is not None
    candidate = re.sub(r"^[a-z][a-z0-9+.-]*://", "", candidate).split("/", 1)[0].rstrip(".")
    if is_url or ("." in candidate and " " not in candidate):
        if not _HOST.fullmatch(candidate):
            raise QueryError("bad_source", pos + 1, value=value)
        return candidate.removeprefix("www.")
    words = normalize_words(value)
    if not words:
        raise QueryError("bad_source", pos + 1, value=value)
    return " ".join(words)


def _simplify(node: Node) -> Node:
    """Flatten nested AND/OR, drop double negation, so equal meanings get equal trees more often."""
    if isinstance(node, Not):
        child = _simplify(node.child)
        return child.child if isinstance(child, Not) else Not(child)
    if isinstance(node, And | Or):
        kind = type(node)
        flat: list[Node] = []
        for child in map(_simplify, node.children):
            flat.extend(child.children if isinstance(child, kind) else (child,))
        return flat[0] if len(flat) == 1 else kind(tuple(flat))
    return node


def _text_triggers(node: Node) -> bool:
    """True when the node can only be true if some positive word or phrase is present."""
    if isinstance(node, TextTerm):
        return True
    if isinstance(node, And):
        return any(_text_triggers(c) for c in node.children)
    if isinstance(node, Or):
        return all(_text_triggers(c) for c in node.children)
    return False  # Not, source:, lang:


def _alternative_without_keyword(node: Node) -> Node | None:
    """The first OR alternative (outside exclusions) that has no word or phrase of its own."""
    if isinstance(node, Or):
        for child in node.children:
            if not _text_triggers(child):
                return child
    if isinstance(node, And | Or):
        for child in node.children:
            found = _alternative_without_keyword(child)
            if found is not None:
                return found
    return None


def parse_query(text: str, limits: QueryLimits = QueryLimits()) -> Query:  # noqa: B008
    """Parse and validate a user query; raises `QueryError` with a friendly message."""
    if len(text) > limits.max_length:
        raise QueryError("too_long", None, length=len(text), limit=limits.max_length)
    if not text.strip():
        raise QueryError("empty")
    root = _simplify(_Parser(_lex(text), limits).parse())
    atoms = list(_atoms(root))
    if len(atoms) > limits.max_terms:
        raise QueryError("too_many_terms", None, count=len(atoms), limit=limits.max_terms)
    if not _text_triggers(root):
        if not any(positive for _, positive in atoms):
            raise QueryError("only_exclusions")
        if not any(positive and isinstance(a, TextTerm) for a, positive in atoms):
            raise QueryError("no_keyword")
        culprit = _alternative_without_keyword(root)
        if culprit is None:  # e.g. -(OTAN -Arménie): the only words sit inside an exclusion
            raise QueryError("only_exclusions")
        raise QueryError("or_without_keyword", alternative=_render(culprit))
    return Query(root, _render(root))

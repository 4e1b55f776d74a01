"""Property tests: the fast index agrees with the reference matcher on generated French queries and texts."""

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from bot.core.matching import Document, SubscriptionIndex, match_query
from bot.core.query import QueryError, parse_query
from bot.core.text import fold, normalize_words, tokenize
from tests.reference_matcher import reference_match

# Few words, so generated queries and texts meet often; French troubles on purpose: accents or
# not, ligatures, elided articles that are also words (l, d, qu), prefixes of each other.
WORDS = [
    "OTAN", "otan", "botanique", "Azerbaïdjan", "azerbaidjan", "azerbaïdjanais", "Arménie", "arméniens",
    "Caucase", "du", "Sud", "sud", "Haut", "Karabakh", "cœur", "coeur", "le", "la", "l", "d", "qu",
    "sécurité", "securite", "Bakou", "UE",
]
SEPARATORS = [" ", " ", " ", "\n", ", ", "-", "\u00a0", " l'", " d’", " qu'", ". ", "… ", " « ", " » ", "'"]

words = st.sampled_from(WORDS)
cased = st.builds(lambda w, how: [w, w.upper(), w.lower(), w.capitalize()][how], words, st.integers(0, 3))


@st.composite
def texts(draw, max_words=25):
    parts = draw(st.lists(st.tuples(cased, st.sampled_from(SEPARATORS)), max_size=max_words))
    return "".join(w + s for w, s in parts)


def _atom(draw):
    kind = draw(st.integers(0, 5))
    if kind <= 2:
        word = draw(cased)
        if draw(st.booleans()) and len(word) >= 3 and draw(st.integers(0, 3)) == 0:
            word += "*"
        text = word
    else:
        phrase = " ".join(draw(st.lists(cased, min_size=2, max_size=3)))
        text = f'"{phrase}"' if kind < 5 else f"« {phrase} »"
    if draw(st.integers(0, 6)) == 0:
        text = "intitle:" + text
    return text


@st.composite
def query_strings(draw, depth=0):
    if depth >= 2 or draw(st.integers(0, 2)) == 0:
        text = _atom(draw)
    else:
        children = [draw(query_strings(depth=depth + 1)) for _ in range(draw(st.integers(2, 3)))]
        joiner = " OR " if draw(st.booleans()) else " "
        text = "(" + joiner.join(children) + ")"
    if depth > 0 and draw(st.integers(0, 5)) == 0:
        text = "-" + text
    return text


def _parse_or_reject(text):
    try:
        return parse_query(text)
    except QueryError:
        assume(False)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(st.lists(query_strings(), min_size=1, max_size=6), texts(max_words=8), texts())
def test_index_agrees_with_reference_on_matches_and_hits(typed_queries, title, text):
    queries = []
    for typed in typed_queries:
        try:
            queries.append(parse_query(typed))
        except QueryError:
            continue
    assume(queries)
    doc = Document(title=title, text=text)
    index = SubscriptionIndex.build(enumerate(queries))
    expected = {i: reference_match(q, doc) for i, q in enumerate(queries)}
    matches = index.match(doc)
    got = {m.subscription_id: m.hits for m in matches}
    assert got == {i: hits for i, hits in expected.items() if hits is not None}
    for m in matches:  # the cheap terms (what the poller stores) are the terms of the hits
        assert sorted(m.terms) == sorted({hit.term for hit in m.hits})
    assert index.match_ids(doc) == sorted(got)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(st.lists(st.tuples(st.integers(0, 5), st.one_of(st.none(), query_strings())), min_size=1, max_size=25),
       texts(max_words=8), texts())
def test_incremental_changes_match_like_a_fresh_build_and_leave_nothing_behind(changes, title, text):
    """Adds, replacements and removals (None) in any order, queries shared by several subscriptions."""
    index = SubscriptionIndex()
    state = {}
    for subscription_id, typed in changes:
        if typed is None:
            index.remove(subscription_id)
            state.pop(subscription_id, None)
            continue
        try:
            query = parse_query(typed)
        except QueryError:
            continue
        index.add(subscription_id, query)
        state[subscription_id] = query
    doc = Document(title=title, text=text)
    fresh = SubscriptionIndex.build(state.items())
    assert [(m.subscription_id, m.hits) for m in index.match(doc)] == [
        (m.subscription_id, m.hits) for m in fresh.match(doc)]
    assert index.match_ids(doc) == fresh.match_ids(doc)
    for subscription_id in list(state):
        index.remove(subscription_id)
    assert len(index) == 0 and index.match_ids(doc) == []
    assert index.memory_hint() == SubscriptionIndex().memory_hint()  # no atom, pattern or entry left


@settings(max_examples=120, deadline=None)
@given(query_strings(), texts())
def test_single_query_preview_agrees_with_reference(typed, text):
    query = _parse_or_reject(typed)
    doc = Document(title="", text=text)
    found = match_query(query, doc)
    reference = reference_match(query, doc)
    assert (found.hits if found else None) == reference


@settings(max_examples=120, deadline=None)
@given(query_strings())
def test_canonical_text_parses_back_to_the_same_query(typed):
    query = _parse_or_reject(typed)
    again = parse_query(query.text)
    assert again == query and again.text == query.text


@settings(max_examples=120, deadline=None)
@given(st.one_of(texts(), st.text(max_size=40)))
def test_token_spans_cover_exactly_their_word(text):
    tokens = tokenize(text)
    assert [t.text for t in tokens] == normalize_words(text)
    for token in tokens:
        assert normalize_words(text[token.start : token.end]) == [token.text]


@settings(max_examples=120, deadline=None)
@given(st.one_of(texts(), st.text(max_size=40)))
def test_folding_is_idempotent_and_words_are_folded(text):
    assert fold(fold(text)) == fold(text)
    assert normalize_words(fold(text)) == normalize_words(text)

"""Parsing the alert query language: canonical forms, display terms, friendly errors."""

import pytest

from bot.core.query import And, LangTerm, Not, Or, QueryError, QueryLimits, SourceTerm, TextTerm, parse_query
from bot.errors import VeilleError


@pytest.mark.parametrize(
    ("typed", "canonical", "positive_terms"),
    [
        ("OTAN Azerbaïdjan", "OTAN Azerbaïdjan", ["OTAN", "Azerbaïdjan"]),
        ("  OTAN   AND  Azerbaïdjan ", "OTAN Azerbaïdjan", ["OTAN", "Azerbaïdjan"]),
        ('"Caucase du Sud"', '"Caucase du Sud"', ["Caucase du Sud"]),
        ("« Caucase du Sud »", '"Caucase du Sud"', ["Caucase du Sud"]),
        ("“Caucase   du\nSud”", '"Caucase du Sud"', ["Caucase du Sud"]),
        ("(OTAN OR NATO) Arménie", "(OTAN OR NATO) Arménie", ["OTAN", "NATO", "Arménie"]),
        ("(OTAN OU NATO) Arménie", "(OTAN OR NATO) Arménie", ["OTAN", "NATO", "Arménie"]),
        ("OTAN | NATO", "OTAN OR NATO", ["OTAN", "NATO"]),
        ("Kaboul OR Kabul taliban", "(Kaboul OR Kabul) taliban", ["Kaboul", "Kabul", "taliban"]),
        ("OTAN -football", "OTAN -football", ["OTAN"]),
        ('OTAN -"Ligue des champions"', 'OTAN -"Ligue des champions"', ["OTAN"]),
        ("OTAN NOT football", "OTAN -football", ["OTAN"]),
        ("OTAN -(football OR rugby)", "OTAN -(football OR rugby)", ["OTAN"]),
        ("azerbaïdjan*", "azerbaïdjan*", ["azerbaïdjan*"]),
        ("intitle:OTAN", "intitle:OTAN", ["OTAN"]),
        ('titre:"Caucase du Sud"', 'intitle:"Caucase du Sud"', ["Caucase du Sud"]),
        ("OTAN source:lemonde.fr", "OTAN source:lemonde.fr", ["OTAN"]),
        ('OTAN site:"France 24"', 'OTAN source:"France 24"', ["OTAN"]),
        ("OTAN lang:FR", "OTAN lang:fr", ["OTAN"]),
        ("OTAN langue:en", "OTAN lang:en", ["OTAN"]),
        ("Haut-Karabakh", "Haut-Karabakh", ["Haut-Karabakh"]),
        ("l’OTAN", "l’OTAN", ["l’OTAN"]),
        ("-(-OTAN)", "OTAN", ["OTAN"]),
        ("((OTAN))", "OTAN", ["OTAN"]),
        ("a (b (c d))", "a b c d", ["a", "b", "c", "d"]),
        ("(a b) OR c", "(a b) OR c", ["a", "b", "c"]),
        ("OTAN & UE", "OTAN UE", ["OTAN", "UE"]),
        ('"OR" logique', '"OR" logique', ["OR", "logique"]),
    ],
)
def test_queries_parse_to_a_canonical_form_that_parses_back(typed, canonical, positive_terms):
    query = parse_query(typed)
    assert query.text == canonical
    assert query.positive_terms() == positive_terms
    assert parse_query(query.text) == query


def test_terms_are_normalised_for_matching_but_displayed_as_written():
    query = parse_query("intitle:d’Azerbaïdjan* « Caucase du Sud » -source:www.LeMonde.fr lang:fr")
    assert query.root == And(
        (
            TextTerm(("azerbaidjan",), True, True, "d’Azerbaïdjan*", False),
            TextTerm(("caucase", "du", "sud"), False, False, "Caucase du Sud", True),
            Not(SourceTerm("lemonde.fr", "www.LeMonde.fr", False)),
            LangTerm("fr"),
        )
    )


def test_or_binds_tighter_than_the_implicit_and():
    assert parse_query("a b OR c").root == And(
        (TextTerm(("a",), False, False, "a", False), Or((TextTerm(("b",), False, False, "b", False),
                                                          TextTerm(("c",), False, False, "c", False))))
    )


@pytest.mark.parametrize(
    ("typed", "code", "position", "message"),
    [
        ("", "empty", None, "The query is empty: type the words to look for"),
        ("   ", "empty", None, "The query is empty: type the words to look for"),
        ('Azerbaïdjan "Caucase du', "unclosed_quote", 13, "Unclosed quote at position 13"),
        ("« Caucase du Sud", "unclosed_quote", 1, "Unclosed quote at position 1"),
        ("-football", "only_exclusions", None, "Nothing to match: the query only excludes"),
        ('-football -"Ligue des champions"', "only_exclusions", None, "Nothing to match: the query only excludes"),
        ("-(OTAN -Arménie)", "only_exclusions", None, "Nothing to match: the query only excludes"),
        ("OTAN OR -football", "or_without_keyword", None,
         "Each OR alternative needs a word or phrase to look for, and “-football” has none"),
        ("lang:fr", "no_keyword", None,
         "Nothing to search for: add a word or phrase; source: and lang: only narrow a search"),
        ("OTAN (Arménie", "unbalanced_parenthesis", 6, "Unbalanced parenthesis at position 6"),
        ("OTAN) Arménie", "unbalanced_parenthesis", 5, "Unbalanced parenthesis at position 5"),
        ("OTAN ()", "empty_group", 6, "Empty parentheses at position 6"),
        ("OR OTAN", "dangling_operator", 1, "OR at position 1 needs a term on both sides"),
        ("OTAN OR", "dangling_operator", 6, "OR at position 6 needs a term on both sides"),
        ("OTAN OR OR NATO", "dangling_operator", 6, "OR at position 6 needs a term on both sides"),
        ("OTAN -", None, None, None),  # a lone dash is punctuation, ignored
        ("OTAN -)", "dangling_exclusion", 6, "Nothing to exclude after the minus sign at position 6"),
        ("intitle: OTAN", "empty_field", 1, "intitle: at position 1 needs a value, e.g. intitle:OTAN"),
        ('OTAN ""', "empty_phrase", 6, "Empty quotes at position 6"),
        ("OTAN lang:français", "bad_language", 6,
         "Unknown language code “français” at position 6: use a code such as fr or en"),
        ("OTAN source:http://", "bad_source", 6, "“http://” at position 6 is not a site or source name"),
        ("az*", "prefix_too_short", 1,
         "The prefix “az*” at position 1 is too short: give at least 3 letters before the *"),
    ],
)
def test_bad_queries_get_a_friendly_message_that_shows_where(typed, code, position, message):
    if code is None:
        assert parse_query(typed).text == "OTAN"
        return
    with pytest.raises(QueryError) as caught:
        parse_query(typed)
    error = caught.value
    assert isinstance(error, VeilleError)
    assert (error.code, error.position, str(error)) == (code, position, message)
    if position is not None:
        assert error.params["position"] == position


def test_limits_come_from_settings():
    limits = QueryLimits(max_length=20, max_terms=3, max_depth=2)
    with pytest.raises(QueryError) as too_long:
        parse_query("Azerbaïdjan Arménie Géorgie", limits)
    assert (too_long.value.code, too_long.value.params) == ("too_long", {"length": 27, "limit": 20})
    with pytest.raises(QueryError) as too_many:
        parse_query("a b c d", limits)
    assert (too_many.value.code, too_many.value.params) == ("too_many_terms", {"count": 4, "limit": 3})
    with pytest.raises(QueryError) as too_deep:
        parse_query("(((a)))", limits)
    assert (too_deep.value.code, too_deep.value.position) == ("too_deep", 3)
    assert parse_query("a b c", limits).text == "a b c"


def test_default_limits_accept_a_long_realistic_query():
    typed = '(OTAN OR NATO OR "Alliance atlantique") (Arménie OR Azerbaïdjan OR Géorgie) -football -sport*'
    assert parse_query(typed).text == typed


@pytest.mark.parametrize("text", ["»", "a » b", "OTAN »»", "intitle:»", "«»»", "» -"])
def test_stray_closing_guillemets_never_hang_the_parser(text: str) -> None:
    # Found by tests/test_fuzz.py: "»" is a stop character no lexer branch consumed, so the lexer
    # spun forever — a single chat message could freeze the bot's event loop.
    try:
        parse_query(text)
    except QueryError as exc:
        assert str(exc)

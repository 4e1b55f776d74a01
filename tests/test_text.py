"""The normaliser's rules, one table row each (French first)."""

import pytest

from bot.core.text import fold, normalize_text, normalize_words, tokenize


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("Azerbaïdjan", "azerbaidjan"),
        ("ÉTÉ à Noël", "ete a noel"),
        ("Œuvre, cœur, sœur", "oeuvre, coeur, soeur"),
        ("Ægée et Lætitia", "aegee et laetitia"),
        ("Straße", "strasse"),
        ("l’OTAN d‘Arménie ʼx", "l'otan d'armenie 'x"),
        ("Çà et là", "ca et la"),
        ("Łódź Ørsted", "lodz orsted"),
        ("İstanbul", "istanbul"),
        ("ﬁnance", "finance"),
        ("plain ascii", "plain ascii"),
    ],
)
def test_fold_lowers_strips_accents_expands_ligatures_and_unifies_apostrophes(text, folded):
    assert fold(text) == folded


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("l'OTAN", ["otan"]),
        ("l’OTAN", ["otan"]),
        ("d'Azerbaïdjan", ["azerbaidjan"]),
        ("qu’il jusqu'à lorsqu'elle puisqu'on", ["il", "a", "elle", "on"]),
        ("n'est c'est s'il j'ai m'a t'es", ["est", "est", "il", "ai", "a", "es"]),
        ("aujourd'hui", ["aujourd", "hui"]),
        ("Haut-Karabakh", ["haut", "karabakh"]),
        ("Haut\u2011Karabakh – Bakou—Erevan", ["haut", "karabakh", "bakou", "erevan"]),
        ("Caucase\u00a0du\u202fSud", ["caucase", "du", "sud"]),
        ("Caucase\ndu\r\nSud", ["caucase", "du", "sud"]),
        ("« OTAN » (NATO), [UE]; UE/OTAN", ["otan", "nato", "ue", "ue", "otan"]),
        ("120,000 personnes en 2002", ["120", "000", "personnes", "en", "2002"]),
        ("COP28 et G7", ["cop28", "et", "g7"]),
        ("NATO's chief", ["nato", "s", "chief"]),
        ("snake_case", ["snake", "case"]),
        ("l' OTAN", ["otan"]),
        ("e\u0301te\u0301", ["ete"]),
        ("", []),
        ("… — !", []),
    ],
)
def test_words_split_on_separators_and_drop_elided_articles(text, words):
    assert normalize_words(text) == words


@pytest.mark.parametrize(
    "text",
    [
        "Le chef de l’OTAN salue l'Azerbaïdjan",
        "Œuvre… cœur — straße ﬁn İstanbul",
        "e\u0301te\u0301 et Noe\u0308l",
        "«Caucase du Sud» Haut-Karabakh",
        "a\u00a0b\u202fc\n\td",
    ],
)
def test_token_spans_point_at_the_original_words(text):
    tokens = tokenize(text)
    assert [t.text for t in tokens] == normalize_words(text)
    for token in tokens:
        assert normalize_words(text[token.start : token.end]) == [token.text]


def test_token_span_covers_an_expanded_ligature_and_a_trailing_combining_accent():
    text = "Œuvres de Noe\u0308l"
    spans = [(t.text, text[t.start : t.end]) for t in tokenize(text)]
    assert spans == [("oeuvres", "Œuvres"), ("de", "de"), ("noel", "Noe\u0308l")]


def test_flat_view_keeps_positions_of_plain_french_text():
    text = "L’OTAN, à Bakou."
    flat = normalize_text(text).flat
    assert len(flat) == len(text)
    assert flat.split() == ["otan", "a", "bakou"]

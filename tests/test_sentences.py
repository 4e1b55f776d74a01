"""Sentence splitting: French and English abbreviations, numbers and quotes never cut a sentence."""

from __future__ import annotations

import pytest

from bot.core.sentences import ends_with_terminal_punctuation, split_sentences

CASES = [
    # French titles and forms of address
    ("M. Macron a parlé. Mme Dupont aussi.", ["M. Macron a parlé.", "Mme Dupont aussi."]),
    (
        "MM. Dupont et Durand sont venus. Ils sont partis.",
        ["MM. Dupont et Durand sont venus.", "Ils sont partis."],
    ),
    ("Le Dr. Martin opère. Le Pr. Roux enseigne.", ["Le Dr. Martin opère.", "Le Pr. Roux enseigne."]),
    ("Me Dupont plaide. Il gagne.", ["Me Dupont plaide.", "Il gagne."]),
    ("Elle m'a dit de venir. Tell me. Then go.", ["Elle m'a dit de venir.", "Tell me.", "Then go."]),
    # English titles and dotted acronyms
    ("Mr. Smith met Dr. Jones. They talked.", ["Mr. Smith met Dr. Jones.", "They talked."]),
    ("The U.S. economy grew. Prices rose.", ["The U.S. economy grew.", "Prices rose."]),
    ("At 9 a.m. Monday the talks began. Nobody came.", ["At 9 a.m. Monday the talks began.", "Nobody came."]),
    ("J. Stoltenberg est là. Vraiment !", ["J. Stoltenberg est là.", "Vraiment !"]),
    # Numbers and dates
    (
        "Il y avait 120,000 personnes. Puis 3.5 millions.",
        ["Il y avait 120,000 personnes.", "Puis 3.5 millions."],
    ),
    ("Le sommet du 15 décembre 2021 a eu lieu. Fin.", ["Le sommet du 15 décembre 2021 a eu lieu.", "Fin."]),
    ("Il a eu lieu en 2002. 2003 fut calme.", ["Il a eu lieu en 2002.", "2003 fut calme."]),
    ("Voir p. 12 du rapport. Fin.", ["Voir p. 12 du rapport.", "Fin."]),
    ("L'art. 49.3 a été utilisé. Le texte passe.", ["L'art. 49.3 a été utilisé.", "Le texte passe."]),
    ("He said no. Then left.", ["He said no.", "Then left."]),
    ("Il était le no. 1 mondial. Puis il a chuté.", ["Il était le no. 1 mondial.", "Puis il a chuté."]),
    ("Le 3 janv. Paris a voté. Lyon aussi.", ["Le 3 janv. Paris a voté.", "Lyon aussi."]),
    # Punctuation, quotes and brackets
    ("Vraiment ? Oui ! Et alors… Rien.", ["Vraiment ?", "Oui !", "Et alors…", "Rien."]),
    (
        "Il a dit : « Nous voulons la paix. » Puis il est parti.",
        ["Il a dit : « Nous voulons la paix. »", "Puis il est parti."],
    ),
    ('He said "No." Then left.', ['He said "No."', "Then left."]),
    ("Il est parti (enfin.) Puis revenu.", ["Il est parti (enfin.)", "Puis revenu."]),
    ("Des pommes, des poires, etc. et des fruits.", ["Des pommes, des poires, etc. et des fruits."]),
    ("Wait... what? Yes.", ["Wait... what?", "Yes."]),
    ("Fin de phrase. — Oui, dit-il.", ["Fin de phrase.", "— Oui, dit-il."]),
    # Lines
    ("Titre\nPremier paragraphe. Second.", ["Titre", "Premier paragraphe.", "Second."]),
    ("  \n\n  Un.  \n", ["Un."]),
    ("", []),
    # Scripts without case still start sentences
    ("Он пришёл. Она ушла.", ["Он пришёл.", "Она ушла."]),
    ("Fin. 東京で会議が開かれた。", ["Fin.", "東京で会議が開かれた。"]),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_split_sentences(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


@pytest.mark.parametrize("language", [None, "fr", "en", "de"])
def test_language_does_not_change_shared_rules(language: str | None) -> None:
    assert split_sentences("M. Dupont est là. Il parle.", language) == ["M. Dupont est là.", "Il parle."]


@pytest.mark.parametrize(
    ("sentence", "ends"),
    [
        ("Fin.", True),
        ("Vraiment ?", True),
        ("Quoi !", True),
        ("Et alors…", True),
        ("« La paix. »", True),
        ('"No."', True),
        ("(enfin.)", True),
        ("Titre sans point", False),
        ("PARTAGEZ:", False),
        ("", False),
    ],
)
def test_ends_with_terminal_punctuation(sentence: str, ends: bool) -> None:
    assert ends_with_terminal_punctuation(sentence) is ends

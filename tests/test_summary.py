"""Summaries: page chrome never shows, the lead comes first, sentences are whole, the length holds."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.sentences import ends_with_terminal_punctuation, split_sentences
from bot.core.summary import clean_text, has_scraping_artefact, summarize, truncate_at_word

DATA = Path(__file__).parent / "data"
SAMPLE = (DATA / "eureporter-fr-otan-azerbaidjan.txt").read_text(encoding="utf-8")
SAMPLE_TITLE = "Le chef de l'OTAN salue le soutien de l'Azerbaïdjan à la sécurité et à la stabilité dans le Caucase du Sud"
CHROME = ("XNUMX", "Publicité", "PARTAGEZ", "Partagez", "Suivez", "Tendance", "Publié le")


@pytest.mark.parametrize("title", [SAMPLE_TITLE, None])
def test_golden_french_sample_summary(title: str | None) -> None:
    summary = summarize(SAMPLE, language="fr", title=title)
    assert summary.startswith("Avant le sommet du Partenariat oriental de demain (15 décembre),")
    for chrome in CHROME:
        assert chrome not in summary
    assert ends_with_terminal_punctuation(summary)
    assert 200 < len(summary) <= 400


def test_golden_french_sample_cleaning() -> None:
    cleaned = clean_text(SAMPLE)
    for chrome in CHROME:
        assert chrome not in cleaned
    lines = cleaned.splitlines()
    assert lines[0] == "Azerbaïdjan"  # a category label is not chrome, and is no sentence either
    assert lines[1] == SAMPLE_TITLE
    assert lines[2].startswith("Avant le sommet du Partenariat oriental")
    # The artefact sentence went, the rest of its paragraph stayed.
    assert "depuis" not in lines[3] and lines[3].startswith("Stoltenberg a accueilli")
    assert lines[-1].endswith("pour tout le monde. »")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Publicité\nUn vrai paragraphe.", "Un vrai paragraphe."),
        ("PARTAGEZ:\nPartagez cet article:\nSuivez nous sur\nTexte.", "Texte."),
        ("Share this article\nFollow us on\nAdvertisement\nText.", "Text."),
        ("Publié le\non\nTexte.", "Texte."),
        ("Lire aussi : Un autre titre sans rapport\nTexte.", "Texte."),
        ("Texte.\nTendance\nTitre un\nTitre deux\nTitre trois", "Texte."),
        ("Texte.\nÀ lire aussi\nTitre un\nTitre deux", "Texte."),
        ("Texte.\nTrending\nHeadline one\nHeadline two", "Texte."),
        (
            "Texte.\nLire aussi\nUn titre\nCe paragraphe est un vrai paragraphe de prose, long de plus de douze mots, et il reste.",
            "Texte.\nCe paragraphe est un vrai paragraphe de prose, long de plus de douze mots, et il reste.",
        ),
        (
            "Nous utilisons des cookies pour améliorer votre expérience. Accepter / Refuser\nTexte.",
            "Texte.",
        ),
        ("We use cookies to improve your experience. Accept all\nText.", "Text."),
        ("© 2021 EU Reporter. Tous droits réservés.\nTexte.", "Texte."),
        ("Crédit photo : AFP\nTexte.", "Texte."),
        ("Un. Depuis XNUMX ans. Deux.", "Un. Deux."),
        ("Depuis XNUMX ans.\nTexte.", "Texte."),
        ("Caract\ufffdre cass\ufffd. Texte.", "Texte."),
        ("AT&amp;T rach&egrave;te. Texte&nbsp;fin.", "AT&T rachète. Texte\u00a0fin."),
        ("Mot\u00adcoupé et\u200b invisible.", "Motcoupé et invisible."),
        ("  Espaces   multiples \t ici.  ", "Espaces multiples ici."),
        ("Le cookie est un biscuit.", "Le cookie est un biscuit."),
        ("", ""),
    ],
)
def test_clean_text(text: str, expected: str) -> None:
    assert clean_text(text) == expected


ENGLISH = (
    "Subscribe\n"
    "NATO Secretary General Jens Stoltenberg met Azerbaijan's President Ilham Aliyev in Brussels on Tuesday. "
    "Mr. Stoltenberg thanked the U.S.-trained Azerbaijani troops for securing Kabul airport in August. "
    "The two leaders discussed the situation in the South Caucasus and relations with Armenia. "
    "Aliyev said Azerbaijan was ready to sign a peace agreement with Armenia soon.\n"
    "Read more\nRelated\nAnother headline\n"
)


def test_english_summary_starts_with_the_lead_and_keeps_abbreviations_whole() -> None:
    summary = summarize(ENGLISH, language="en", title="NATO chief meets Aliyev")
    assert summary.startswith("NATO Secretary General Jens Stoltenberg met")
    assert "Mr. Stoltenberg thanked the U.S.-trained" in summary or "Mr." not in summary
    assert "Subscribe" not in summary and "Read more" not in summary and "headline" not in summary
    assert ends_with_terminal_punctuation(summary)


@pytest.mark.parametrize("max_chars", [400, 300, 200, 120, 60, 10, 1])
def test_summary_never_exceeds_max_chars(max_chars: int) -> None:
    assert len(summarize(SAMPLE, max_chars=max_chars)) <= max_chars


def test_summary_takes_two_or_three_sentences_when_room_allows() -> None:
    summary = summarize(ENGLISH, max_chars=400)
    assert 2 <= len(split_sentences(summary)) <= 3


def test_too_long_lead_is_cut_at_a_word_with_an_ellipsis() -> None:
    summary = summarize(SAMPLE, max_chars=100)
    assert summary.endswith("…")
    assert summary.startswith("Avant le sommet")
    assert SAMPLE.find(summary[:-1]) >= 0  # a prefix of real text, cut between words
    assert len(summary) <= 100


def test_title_repeated_in_text_is_not_used_as_summary() -> None:
    text = "Le gouvernement annonce une réforme des retraites.\nLe Premier ministre a présenté mardi une réforme des retraites très attendue."
    summary = summarize(text, title="Le gouvernement annonce une réforme des retraites.")
    assert summary == "Le Premier ministre a présenté mardi une réforme des retraites très attendue."


def test_feed_description_without_sentences_falls_back_to_its_text() -> None:
    assert summarize("Réforme des retraites : ce qui change au 1er janvier") == (
        "Réforme des retraites : ce qui change au 1er janvier"
    )


def test_sentence_with_unbalanced_quote_is_avoided_when_others_exist() -> None:
    text = (
        "Le ministre a annoncé mardi un plan de relance pour l'industrie française. "
        "Il a déclaré : « Nous allons investir massivement dans les usines du pays. "
        "Le plan prévoit trente milliards d'euros sur cinq ans pour les régions."
    )
    summary = summarize(text)
    assert "«" not in summary
    assert summary.endswith("pour les régions.")


@pytest.mark.parametrize("text", ["", "   ", "Publicité\nPARTAGEZ:\n", "!!! ... ???"])
def test_no_usable_text_gives_empty_summary(text: str) -> None:
    assert summarize(text) == ""


@pytest.mark.parametrize(
    ("text", "max_chars", "expected"),
    [
        ("Court.", 10, "Court."),
        ("Un deux trois quatre", 12, "Un deux…"),
        ("Un deux, trois quatre", 14, "Un deux…"),
        ("Anticonstitutionnellement", 10, "Anticonst…"),
        ("Un deux", 1, ""),
    ],
)
def test_truncate_at_word(text: str, max_chars: int, expected: str) -> None:
    assert truncate_at_word(text, max_chars) == expected


@pytest.mark.parametrize(("text", "found"), [("depuis XNUMX", True), ("\ufffd", True), ("propre", False)])
def test_has_scraping_artefact(text: str, found: bool) -> None:
    assert has_scraping_artefact(text) is found


@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=3000), max_chars=st.integers(min_value=0, max_value=500))
def test_any_text_gives_a_bounded_summary(text: str, max_chars: int) -> None:
    summary = summarize(text, max_chars=max_chars)
    assert len(summary) <= max_chars
    assert summary == summary.strip()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "الرئيس الفرنسي يزور الجزائر الأسبوع المقبل في زيارة رسمية. ويلتقي نظيره لبحث العلاقات الثنائية بين البلدين.",
            "الرئيس الفرنسي يزور الجزائر الأسبوع المقبل في زيارة رسمية.",
        ),
        (
            "Президент России заявил о новых мерах поддержки экономики страны. Меры вступят в силу с января.",
            "Президент России заявил о новых мерах поддержки экономики страны.",
        ),
    ],
)
def test_scripts_without_capitals_or_other_alphabets_are_summarised(text: str, expected: str) -> None:
    assert summarize(text).startswith(expected)


def test_shouted_banner_sentence_is_not_the_lead() -> None:
    text = "ABONNEZ-VOUS DÈS MAINTENANT POUR LIRE LA SUITE DE CET ARTICLE. Le Parlement a adopté mardi la loi de finances pour l'année prochaine."
    assert summarize(text).startswith("Le Parlement a adopté")

"""Story clustering: fingerprints, the calibrated threshold, and the windowed index.

The calibration tests tokenise with `bot.core.text.normalize_words`, what the pipeline uses; a small
local normaliser with the same rules (lower-case, accents folded, elisions split) stands in while
that module is absent. Measured distances (normalize_words / local): another title 23/20, chrome left
in 23/27, cut after the lead 22/28, edited words 12/14; different articles 51 and more.
"""

from __future__ import annotations

import random
import re
import unicodedata
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.core.stories import (
    DEFAULT_THRESHOLD,
    FINGERPRINT_BITS,
    StoryIndex,
    fingerprint,
    fingerprint_from_bytes,
    fingerprint_to_bytes,
    hamming_distance,
)
from bot.core.summary import clean_text

DATA = Path(__file__).parent / "data"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TITLE = "Le chef de l'OTAN salue le soutien de l'Azerbaïdjan à la sécurité et à la stabilité dans le Caucase du Sud"


def local_words(text: str) -> list[str]:
    folded = unicodedata.normalize("NFKD", text.lower().replace("’", "'"))
    folded = "".join(char for char in folded if not unicodedata.combining(char))
    return re.findall(r"[a-z0-9]+", folded)


try:
    from bot.core.text import normalize_words as words
except ImportError:  # the normaliser is another module's job; calibrate without it meanwhile
    words = local_words


RAW = (DATA / "eureporter-fr-otan-azerbaidjan.txt").read_text(encoding="utf-8")
BODY = clean_text(RAW).split("\n", 2)[2]  # without the category line and the title
PARAGRAPHS = BODY.split("\n")
ORIGINAL = TITLE + "\n" + BODY

SAME_DISPATCH = {
    "another outlet's title": "L'OTAN remercie Bakou pour son aide en Afghanistan\n" + BODY,
    "page chrome left in": TITLE + "\n" + RAW,
    "cut after the lead": TITLE + "\n" + PARAGRAPHS[0],
    "cut after two paragraphs": TITLE + "\n" + "\n".join(PARAGRAPHS[:2]),
    "agency prefix": "BRUXELLES (AFP) - " + TITLE + "\n" + BODY,
    "a few words edited": ORIGINAL.replace("demain", "mercredi")
    .replace("président azerbaïdjanais", "chef de l'État azerbaïdjanais")
    .replace("Jens Stoltenberg", "M. Stoltenberg")
    .replace("remercié", "salué"),
}
DIFFERENT_ARTICLES = {
    "same event, own wording (fr)": (
        "L'OTAN et l'Azerbaïdjan renforcent leur coopération\nLe secrétaire général de l'Alliance atlantique, "
        "Jens Stoltenberg, a reçu mardi à Bruxelles le président Ilham Aliyev. Les deux hommes ont évoqué la "
        "situation dans le Caucase du Sud, les négociations de paix avec l'Arménie et la contribution de Bakou "
        "aux opérations de l'Alliance. Selon un communiqué, l'OTAN se félicite de la participation "
        "azerbaïdjanaise à l'évacuation de l'aéroport de Kaboul cet été."
    ),
    "same summit, other angle (fr)": (
        "Sommet du Partenariat oriental : Charles Michel réunit Aliyev et Pachinian\nLe président du Conseil "
        "européen a organisé mardi soir un dîner avec le président azerbaïdjanais et le Premier ministre "
        "arménien, à la veille du sommet du Partenariat oriental. L'Union européenne propose une mission "
        "d'experts pour la délimitation des frontières et un soutien au déminage."
    ),
    "same event in English": (
        "NATO chief thanks Azerbaijan for Afghanistan help\nNATO Secretary General Jens Stoltenberg met "
        "Azerbaijani President Ilham Aliyev in Brussels on Tuesday ahead of the Eastern Partnership summit. "
        "Stoltenberg thanked Aliyev for the role Azerbaijani soldiers played in securing Kabul airport."
    ),
    "unrelated (fr)": (
        "Grève à la SNCF : le trafic fortement perturbé jeudi\nLa SNCF prévoit un trafic très perturbé jeudi "
        "sur l'ensemble du réseau en raison d'un mouvement social national. Seul un TGV sur deux circulera et "
        "les TER seront fortement touchés dans la plupart des régions."
    ),
}


def distance_to_original(text: str) -> int:
    return hamming_distance(fingerprint(words(ORIGINAL)), fingerprint(words(text)))


@pytest.mark.parametrize("variant", sorted(SAME_DISPATCH))
def test_same_dispatch_variants_stay_within_the_threshold(variant: str) -> None:
    assert distance_to_original(SAME_DISPATCH[variant]) <= DEFAULT_THRESHOLD


@pytest.mark.parametrize("article", sorted(DIFFERENT_ARTICLES))
def test_different_articles_are_well_beyond_the_threshold(article: str) -> None:
    # A margin of 12 bits: the threshold must not sit on the edge of what separates stories.
    assert distance_to_original(DIFFERENT_ARTICLES[article]) >= DEFAULT_THRESHOLD + 12


def test_five_percent_of_words_replaced_still_matches_in_nearly_every_trial() -> None:
    rng = random.Random(1)
    original = words(ORIGINAL)
    vocabulary = sorted(set(original))
    base = fingerprint(original)
    trials = 100
    within = 0
    for _ in range(trials):
        edited = [rng.choice(vocabulary) if rng.random() < 0.05 else word for word in original]
        within += hamming_distance(base, fingerprint(edited)) <= DEFAULT_THRESHOLD
    assert within >= 90


def test_random_texts_from_the_same_vocabulary_never_match() -> None:
    rng = random.Random(2)
    vocabulary = sorted(set(words(ORIGINAL)))
    for _ in range(100):
        first = fingerprint(rng.sample(vocabulary, 100))
        second = fingerprint(rng.sample(vocabulary, 100))
        assert hamming_distance(first, second) > DEFAULT_THRESHOLD


@pytest.mark.parametrize(
    ("sequence", "expected"),
    [
        ([], 0),
        (["otan"], fingerprint(["otan"])),
    ],
)
def test_fingerprint_of_tiny_inputs(sequence: list[str], expected: int) -> None:
    assert fingerprint(sequence) == expected


def test_fingerprint_is_stable_across_runs() -> None:
    # A stored fingerprint must mean the same thing after a restart: no salted hash().
    assert fingerprint(["le", "chef", "de", "l", "otan"]) == 0x8804082814F5AA10614631220470D410
    assert fingerprint(local_words("Le chef de l'OTAN")) == 0x8804082814F5AA10614631220470D410


def test_fingerprint_reads_only_the_beginning() -> None:
    lead = words(ORIGINAL)[:100]
    assert fingerprint(lead) == fingerprint(lead + ["anything", "after", "the", "lead"])


def test_fingerprint_fits_its_bytes_form() -> None:
    fp = fingerprint(words(ORIGINAL))
    assert 0 < fp < 1 << FINGERPRINT_BITS
    assert fingerprint_from_bytes(fingerprint_to_bytes(fp)) == fp
    assert len(fingerprint_to_bytes(fp)) == 16
    with pytest.raises(ValueError):
        fingerprint_from_bytes(b"\x00" * 8)


def flip(fp: int, bits: int) -> int:
    return fp ^ ((1 << bits) - 1)


FP = fingerprint(words(ORIGINAL))


@pytest.mark.parametrize(
    ("probe", "published", "expected"),
    [
        (FP, T0, 7),
        (flip(FP, DEFAULT_THRESHOLD), T0, 7),
        (flip(FP, DEFAULT_THRESHOLD + 1), T0, None),
        (FP, T0 + timedelta(hours=47), 7),
        (FP, T0 - timedelta(hours=47), 7),
        (FP, T0 + timedelta(hours=49), None),
        (FP, T0.replace(tzinfo=None), 7),  # naive means UTC
    ],
)
def test_find_story_respects_threshold_and_window(
    probe: int, published: datetime, expected: int | None
) -> None:
    index = StoryIndex(threshold=DEFAULT_THRESHOLD, window=timedelta(hours=48))
    index.add(1, 7, FP, T0)
    assert index.find_story(probe, published) == expected


def test_empty_index_finds_nothing() -> None:
    assert StoryIndex(threshold=DEFAULT_THRESHOLD, window=timedelta(hours=1)).find_story(FP, T0) is None


def test_nearest_duplicate_wins_then_the_earliest_added() -> None:
    index = StoryIndex(threshold=DEFAULT_THRESHOLD, window=timedelta(hours=48))
    index.add(1, 10, flip(FP, 6), T0)
    index.add(2, 20, flip(FP, 2), T0)
    index.add(3, 30, flip(FP, 2), T0)
    assert index.find_story(FP, T0) == 20


def test_prune_forgets_articles_older_than_the_window() -> None:
    index = StoryIndex(threshold=DEFAULT_THRESHOLD, window=timedelta(hours=48))
    index.add(1, 1, FP, T0)
    index.add(2, 2, flip(FP, 1), T0 + timedelta(hours=10))
    index.prune(T0 + timedelta(hours=49))
    assert len(index) == 1
    assert index.find_story(FP, T0 + timedelta(hours=11)) == 2
    index.prune(T0 + timedelta(hours=100))
    assert len(index) == 0
    assert index.find_story(FP, T0 + timedelta(hours=100)) is None


def test_adding_an_article_again_replaces_its_entry() -> None:
    index = StoryIndex(threshold=DEFAULT_THRESHOLD, window=timedelta(hours=48))
    index.add(1, 1, FP, T0)
    index.add(1, 2, FP, T0)
    assert len(index) == 1
    assert index.find_story(FP, T0) == 2


def test_index_grows_and_is_rebuildable_from_rows() -> None:
    rng = random.Random(3)
    rows = [(article_id, article_id // 2, rng.getrandbits(128), T0) for article_id in range(3000)]
    index = StoryIndex(threshold=DEFAULT_THRESHOLD, window=timedelta(hours=48))
    for row in rows:
        index.add(*row)
    assert len(index) == 3000
    for _article_id, story_id, fp, published in rows[::97]:
        assert index.find_story(fp, published) == story_id


@pytest.mark.parametrize("threshold", [-1, FINGERPRINT_BITS])
def test_threshold_out_of_range_is_refused(threshold: int) -> None:
    with pytest.raises(ValueError):
        StoryIndex(threshold=threshold, window=timedelta(hours=1))

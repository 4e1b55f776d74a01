"""Finding of the 10-minute Telegram storm (issue #10, docs/reliability.md bug 7): distinct short items
that share a template were merged into one story, so a chat already alerted for that story never saw
the later item (no alert, and no edit either when it comes from the same source).

The storm publishes items like "Tempête st0490x A B C" / "Le D et la E face au F" (27 words in all);
with ~12 two-word shingles, a SimHash differs by fewer than 28 of 128 bits between unrelated items far
more often than the 5.5e-11 the threshold was calibrated for on a 100-word article. The 10-minute storm
(1,200 items) lost 42 alerts (21 items x 2 chats) this way. Short texts now get a stricter threshold
(`bot.core.stories.threshold_for`); these tests hold it between the two errors: no false merge among
templated items, and the same short item with an agency prefix or a title-only copy still one story.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from bot.core.stories import StoryIndex, fingerprint, threshold_for
from bot.core.text import normalize_words
from tests.test_reliability_telegram import WORDS


def _short_items(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    items = []
    for number in range(1, count + 1):
        words = rng.sample(WORDS, 6)
        items.append(f"Tempête st{number:04d}x {' '.join(words[:3])} Le {words[3]} et la {words[4]} face au {words[5]}.")
    return items


def _merged(texts: list[str], *, strict: bool) -> list[str]:
    """The texts that joined an earlier text's story, each text its own story otherwise."""
    index = StoryIndex()
    now = datetime(2026, 11, 27, tzinfo=UTC)
    merged = []
    for article_id, text in enumerate(texts, start=1):
        words = normalize_words(text)
        fp = fingerprint(words)
        if index.find_story(fp, now, words=len(words) if strict else None) is not None:
            merged.append(text)
        index.add(article_id, article_id, fp, now)
    return merged


def test_distinct_short_templated_items_are_never_one_story() -> None:
    items = _short_items(1200, seed=1)
    assert len(_merged(items, strict=False)) > 10  # the bug, with one threshold for every length
    assert _merged(items, strict=True) == []


@pytest.mark.parametrize("copy", [lambda text: text.upper(), lambda text: text.replace(".", " !")])
def test_the_same_short_item_reposted_is_still_one_story(copy) -> None:  # noqa: ANN001
    items = _short_items(200, seed=2)
    assert len(_merged(items + [copy(text) for text in items[:50]], strict=True)) == 50


def test_most_short_items_with_an_agency_prefix_still_join_their_story() -> None:
    """The price of the stricter threshold: two extra words in a 13-word item move its fingerprint by
    7 to 19 bits, so a quarter of such copies now make a second alert instead of none (37 of 50 join)."""
    items = _short_items(200, seed=2)
    assert len(_merged(items + ["AFP - " + text for text in items[:50]], strict=True)) >= 35


@pytest.mark.parametrize(("words", "threshold"), [(1, 16), (13, 16), (20, 16), (21, 16), (30, 22), (39, 27),
                                                  (40, 28), (100, 28)])
def test_the_threshold_grows_with_the_text_up_to_the_default(words, threshold) -> None:  # noqa: ANN001
    assert threshold_for(words) == threshold

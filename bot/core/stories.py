"""Stories: articles from different outlets that carry the same dispatch, so a chat is alerted once.

Rules:
- An article's fingerprint is a 128-bit SimHash (Charikar 2002) over the 2-word shingles of its first
  `FINGERPRINT_WORDS` normalised words (title then text; the caller normalises: lower-case, accents
  folded, elisions split). Only the beginning is read because outlets cut the same dispatch at
  different lengths (a feed description, a full page) while the title and the lead survive.
- Two articles are near-duplicates when their fingerprints differ in at most `threshold` bits
  (Hamming distance) and their publication times are at most `window` apart.
- The default threshold, `DEFAULT_THRESHOLD` = 28 of 128 bits, is calibrated in tests/test_stories.py
  on the EU Reporter sample, words from `bot.core.text.normalize_words`: the same dispatch under
  another title (23 bits), with its page chrome left in (23), cut after its lead (22), with an agency
  prefix (6) or a few words edited (12) stays within 28 bits, and so does 5% of its words replaced
  in 9 trials out of 10; different articles on the same event (same names, same places) are 51 bits
  or more apart, unrelated text about 64.
- Short texts get a stricter threshold (`threshold_for`): with few shingles SimHash is noisy, and
  distinct items sharing a template ("Tempête st0490x A B C. Le D et la E face au F.", ~12 shingles)
  came within 28 bits of each other for 2% of items (the 10-minute storm of issue #10 lost alerts
  that way: a later item joined a story its chats had already been alerted for). Up to
  `SHORT_TEXT_WORDS` words the threshold is `SHORT_TEXT_THRESHOLD` (16) and it grows linearly to the
  default at twice that length: an unrelated templated item's nearest neighbour was 24 bits away or
  more among 1,200, the same item with an agency prefix 7–19 (tests/test_stories_short_items.py).
  Missing a merge costs a second alert; a false merge costs the alert.
- 128 bits rather than 64 because the tolerance needed (~20% of the bits) would, on 64 bits, let
  unrelated fingerprints match by chance: P(≤ 14 of 64 bits differ) ≈ 3.5e-6, one false story every
  six articles against a 50,000-article window; P(≤ 28 of 128) ≈ 5.5e-11, one in 360,000.
- A new article joins the story of its nearest near-duplicate (fewest differing bits, then the
  earliest added); with none, the caller starts a new story.
- Fingerprints are unsigned 128-bit integers; `fingerprint_to_bytes`/`fingerprint_from_bytes` give
  the 16-byte big-endian form for a binary column.
- Naive datetimes are taken as UTC. The index never reads the clock: `prune(now)` is given the time.

The index is rebuilt at start from stored (article_id, story_id, fingerprint, published) rows; it
scans numpy arrays, well under 1 ms for 50,000 articles (bench/bench_stories.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np

__all__ = [
    "DEFAULT_THRESHOLD",
    "DEFAULT_WINDOW",
    "FINGERPRINT_BITS",
    "FINGERPRINT_WORDS",
    "SHINGLE_SIZE",
    "SHORT_TEXT_THRESHOLD",
    "SHORT_TEXT_WORDS",
    "StoryIndex",
    "fingerprint",
    "fingerprint_from_bytes",
    "fingerprint_to_bytes",
    "hamming_distance",
    "threshold_for",
]

FINGERPRINT_WORDS = 100
SHINGLE_SIZE = 2
DEFAULT_THRESHOLD = 28
SHORT_TEXT_WORDS = 20
SHORT_TEXT_THRESHOLD = 16
DEFAULT_WINDOW = timedelta(hours=48)

FINGERPRINT_BITS = 128
FINGERPRINT_BYTES = FINGERPRINT_BITS // 8
_MASK = (1 << FINGERPRINT_BITS) - 1


def fingerprint(words: Sequence[str]) -> int:
    """128-bit SimHash of the first `FINGERPRINT_WORDS` words' 3-word shingles (0 for no words)."""
    words = list(words[:FINGERPRINT_WORDS])
    if not words:
        return 0
    if len(words) < SHINGLE_SIZE:
        shingles = [" ".join(words)]
    else:
        shingles = [" ".join(words[i : i + SHINGLE_SIZE]) for i in range(len(words) - SHINGLE_SIZE + 1)]
    # blake2b, not hash(): str hashes are salted per process and fingerprints are stored.
    digests = b"".join(hashlib.blake2b(s.encode(), digest_size=FINGERPRINT_BYTES).digest() for s in shingles)
    bits = np.unpackbits(np.frombuffer(digests, dtype=np.uint8), bitorder="little")
    votes = bits.reshape(len(shingles), FINGERPRINT_BITS).sum(axis=0, dtype=np.int64)
    # Bit i of the fingerprint is set when most shingles set it (ties: unset, deterministic).
    packed = np.packbits(votes * 2 > len(shingles), bitorder="little")
    return int.from_bytes(packed.tobytes(), "little")


def threshold_for(words: int, threshold: int = DEFAULT_THRESHOLD) -> int:
    """The near-duplicate threshold for a text of `words` normalised words (see the module rules)."""
    strict = min(threshold, SHORT_TEXT_THRESHOLD)
    if words <= SHORT_TEXT_WORDS:
        return strict
    if words >= 2 * SHORT_TEXT_WORDS:
        return threshold
    return strict + (threshold - strict) * (words - SHORT_TEXT_WORDS) // SHORT_TEXT_WORDS


def hamming_distance(a: int, b: int) -> int:
    return ((a ^ b) & _MASK).bit_count()


def fingerprint_to_bytes(fp: int) -> bytes:
    """The fingerprint as 16 big-endian bytes, for a binary column."""
    return (fp & _MASK).to_bytes(FINGERPRINT_BYTES, "big")


def fingerprint_from_bytes(data: bytes) -> int:
    if len(data) != FINGERPRINT_BYTES:
        raise ValueError(f"a fingerprint is {FINGERPRINT_BYTES} bytes, got {len(data)}")
    return int.from_bytes(data, "big")


class StoryIndex:
    """Recent articles' fingerprints, searchable for near-duplicates within a time window."""

    def __init__(self, *, threshold: int = DEFAULT_THRESHOLD, window: timedelta = DEFAULT_WINDOW) -> None:
        if not 0 <= threshold < FINGERPRINT_BITS:
            raise ValueError(f"threshold must be between 0 and {FINGERPRINT_BITS - 1} bits, got {threshold}")
        self.threshold = threshold
        self.window = window
        self._window_seconds = window.total_seconds()
        self._size = 0
        capacity = 1024
        # Parallel arrays, one slot per article: a vectorised scan of 50,000 slots costs less than a
        # Python loop over 500. The fingerprint is split in two 64-bit halves (numpy has no uint128).
        self._high = np.zeros(capacity, dtype=np.uint64)
        self._low = np.zeros(capacity, dtype=np.uint64)
        self._published = np.zeros(capacity, dtype=np.float64)
        self._story_ids = np.zeros(capacity, dtype=np.int64)
        self._article_ids = np.zeros(capacity, dtype=np.int64)
        self._alive = np.zeros(capacity, dtype=bool)
        self._slot_of_article: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self._slot_of_article)

    def add(self, article_id: int, story_id: int, fp: int, published: datetime) -> None:
        """Remember an article; adding an article id again replaces its earlier entry."""
        previous = self._slot_of_article.get(article_id)
        if previous is not None:
            self._alive[previous] = False
        if self._size == len(self._alive):
            self._grow()
        slot = self._size
        self._high[slot], self._low[slot] = _halves(fp)
        self._published[slot] = _epoch_seconds(published)
        self._story_ids[slot] = story_id
        self._article_ids[slot] = article_id
        self._alive[slot] = True
        self._slot_of_article[article_id] = slot
        self._size += 1

    def find_story(self, fp: int, published: datetime, *, words: int | None = None) -> int | None:
        """Story id of the nearest near-duplicate published within the window, or None.

        `words`: how many words `fp` was computed from; a short text gets a stricter threshold."""
        size = self._size
        if size == 0:
            return None
        high, low = _halves(fp)
        distances = np.bitwise_count(self._high[:size] ^ high) + np.bitwise_count(self._low[:size] ^ low)
        when = _epoch_seconds(published)
        matches = (
            (distances <= (self.threshold if words is None else threshold_for(words, self.threshold)))
            & self._alive[:size]
            & (np.abs(self._published[:size] - when) <= self._window_seconds)
        )
        candidates = np.flatnonzero(matches)
        if candidates.size == 0:
            return None
        # argmin returns the first minimum: the earliest added among the nearest.
        best = candidates[int(np.argmin(distances[candidates]))]
        return int(self._story_ids[best])

    def prune(self, now: datetime) -> None:
        """Forget articles published more than `window` before `now`."""
        size = self._size
        keep = self._alive[:size] & (self._published[:size] >= _epoch_seconds(now) - self._window_seconds)
        kept = np.flatnonzero(keep)
        count = int(kept.size)
        for array in self._arrays():
            array[:count] = array[kept]
        self._alive[count:size] = False
        self._size = count
        self._slot_of_article = {
            int(article_id): slot for slot, article_id in enumerate(self._article_ids[:count])
        }

    def _arrays(self) -> tuple[np.ndarray, ...]:
        return (self._high, self._low, self._published, self._story_ids, self._article_ids, self._alive)

    def _grow(self) -> None:
        capacity = len(self._alive) * 2
        for name in ("_high", "_low", "_published", "_story_ids", "_article_ids", "_alive"):
            old = getattr(self, name)
            new = np.zeros(capacity, dtype=old.dtype)
            new[: len(old)] = old
            setattr(self, name, new)


def _halves(fp: int) -> tuple[np.uint64, np.uint64]:
    fp &= _MASK
    return np.uint64(fp >> 64), np.uint64(fp & 0xFFFF_FFFF_FFFF_FFFF)


def _epoch_seconds(moment: datetime) -> float:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()

"""Story clustering cost per article with 50,000 recent articles in the window (goal: ≤ 2 ms).

Run: .venv/bin/python bench/bench_stories.py
Prints, per article: fingerprinting (title + lead words), the index lookup, the add, and as a baseline
measured in the same run, a plain Python loop over the same 50,000 fingerprints (the naive scan).
"""

from __future__ import annotations

import random
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.core.stories import DEFAULT_THRESHOLD, StoryIndex, fingerprint, hamming_distance

WINDOW_ARTICLES = 50_000
PROBES = 500
SAMPLE = Path(__file__).resolve().parent.parent / "tests" / "data" / "eureporter-fr-otan-azerbaidjan.txt"


def main() -> None:
    rng = random.Random(5)
    words = re.findall(r"\w+", SAMPLE.read_text(encoding="utf-8").lower())
    start = datetime(2026, 1, 1, tzinfo=UTC)
    index = StoryIndex(window=timedelta(hours=48))
    stored = []
    for article_id in range(WINDOW_ARTICLES):
        fp = rng.getrandbits(128)
        published = start + timedelta(seconds=rng.randrange(48 * 3600))
        index.add(article_id, article_id, fp, published)
        stored.append(fp)
    now = start + timedelta(hours=48)

    texts = [[rng.choice(words) for _ in range(120)] for _ in range(PROBES)]
    began = time.perf_counter()
    probes = [fingerprint(text) for text in texts]
    fingerprint_ms = (time.perf_counter() - began) * 1000 / PROBES

    began = time.perf_counter()
    for fp in probes:
        index.find_story(fp, now)
    find_ms = (time.perf_counter() - began) * 1000 / PROBES

    began = time.perf_counter()
    for offset, fp in enumerate(probes):
        index.add(WINDOW_ARTICLES + offset, WINDOW_ARTICLES + offset, fp, now)
    add_ms = (time.perf_counter() - began) * 1000 / PROBES

    baseline_probes = probes[:20]
    began = time.perf_counter()
    for fp in baseline_probes:
        min((hamming_distance(fp, other), i) for i, other in enumerate(stored))
    baseline_ms = (time.perf_counter() - began) * 1000 / len(baseline_probes)

    began = time.perf_counter()
    index.prune(now + timedelta(hours=1))
    prune_ms = (time.perf_counter() - began) * 1000

    print(f"window={WINDOW_ARTICLES} articles, threshold={DEFAULT_THRESHOLD} bits, {PROBES} probes")
    print(f"fingerprint (120 words)   {fingerprint_ms:8.3f} ms/article")
    print(f"find_story                {find_ms:8.3f} ms/article")
    print(f"add                       {add_ms:8.3f} ms/article")
    print(f"total per article         {fingerprint_ms + find_ms + add_ms:8.3f} ms   (goal <= 2 ms)")
    print(f"baseline: Python scan     {baseline_ms:8.3f} ms/article (naive loop over the same window)")
    print(f"prune (once, 50k entries) {prune_ms:8.3f} ms, {len(index)} left")


if __name__ == "__main__":
    main()

"""Summary cost per article (goal: ≤ 3 ms), on the French sample and on a five-times longer article.

Run: .venv/bin/python bench/bench_summary.py
Figures are the best of several batches. Baseline, measured in the same run: splitting the same text into sentences and nothing else, the
least any extractive summary has to do. Language detection is timed beside it (a separate step).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from bot.core.language import detect_language
from bot.core.sentences import split_sentences
from bot.core.summary import summarize

SAMPLE = Path(__file__).resolve().parent.parent / "tests" / "data" / "eureporter-fr-otan-azerbaidjan.txt"
BATCHES = 7
ROUNDS = 50


def per_call_ms(function: Callable[[], object]) -> float:
    """Best batch mean: other processes on the machine only ever add time."""
    function()  # warm-up: regex compilation, model loading
    best = float("inf")
    for _ in range(BATCHES):
        began = time.perf_counter()
        for _ in range(ROUNDS):
            function()
        best = min(best, (time.perf_counter() - began) * 1000 / ROUNDS)
    return best


def main() -> None:
    sample = SAMPLE.read_text(encoding="utf-8")
    long_article = "\n\n".join([sample] * 5)
    print(f"{'text':<28}{'chars':>7}{'summarize':>12}{'baseline split':>16}{'detect_language':>17}")
    for name, text in (("sample (fr)", sample), ("5x sample", long_article)):
        summary_ms = per_call_ms(lambda text=text: summarize(text, language="fr"))
        split_ms = per_call_ms(lambda text=text: split_sentences(text))
        language_ms = per_call_ms(lambda text=text: detect_language(text))
        print(f"{name:<28}{len(text):>7}{summary_ms:>9.3f} ms{split_ms:>13.3f} ms{language_ms:>14.3f} ms")
    print("goal: summarize <= 3 ms per article")


if __name__ == "__main__":
    main()

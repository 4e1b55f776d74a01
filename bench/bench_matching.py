"""Benchmark: the subscription index against the approach peers use (one regex per subscription).

    .venv/bin/python bench/bench_matching.py [--articles 1000] [--sizes 1000,10000,100000] [--seed 7]

Everything is generated from a seed, so runs are comparable:

- A vocabulary of 30,000 French-looking words (accents included) plus French function words.
  Articles draw ~600 words from it with a Zipf law (like real text), capitalised at random, with
  elided articles (l’, d'), hyphens, punctuation and paragraph breaks.
- Subscriptions pick their terms among the words of rank 1,000–30,000 (names and topics rather than
  function words), popular topics more often (Zipf, exponent 0.6), in realistic shapes: 45% one word, 15% two
  words, 8% a phrase of two adjacent topic words from a generated article, 10% (A OR B) C, 8% A -B, 6% a topic word as a prefix, 4%
  intitle:, 4% with source:/lang:. Many users type the same popular query, as in real bots.

Printed: articles per second for `match` (Match objects with hits) and `match_ids` (fan-out to
subscription ids only), index build time, traced Python memory of the index (tracemalloc, which
also sees pyahocorasick's allocations), and the regex loop measured in the same run on a few
articles (it is too slow for all of them).
"""

from __future__ import annotations

import argparse
import gc
import random
import re
import statistics
import time
import tracemalloc

from bot.core.matching import Document, SubscriptionIndex
from bot.core.query import Query, QueryError, parse_query

SYLLABLES = ["ba", "ko", "ri", "té", "mal", "zan", "dè", "lu", "vo", "shi", "gra", "pé", "nor", "ka", "lé", "mi",
             "ton", "ar", "ès", "qui", "dra", "fo", "gè", "ul", "bré", "san", "tch", "ïd", "ja", "rou"]
FUNCTION_WORDS = ("le la les un une des de du et à au aux en dans sur pour par pas plus que qui il elle est "
                  "sont ce cette son sa ses leur avec mais nous on").split()
SEPARATORS = [" "] * 14 + [", ", ". ", "\n\n", " - ", " (", ") ", " « ", " » ", ": "]


def make_vocabulary(rng: random.Random, size: int) -> list[str]:
    words: dict[str, None] = dict.fromkeys(FUNCTION_WORDS)
    while len(words) < size:
        words.setdefault("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))), None)
    return list(words)


def zipf_weights(n: int, exponent: float) -> list[float]:
    return [1.0 / (rank ** exponent) for rank in range(1, n + 1)]


def make_article(rng: random.Random, vocabulary: list[str], cumulative: list[float], words: int) -> Document:
    chosen = rng.choices(vocabulary, cum_weights=cumulative, k=words)
    parts = []
    for word in chosen:
        roll = rng.random()
        if roll < 0.12:
            word = word.capitalize()
        elif roll < 0.14:
            word = word.upper()
        if rng.random() < 0.06 and word[0].lower() in "aeiouéè":
            word = rng.choice(["l’", "l'", "d'", "d’"]) + word
        elif rng.random() < 0.01:
            word = word + "-" + rng.choice(vocabulary[300:3000])
        parts.append(word)
        parts.append(rng.choice(SEPARATORS))
    text = "".join(parts)
    title = " ".join(rng.choices(vocabulary, cum_weights=cumulative, k=12)).capitalize()
    host = rng.choice(["www.lemonde.fr", "www.france24.com", "www.eureporter.co", "www.liberation.fr"])
    return Document(title=title, text=text, source_name=host.split(".")[1], source_url=f"https://{host}/a",
                    lang=rng.choice(["fr", "fr-FR", "en"]))


def make_queries(rng: random.Random, vocabulary: list[str], articles: list[Document], count: int) -> list[Query]:
    topics = vocabulary[1000:]
    topic_weights = list(zipf_weights(len(topics), 0.6))
    cumulative = []
    total = 0.0
    for w in topic_weights:
        total += w
        cumulative.append(total)

    def topic() -> str:
        word = rng.choices(topics, cum_weights=cumulative)[0]
        return word.capitalize() if rng.random() < 0.7 else word

    topic_set = set(topics)

    def phrase() -> str:
        """Two adjacent topic words seen in an article, like a real name ("Caucase du Sud")."""
        article = rng.choice(articles)
        tokens = re.findall(r"\w+", article.text)
        pairs = [(a, b) for a, b in zip(tokens, tokens[1:], strict=False) if a.lower() in topic_set and b.lower() in topic_set]
        return '"' + " ".join(rng.choice(pairs)) + '"' if pairs else topic()

    shapes = [
        (45, lambda: topic()),
        (15, lambda: f"{topic()} {topic()}"),
        (8, phrase),
        (10, lambda: f"({topic()} OR {topic()}) {topic()}"),
        (8, lambda: f"{topic()} -{topic()}"),
        (6, lambda: topic() + "*"),
        (4, lambda: f"intitle:{topic()}"),
        (4, lambda: f"{topic()} " + rng.choice(["source:lemonde.fr", "lang:fr", 'source:"France 24"'])),
    ]
    shape_weights = [w for w, _ in shapes]
    queries = []
    while len(queries) < count:
        make = rng.choices(shapes, weights=shape_weights)[0][1]
        try:
            queries.append(parse_query(make()))
        except QueryError:
            continue
    return queries


def regex_for(query: Query) -> re.Pattern[str]:
    """What peer bots do: one case-insensitive regex per subscription, terms as \\b-bounded words."""
    def word(display: str) -> str:
        body = re.escape(display.rstrip("*").lower())
        return r"\b" + body + (r"\w*" if display.endswith("*") else r"\b")

    parts = []
    for atom, positive in query.atoms():
        display = getattr(atom, "display", None) or getattr(atom, "code", "")
        look = r"(?=.*?" + word(display) + ")"
        parts.append(look if positive else "(?!.*?" + word(display) + ")")
    # Anchored: otherwise search() retries every lookahead at every position of the text.
    return re.compile(r"\A" + "".join(parts), re.IGNORECASE | re.DOTALL)


def time_per_article(run, articles: list[Document]) -> float:
    start = time.perf_counter()
    for article in articles:
        run(article)
    return len(articles) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=1000)
    parser.add_argument("--words", type=int, default=600)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    vocabulary = make_vocabulary(rng, 30_000)
    cumulative, total = [], 0.0
    for w in zipf_weights(len(vocabulary), 1.05):
        total += w
        cumulative.append(total)
    articles = [make_article(rng, vocabulary, cumulative, args.words) for _ in range(args.articles)]
    print(f"{len(articles)} articles, {statistics.mean(len(a.text.split()) for a in articles):.0f} words each")
    sizes = [int(s) for s in args.sizes.split(",")]
    all_queries = make_queries(rng, vocabulary, articles, max(sizes))

    print(f"{'subs':>7} {'distinct':>8} {'build s':>8} {'mem MB':>7} {'match/s':>8} {'ids/s':>8} "
          f"{'matches/art':>11} {'regex/s':>8} {'speed-up':>9}")
    for size in sizes:
        items = list(enumerate(all_queries[:size], start=1))
        gc.collect()
        start = time.perf_counter()
        index = SubscriptionIndex.build(items)
        index.match_ids(articles[0])  # builds the automaton, part of the build
        build_seconds = time.perf_counter() - start

        gc.collect()
        tracemalloc.start()
        traced = SubscriptionIndex.build(items)
        traced.match_ids(articles[0])
        memory_mb = tracemalloc.get_traced_memory()[0] / 1e6
        tracemalloc.stop()
        del traced

        match_rate = time_per_article(index.match, articles)
        ids_rate = time_per_article(index.match_ids, articles)
        matches = statistics.mean(len(index.match_ids(a)) for a in articles[:100])

        regexes = [(sid, regex_for(q)) for sid, q in items]
        sample = articles[: max(2, min(50, 200_000 // size))]

        def regex_loop(article: Document, regexes=regexes) -> list[int]:
            text = article.title + "\n" + article.text
            return [sid for sid, pattern in regexes if pattern.search(text)]

        regex_rate = time_per_article(regex_loop, sample)
        hint = index.memory_hint()
        print(f"{size:>7} {hint['distinct_queries']:>8} {build_seconds:>8.3f} {memory_mb:>7.1f} {match_rate:>8.0f} "
              f"{ids_rate:>8.0f} {matches:>11.1f} {regex_rate:>8.2f} {match_rate / regex_rate:>8.0f}x")


if __name__ == "__main__":
    main()

"""Benchmark: the subscription index against the approach peers use (one regex per subscription).

    .venv/bin/python bench/bench_matching.py [--articles 1000] [--sizes 1000,10000,100000]
        [--workloads realistic,heavy] [--repeat 3] [--seed 7]

Everything is generated from a seed, so runs are comparable. Articles (~600 words) mix two
vocabularies, like news text:

- 30,000 French-looking common words (accents included, French function words first), drawn with
  a Zipf law of exponent 1.05, capitalised at random, with elided articles (l’, d'), hyphens,
  punctuation and paragraph breaks;
- 100,000 proper nouns (people, places, organisations; 10% of them two-word names such as
  "Karo Vité"): each article is about a dozen of them, drawn with a Zipf law of exponent 1.0 and
  mentioned 1–4 times each, which makes ~8% of its words.

Two subscription workloads:

- `realistic`: what people write as alerts. Terms come from a vocabulary of 50,000 proper nouns and
  words as they appear in the generated text (the 45,000 most frequent names, two-word names as
  phrases, and 5,000 topic words of common-word rank 1,000–6,000). Which terms people follow is
  not how often the press mentions them (their town, their company, a niche topic), so the
  popularity order is a shuffle of that vocabulary, with a Zipf law of exponent 0.8 over it: many
  users type the same popular alert. Shapes: 50% one term, 14% two terms, 8% an OR group,
  6% (A OR B) C, 8% A -B, 5% a prefix, 4% intitle:, 5% with source:/lang:.
- `heavy`: the earlier generator kept for honesty: every term is a common word of rank
  1,000–30,000 (Zipf 0.6), so each article matches ~1% of all subscriptions (1,000 at 100k), far
  more than real alerts do; it measures the cost of a large fan-out.

Printed per workload and size: index build time (compile + automaton, median of `--repeat`),
memory the index retains (tracemalloc: everything allocated while parsing and indexing and still
alive once the parsed queries are dropped, pyahocorasick included; and the growth of the process
RSS), the cost of 100 incremental adds then removes (new phrases included, so the automaton is
rebuilt), the periodic reload from the database (`Matcher.load` of every stored alert: `rld ms`
when nothing changed, `rld100` when 100 queries changed), articles per second for `match` (Match
objects and the terms that fired each, what the poller stores; hits with spans are computed on
first use only) and `match_ids`
(fan-out to subscription ids only), both medians of `--repeat` passes over every article, subscriptions
matched per article, and the regex loop measured in the same run on a few articles (it is too
slow for all of them), with the speed-up of `match_ids` over it.
"""

from __future__ import annotations

import argparse
import gc
import random
import re
import statistics
import time
import tracemalloc
from collections.abc import Callable

from bot.core.matching import Document, SubscriptionIndex
from bot.core.query import Query, QueryError, parse_query
from bot.db.repo import ActiveSubscription
from bot.services.matcher import Matcher

SYLLABLES = ["ba", "ko", "ri", "té", "mal", "zan", "dè", "lu", "vo", "shi", "gra", "pé", "nor", "ka", "lé", "mi",
             "ton", "ar", "ès", "qui", "dra", "fo", "gè", "ul", "bré", "san", "tch", "ïd", "ja", "rou"]
FUNCTION_WORDS = ("le la les un une des de du et à au aux en dans sur pour par pas plus que qui il elle est "
                  "sont ce cette son sa ses leur avec mais nous on").split()
SEPARATORS = [" "] * 14 + [", ", ". ", "\n\n", " - ", " (", ") ", " « ", " » ", ": "]
HOSTS = ["www.lemonde.fr", "www.france24.com", "www.eureporter.co", "www.liberation.fr"]
NAMES_PER_ARTICLE = 12


def make_vocabulary(rng: random.Random, size: int) -> list[str]:
    words: dict[str, None] = dict.fromkeys(FUNCTION_WORDS)
    while len(words) < size:
        words.setdefault("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))), None)
    return list(words)


def make_names(rng: random.Random, words: list[str], size: int) -> list[str]:
    """Proper nouns, most frequent first; names are built apart from the common words."""
    taken = set(words)
    names: dict[str, None] = {}
    while len(names) < size:
        name = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))).capitalize()
        if rng.random() < 0.1:
            name += " " + "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()
        if name.lower() not in taken:
            names.setdefault(name, None)
    return list(names)


def cumulative_zipf(n: int, exponent: float) -> list[float]:
    cumulative, total = [], 0.0
    for rank in range(1, n + 1):
        total += 1.0 / rank ** exponent
        cumulative.append(total)
    return cumulative


class Corpus:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.words = make_vocabulary(rng, 30_000)
        self.word_weights = cumulative_zipf(len(self.words), 1.05)
        self.names = make_names(rng, self.words, 100_000)
        self.name_weights = cumulative_zipf(len(self.names), 1.0)

    def article(self, words: int) -> Document:
        rng = self.rng
        chosen = rng.choices(self.words, cum_weights=self.word_weights, k=words)
        names = rng.choices(self.names, cum_weights=self.name_weights, k=NAMES_PER_ARTICLE)
        for name in names:
            for _ in range(rng.randint(1, 4)):
                chosen[rng.randrange(len(chosen))] = name
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
                word = word + "-" + rng.choice(self.words[300:3000])
            parts.append(word)
            parts.append(rng.choice(SEPARATORS))
        text = "".join(parts)
        title = " ".join(rng.choices(self.words, cum_weights=self.word_weights, k=9) + names[:3]).capitalize()
        host = rng.choice(HOSTS)
        return Document(title=title, text=text, source_name=host.split(".")[1], source_url=f"https://{host}/a",
                        lang=rng.choice(["fr", "fr-FR", "en"]))


def _draw(rng: random.Random, terms: list[str], cumulative: list[float]) -> str:
    term = rng.choices(terms, cum_weights=cumulative)[0]
    if " " in term:
        return f'"{term}"'
    return term if rng.random() < 0.7 else term.lower()


def _parse_many(rng: random.Random, shapes: list[tuple[int, Callable[[], str]]], count: int) -> list[Query]:
    weights = [w for w, _ in shapes]
    queries = []
    while len(queries) < count:
        make = rng.choices(shapes, weights=weights)[0][1]
        try:
            queries.append(parse_query(make()))
        except QueryError:
            continue
    return queries


def _field(rng: random.Random) -> str:
    return rng.choice(["source:lemonde.fr", "lang:fr", 'source:"France 24"'])


def realistic_queries(rng: random.Random, corpus: Corpus, count: int) -> list[Query]:
    """Alerts as people write them: mostly names, Zipf-distributed over 50,000 terms."""
    terms = corpus.names[:45_000] + [word.capitalize() for word in corpus.words[1000:6000]]
    # How many people follow a term is not how often the press mentions it (people follow what
    # they care about: their town, their company, a niche topic): popularity ranks are shuffled.
    rng.shuffle(terms)
    cumulative = cumulative_zipf(len(terms), 0.8)

    def term() -> str:
        return _draw(rng, terms, cumulative)

    def prefix() -> str:
        word = term().strip('"').split(" ")[0]
        return word[: max(4, len(word) - 2)] + "*"

    shapes: list[tuple[int, Callable[[], str]]] = [
        (50, term),
        (14, lambda: f"{term()} {term()}"),
        (8, lambda: f"{term()} OR {term()}" + (f" OR {term()}" if rng.random() < 0.3 else "")),
        (6, lambda: f"({term()} OR {term()}) {term()}"),
        (8, lambda: f"{term()} -{term()}"),
        (5, prefix),
        (4, lambda: f"intitle:{term()}"),
        (5, lambda: f"{term()} {_field(rng)}"),
    ]
    return _parse_many(rng, shapes, count)


def heavy_queries(rng: random.Random, corpus: Corpus, articles: list[Document], count: int) -> list[Query]:
    """Common words of rank 1,000–30,000 only: ~1% of subscriptions match each article."""
    topics = corpus.words[1000:]
    cumulative = cumulative_zipf(len(topics), 0.6)
    topic_set = set(topics)

    def topic() -> str:
        word = rng.choices(topics, cum_weights=cumulative)[0]
        return word.capitalize() if rng.random() < 0.7 else word

    def phrase() -> str:
        """Two adjacent topic words seen in an article, like a real name ("Caucase du Sud")."""
        tokens = re.findall(r"\w+", rng.choice(articles).text)
        pairs = [(a, b) for a, b in zip(tokens, tokens[1:], strict=False)
                 if a.lower() in topic_set and b.lower() in topic_set]
        return '"' + " ".join(rng.choice(pairs)) + '"' if pairs else topic()

    shapes: list[tuple[int, Callable[[], str]]] = [
        (45, topic),
        (15, lambda: f"{topic()} {topic()}"),
        (8, phrase),
        (10, lambda: f"({topic()} OR {topic()}) {topic()}"),
        (8, lambda: f"{topic()} -{topic()}"),
        (6, lambda: topic() + "*"),
        (4, lambda: f"intitle:{topic()}"),
        (4, lambda: f"{topic()} {_field(rng)}"),
    ]
    return _parse_many(rng, shapes, count)


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


def articles_per_second(run: Callable[[Document], object], articles: list[Document]) -> float:
    start = time.perf_counter()
    for article in articles:
        run(article)
    return len(articles) / (time.perf_counter() - start)


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


def build(items: list[tuple[int, Query]], probe: Document) -> SubscriptionIndex:
    index = SubscriptionIndex.build(items)
    index.match_ids(probe)  # builds the automaton, part of the build
    return index


def retained_memory(typed: list[str], probe: Document) -> tuple[float, float]:
    """MB the index keeps alive (tracemalloc) and the RSS growth, parsing included, queries dropped."""
    gc.collect()
    rss_before = rss_bytes()
    tracemalloc.start()
    baseline = tracemalloc.get_traced_memory()[0]
    items = [(sid, parse_query(text)) for sid, text in enumerate(typed, start=1)]
    index = build(items, probe)
    del items
    gc.collect()
    traced = tracemalloc.get_traced_memory()[0] - baseline
    tracemalloc.stop()
    rss = rss_bytes() - rss_before
    del index
    return traced / 1e6, rss / 1e6


def incremental_ms(index: SubscriptionIndex, fresh: list[Query], probe: Document) -> float:
    """100 adds (new phrases among them), a match (rebuilds the automaton), 100 removes, a match."""
    start = time.perf_counter()
    ids = range(10_000_000, 10_000_000 + len(fresh))
    for sid, query in zip(ids, fresh, strict=True):
        index.add(sid, query)
    index.match_ids(probe)
    for sid in ids:
        index.remove(sid)
    index.match_ids(probe)
    return (time.perf_counter() - start) * 1000


def reload_ms(items: list[tuple[int, Query]], fresh: list[Query]) -> tuple[float, float]:
    """The periodic reload from the database (every minute with several processes): Matcher.load
    of the stored alerts when nothing changed, and when 100 of them changed their query."""
    stored = [ActiveSubscription(sid, sid, query.text, None) for sid, query in items]
    matcher = Matcher()
    matcher.load(stored)
    gc.collect()
    start = time.perf_counter()
    matcher.load(stored)
    unchanged = (time.perf_counter() - start) * 1000
    for (sid, _), query in zip(items, fresh, strict=False):
        stored[sid - 1] = ActiveSubscription(sid, sid, query.text, None)
    start = time.perf_counter()
    matcher.load(stored)
    return unchanged, (time.perf_counter() - start) * 1000


def run_size(name: str, queries: list[Query], size: int, articles: list[Document], repeat: int,
             fresh: list[Query]) -> None:
    items = list(enumerate(queries[:size], start=1))
    probe = articles[0]
    build_times = []
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        index = build(items, probe)
        build_times.append(time.perf_counter() - start)
    traced_mb, rss_mb = retained_memory([q.text for _, q in items], probe)
    update_ms = incremental_ms(index, fresh, probe)
    reload_same, reload_changed = reload_ms(items, fresh)

    def match_with_terms(article: Document) -> list[tuple[str, ...]]:
        return [m.terms for m in index.match(article)]  # what the poller stores with each alert

    match_rate = statistics.median(articles_per_second(match_with_terms, articles) for _ in range(repeat))
    ids_rate = statistics.median(articles_per_second(index.match_ids, articles) for _ in range(repeat))
    matched = statistics.mean(len(index.match_ids(a)) for a in articles)

    regexes = [(sid, regex_for(q)) for sid, q in items]
    sample = articles[: max(2, min(50, 200_000 // size))]

    def regex_loop(article: Document, regexes=regexes) -> list[int]:
        text = article.title + "\n" + article.text
        return [sid for sid, pattern in regexes if pattern.search(text)]

    regex_rate = articles_per_second(regex_loop, sample)
    hint = index.memory_hint()
    print(f"{name:>9} {size:>7} {hint['distinct_queries']:>8} {statistics.median(build_times):>8.3f} "
          f"{traced_mb:>7.1f} {rss_mb:>7.1f} {update_ms:>7.1f} {reload_same:>7.0f} {reload_changed:>7.0f} "
          f"{match_rate:>8.0f} {ids_rate:>8.0f} "
          f"{matched:>9.1f} {100 * matched / size:>6.2f}% {regex_rate:>8.2f} {ids_rate / regex_rate:>8.0f}x",
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=1000)
    parser.add_argument("--words", type=int, default=600)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--workloads", default="realistic,heavy")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    corpus = Corpus(rng)
    articles = [corpus.article(args.words) for _ in range(args.articles)]
    print(f"{len(articles)} articles, {statistics.mean(len(a.text.split()) for a in articles):.0f} words each; "
          f"medians of {args.repeat} runs; memory: tracemalloc retained / RSS growth; "
          f"update: 100 adds + 100 removes at that size")
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"{'workload':>9} {'subs':>7} {'distinct':>8} {'build s':>8} {'mem MB':>7} {'rss MB':>7} "
          f"{'upd ms':>7} {'rld ms':>7} {'rld100':>7} {'match/s':>8} {'ids/s':>8} {'matched':>9} {'':>7} {'regex/s':>8} {'ids/regex':>9}")
    for name in args.workloads.split(","):
        if name == "realistic":
            queries = realistic_queries(rng, corpus, max(sizes) + 100)
        else:
            queries = heavy_queries(rng, corpus, articles, max(sizes) + 100)
        fresh = queries[-100:]
        for size in sizes:
            run_size(name, queries[: max(sizes)], size, articles, args.repeat, fresh)


if __name__ == "__main__":
    main()

"""One polling cycle of 5,000 feeds through the real Poller (issue #3's benchmark).

Run: .venv/bin/python bench/bench_polling.py [--feeds 5000 --hosts 25 --subscriptions 1000 --latency 0.03]

What runs: bot.services.poller.Poller with bot.fetcher.http.Fetcher (the production limits: 50 in
flight, 4 per host), a Matcher loaded with `--subscriptions` alerts, a real SQLite file migrated with
bot.db.migrate.upgrade (and PostgreSQL too when VEILLE_TEST_DATABASE_URL is set), against
bench/feedserver_bench.py on 127.0.0.1 (its own process, `--hosts` ports = hosts, `--latency` per
answer). The database is seeded as after earlier polls: 70 % of the feeds answer 304 to the stored
ETag, 20 % send the body already hashed (no validators), 10 % carry 3 new items among 20.

The cycle is driven like `veille run` drives it: `Poller.tick()` every `poll_tick` (1 s), until
nothing is due nor running. Each variant runs in a fresh process (so CPU and peak RSS are its own):
- lxml: Veille's parser; feedparser: the same cycle with feedparser as the parser (baseline;
  `bot.services.poller.parse_feed` is replaced inside that process only);
- "tick 0.05 s": a prototype of refilling free slots as soon as polls finish (the production tick
  claims at most 2 × concurrency sources a tick, so a 1 s tick caps a cycle at 100 feeds/s).
Measured: wall time of the cycle, CPU seconds (getrusage, all threads), peak RSS (ru_maxrss), event
loop lag p99 (a 10 ms ticker's oversleep), most requests in flight per host (server side), and the
average share of one core if that cycle repeats every 5 minutes (CPU / 300 s).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import feedserver_bench as fs  # noqa: E402

GOALS = {"wall_s": 60.0, "cpu_share_5min": 0.25, "peak_rss_mb": 300.0, "lag_p99_ms": 100.0}
FIVE_MINUTES = 300.0


# --- seeding (its own process, so the runs' peak RSS is theirs) ------------------------------------


def _queries(count: int) -> list[str]:
    rng = random.Random(1)
    queries: list[str] = []
    for i in range(count * 100):
        if len(set(queries)) >= count:
            break
        a, b = rng.sample(fs.TOPICS, 2)
        shape = i % 10
        if shape < 4:
            queries.append(a)
        elif shape < 7:
            queries.append(f"{a} {rng.choice(fs.WORDS)}")
        elif shape < 8:
            queries.append(f"({a} OR {b}) -football")
        elif shape < 9:
            queries.append(f"{a.lower()[:5]}* intitle:{rng.choice(fs.WORDS)}")
        else:
            queries.append(f'"{a} {rng.choice(fs.WORDS)}"')
    return list(dict.fromkeys(queries))[:count]


async def seed(url: str, ports: list[int], feeds: int, subscriptions: int) -> None:
    from sqlalchemy import insert

    from bot.core.feeds import parse_feed
    from bot.db.engine import create_engine
    from bot.db.migrate import upgrade
    from bot.db.models import Article, Chat, Source, Subscription

    await asyncio.to_thread(upgrade, url)
    engine = create_engine(url)
    now = datetime.now(UTC)
    sources, articles = [], []
    for n in range(feeds):
        body = fs.feed_body(n)
        kind = fs.kind_of(n)
        sources.append({
            "id": n + 1, "url": f"http://127.0.0.1:{ports[n % len(ports)]}/feed/{n}.xml", "name": f"Flux {n}",
            "language": "fr", "enabled": True, "next_check_at": now - timedelta(seconds=1),
            "last_checked_at": now - timedelta(minutes=5), "last_success_at": now - timedelta(minutes=5),
            "error_streak": 0, "polls": 1, "not_modified_polls": 0, "created_at": now - timedelta(days=1),
            "interval_seconds": 300.0,
            "etag": fs.etag_of(body) if kind == "etag" else None,
            "last_modified": fs.LAST_MODIFIED if kind == "etag" else None,
            "body_hash": hashlib.sha256(body).hexdigest() if kind == "unchanged" else None,
        })
        if kind == "new":
            for item in parse_feed(body, url=sources[-1]["url"]).items:
                if "/new/" in item.key:
                    continue
                articles.append({
                    "source_id": n + 1, "key": item.key, "url": item.url, "title": item.title, "summary": "",
                    "language": "fr", "content_hash": item.content_hash, "published_at": item.published,
                    "first_seen_at": now - timedelta(minutes=5),
                })
    chats = [{"id": 10_000 + c, "type": "private", "language": "fr", "timezone": "Europe/Paris",
              "link_preview": True, "active": True, "is_forum": False, "created_at": now, "updated_at": now}
             for c in range(max(1, subscriptions // 4))]
    subs = [{"chat_id": chats[i % len(chats)]["id"], "query": q, "mode": "instant", "paused": False,
             "created_at": now} for i, q in enumerate(_queries(subscriptions))]
    async with engine.begin() as connection:
        for table, rows in ((Source, sources), (Article, articles), (Chat, chats), (Subscription, subs)):
            for start in range(0, len(rows), 1000):
                await connection.execute(insert(table), rows[start:start + 1000])
    if url.startswith("postgresql"):
        from sqlalchemy import text

        async with engine.begin() as connection:  # explicit ids: move the sequence past them
            await connection.execute(text("SELECT setval('sources_id_seq', (SELECT max(id) FROM sources))"))
    await engine.dispose()


# --- one cycle (its own process) ------------------------------------------------------------------


async def run_cycle(url: str, parser: str, tick_seconds: float) -> dict[str, object]:
    from bot.core.polling import PollPolicy
    from bot.db import repo
    from bot.db.engine import create_engine, create_session_factory
    from bot.fetcher.http import Fetcher, FetcherConfig
    from bot.services import poller as poller_module
    from bot.services.matcher import Matcher
    from bot.services.poller import Poller, PollerConfig

    if parser == "feedparser":
        from bot.core.feeds import ParsedFeed, _parse_with_feedparser, decode_body

        def feedparser_parse(body: bytes, *, url: str, content_type: str | None = None) -> ParsedFeed:
            return _parse_with_feedparser(decode_body(body, content_type), url)

        poller_module.parse_feed = feedparser_parse  # type: ignore[assignment]

    def clock() -> datetime:
        return datetime.now(UTC)

    engine = create_engine(url)
    session_factory = create_session_factory(engine)
    # Production limits (bot.app.Core.build with the default settings).
    fetcher = Fetcher(FetcherConfig(max_connections=50, max_per_host=4, allow_private_networks=True))
    await fetcher.start()
    matcher = Matcher()
    async with session_factory() as session:
        matcher.load(await repo.active_subscriptions(session))
    poller = Poller(
        session_factory=session_factory, fetcher=fetcher, matcher=matcher, clock=clock,
        config=PollerConfig(policy=PollPolicy(default_interval=300, min_interval=60, max_interval=21600),
                            concurrency=50, fetch_full_text=True),
    )
    assert poller.stories is not None
    await poller.stories.load()

    lags: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        while not stop.is_set():
            started = time.perf_counter()
            await asyncio.sleep(0.01)
            lags.append(time.perf_counter() - started - 0.01)

    rss_before_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    watch = asyncio.create_task(ticker())
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_start = usage.ru_utime + usage.ru_stime
    wall_start = time.perf_counter()
    for _ in range(100_000):
        started = await poller.tick()
        if started == 0 and not poller._running:
            break
        await asyncio.sleep(tick_seconds)
    wall = time.perf_counter() - wall_start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime - cpu_start
    stop.set()
    await watch

    from sqlalchemy import func, select

    from bot.db.models import Article, Delivery, Source

    async with session_factory() as session:
        polled = await session.scalar(select(func.count()).select_from(Source).where(Source.polls >= 2))
        errors = await session.scalar(select(func.count()).select_from(Source).where(Source.error_streak > 0))
        articles = await session.scalar(select(func.count()).select_from(Article))
        alerts = await session.scalar(select(func.count()).select_from(Delivery))
    await fetcher.close()
    await engine.dispose()
    lags.sort()
    return {
        "wall_s": wall, "cpu_s": cpu, "cpu_share_5min": cpu / FIVE_MINUTES,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_before_mb": rss_before_mb,
        "lag_p99_ms": lags[int(len(lags) * 0.99)] * 1000 if lags else 0.0,
        "lag_max_ms": lags[-1] * 1000 if lags else 0.0,
        "polled": polled, "errors": errors, "articles": articles, "alerts": alerts,
    }


# --- the parent: feed server, databases, variants, table -----------------------------------------


def _child(*args: str) -> dict[str, object]:
    out = subprocess.run([sys.executable, __file__, *args], check=False, capture_output=True, text=True,
                         cwd=ROOT, timeout=600)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(args[:6])} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _server_call(port: int, path: str, method: str = "GET") -> dict[str, object]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 — loopback only
        body = response.read()
    return json.loads(body) if path == "/_stats" else {}


async def _postgres_database(base_url: str, *, drop: str | None = None) -> str:
    import asyncpg
    from sqlalchemy.engine import make_url

    url = make_url(base_url)
    connection = await asyncpg.connect(host=url.host or "127.0.0.1", port=url.port or 5432,
                                       user=url.username or "postgres", password=url.password,
                                       database=url.database or "postgres")
    try:
        if drop:
            await connection.execute(f'DROP DATABASE IF EXISTS "{drop}" WITH (FORCE)')
            return drop
        name = f"veille_bench_{uuid.uuid4().hex[:10]}"
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return url.set(database=name).render_as_string(hide_password=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=5000)
    parser.add_argument("--hosts", type=int, default=25)
    parser.add_argument("--subscriptions", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.03)
    parser.add_argument("--seed", nargs=2, metavar=("URL", "PORTS"))
    parser.add_argument("--run", nargs=3, metavar=("URL", "PARSER", "TICK"))
    args = parser.parse_args()
    if args.seed:
        asyncio.run(seed(args.seed[0], json.loads(args.seed[1]), args.feeds, args.subscriptions))
        print("{}")
        return
    if args.run:
        print(json.dumps(asyncio.run(run_cycle(args.run[0], args.run[1], float(args.run[2])))))
        return

    server = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "feedserver_bench.py"), "--feeds", str(args.feeds),
         "--hosts", str(args.hosts), "--latency", str(args.latency)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    workdir = Path(tempfile.mkdtemp(prefix="veille-bench-"))
    rows: list[tuple[str, dict[str, object]]] = []
    try:
        assert server.stdout is not None
        ports = json.loads(server.stdout.readline())["ports"]
        sizes = {"": args.feeds, "--subscriptions": args.subscriptions}
        common = ["--feeds", str(sizes[""]), "--subscriptions", str(args.subscriptions)]
        started = time.perf_counter()
        template = workdir / "template.db"
        _child(*common, "--seed", f"sqlite+aiosqlite:///{template}", json.dumps(ports))
        print(f"seeded {args.feeds} feeds, {args.subscriptions} alerts in {time.perf_counter() - started:.1f} s; "
              f"{args.hosts} hosts, {args.latency * 1000:.0f} ms per answer", flush=True)
        variants = [("SQLite", "lxml", "1"), ("SQLite", "feedparser", "1"), ("SQLite", "lxml", "0.05")]
        pg_base = os.environ.get("VEILLE_TEST_DATABASE_URL", "").strip()
        if pg_base:
            variants.append(("PostgreSQL", "lxml", "1"))
        for backend, parser_name, tick in variants:
            pg_url = None
            if backend == "SQLite":
                copy = workdir / f"{parser_name}-{tick}.db"
                shutil.copyfile(template, copy)
                url = f"sqlite+aiosqlite:///{copy}"
            else:
                pg_url = url = asyncio.run(_postgres_database(pg_base))
                _child(*common, "--seed", url, json.dumps(ports))
            _server_call(ports[0], "/_reset", "POST")
            try:
                result = _child(*common, "--run", url, parser_name, tick)
            finally:
                if pg_url:
                    from sqlalchemy.engine import make_url

                    asyncio.run(_postgres_database(pg_base, drop=make_url(pg_url).database))
            stats = _server_call(ports[0], "/_stats")
            per_host = stats["max_in_flight_per_host"]
            assert isinstance(per_host, dict)
            result["max_per_host"] = max(per_host.values())
            result["statuses"] = stats["statuses"]
            label = f"{backend}, {parser_name}, tick {tick} s"
            rows.append((label, result))
            print(f"  {label}: {json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in result.items()})}",
                  flush=True)
    finally:
        if server.stdin:
            server.stdin.close()
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(workdir, ignore_errors=True)
    _print_table(rows)


def _print_table(rows: list[tuple[str, dict[str, object]]]) -> None:
    header = (f"{'variant':32} {'wall s':>7} {'CPU s':>7} {'CPU/5min':>8} {'RSS MB':>7} {'lag p99':>8} "
              f"{'per host':>8} {'polled':>6} {'errors':>6} {'alerts':>6}")
    print()
    print(header)
    print("-" * len(header))
    for label, r in rows:
        print(f"{label:32} {r['wall_s']:7.1f} {r['cpu_s']:7.1f} {r['cpu_share_5min']:8.1%} {r['peak_rss_mb']:7.0f} "
              f"{r['lag_p99_ms']:6.0f}ms {r['max_per_host']:8} {r['polled']:6} {r['errors']:6} {r['alerts']:6}")
    print(f"{'goal':32} {GOALS['wall_s']:7.0f} {'':>7} {GOALS['cpu_share_5min']:8.0%} {GOALS['peak_rss_mb']:7.0f} "
          f"{GOALS['lag_p99_ms']:6.0f}ms {'≤ 4':>8}")


if __name__ == "__main__":
    main()

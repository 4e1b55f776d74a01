"""A lean feed server for bench/bench_polling.py: N feeds spread over H ports of 127.0.0.1 (one
"host" per port, which is how aiohttp's per-host cap counts them), run in its own process so its CPU
never counts against the poller's.

Feed ``n`` (path ``/feed/<n>.xml`` on port ``ports[n % H]``) behaves by ``n % 10``:
- 0–6 (70 %): strong ETag and Last-Modified; a matching ``If-None-Match`` gets 304;
- 7–8 (20 %): the same body every time, with no validators at all;
- 9   (10 %): no validators; ``NEW_ITEMS`` of its ``ITEMS`` items are new since the seeded state.
Every answer waits ``--latency`` seconds (a network round trip). ``GET /_stats`` on any port gives,
per port, the most requests in flight at once, and the count of each status; ``POST /_reset``
clears them.

Run alone: python bench/feedserver_bench.py --feeds 5000 --hosts 25 (prints one JSON line when ready).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta

from aiohttp import web

ITEMS = 20
NEW_ITEMS = 3
LAST_MODIFIED = "Wed, 25 Nov 2026 07:00:00 GMT"
WORDS = (
    "Arménie Azerbaïdjan OTAN Bruxelles Géorgie Caucase énergie gazoduc sommet Bakou Erevan Tbilissi "
    "élections frontière accord paix ministre président Commission européenne sanctions Russie Turquie "
    "Iran Kazakhstan pétrole diplomatie sécurité réfugiés Karabakh corridor investissement climat "
    "agriculture inflation banque centrale parlement réforme justice université santé hôpital grève "
    "transport ferroviaire aéroport port tourisme culture football rugby festival cinéma musée"
).split()


def _topics(count: int) -> tuple[str, ...]:
    """Made-up names (places, people, firms) that alerts follow: each item names two of them."""
    rng = random.Random(0)
    syllables = ("ba", "ko", "ra", "zé", "li", "mon", "tar", "vé", "ni", "sou", "gan", "dur", "el", "chi", "pa")
    names: set[str] = set()
    while len(names) < count:
        names.add("".join(rng.choice(syllables) for _ in range(3)).capitalize())
    return tuple(sorted(names))


TOPICS = _topics(1000)


def kind_of(n: int) -> str:
    digit = n % 10
    return "etag" if digit < 7 else "unchanged" if digit < 9 else "new"


def item_guid(n: int, i: int) -> str:
    return f"https://bench-{n}.example/{'new' if kind_of(n) == 'new' and i < NEW_ITEMS else 'old'}/{n}-{i}"


def feed_body(n: int) -> bytes:
    """Feed n's document (deterministic: the bench seeds its state from the same bytes)."""
    rng = random.Random(n)
    start = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)
    items = []
    for i in range(ITEMS):
        first, second = rng.sample(TOPICS, 2)
        title_words = " ".join([first, *rng.sample(WORDS, 5)])
        paragraphs = "".join(
            f"<p>{' '.join(rng.choice(WORDS) for _ in range(40))}, selon l’agence — dépêche {n}-{i}-{p}.</p>"
            for p in range(5)
        ).replace("<p>", f"<p>{second} : ", 1)
        summary = " ".join(rng.choice(WORDS) for _ in range(45))
        items.append(
            f"<item><title>{title_words} ({n}-{i})</title>"
            f"<link>{item_guid(n, i)}</link><guid isPermaLink=\"true\">{item_guid(n, i)}</guid>"
            f"<pubDate>{(start - timedelta(minutes=13 * i)).strftime('%a, %d %b %Y %H:%M:%S +0000')}</pubDate>"
            f"<dc:creator>Rédaction</dc:creator><category>Europe</category>"
            f"<description><![CDATA[<p>{summary}.</p>]]></description>"
            f"<content:encoded><![CDATA[{paragraphs}]]></content:encoded></item>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f"<channel><title>Flux {n}</title><link>https://bench-{n}.example/</link>"
        f"<description>Banc d'essai</description><language>fr</language>{''.join(items)}</channel></rss>"
    ).encode()


def etag_of(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


class BenchFeedServer:
    def __init__(self, feeds: int, hosts: int, latency: float) -> None:
        self.feeds, self.hosts, self.latency = feeds, hosts, latency
        self._bodies: dict[int, bytes] = {}
        self.in_flight: Counter[int] = Counter()
        self.max_in_flight: Counter[int] = Counter()
        self.statuses: Counter[int] = Counter()
        self.ports: list[int] = []
        self._runner: web.AppRunner | None = None

    def body(self, n: int) -> bytes:
        if n not in self._bodies:
            self._bodies[n] = feed_body(n)
        return self._bodies[n]

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/feed/{n:\\d+}.xml", self._feed)
        app.router.add_get("/_stats", self._stats)
        app.router.add_post("/_reset", self._reset)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        for _ in range(self.hosts):
            site = web.TCPSite(self._runner, "127.0.0.1", 0, backlog=1024)
            await site.start()
        self.ports = [address[1] for address in self._runner.addresses]

    async def _feed(self, request: web.Request) -> web.Response:
        port = request.transport.get_extra_info("sockname")[1] if request.transport else 0
        self.in_flight[port] += 1
        self.max_in_flight[port] = max(self.max_in_flight[port], self.in_flight[port])
        try:
            await asyncio.sleep(self.latency)
            n = int(request.match_info["n"])
            if n >= self.feeds:
                self.statuses[404] += 1
                return web.Response(status=404)
            body = self.body(n)
            headers = {"Content-Type": "application/rss+xml; charset=utf-8"}
            if kind_of(n) == "etag":
                tag = etag_of(body)
                headers.update({"ETag": tag, "Last-Modified": LAST_MODIFIED})
                if request.headers.get("If-None-Match") == tag:
                    self.statuses[304] += 1
                    return web.Response(status=304, headers=headers)
            self.statuses[200] += 1
            return web.Response(body=body, headers=headers)
        finally:
            self.in_flight[port] -= 1

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response({
            "max_in_flight_per_host": {str(p): self.max_in_flight[p] for p in self.ports},
            "statuses": {str(k): v for k, v in self.statuses.items()},
        })

    async def _reset(self, request: web.Request) -> web.Response:
        self.max_in_flight.clear()
        self.statuses.clear()
        return web.Response(text="ok")


async def serve(feeds: int, hosts: int, latency: float) -> None:
    server = BenchFeedServer(feeds, hosts, latency)
    await server.start()
    print(json.dumps({"ports": server.ports}), flush=True)
    # Runs until the parent closes our stdin (or kills us).
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--feeds", type=int, default=5000)
    parser.add_argument("--hosts", type=int, default=25)
    parser.add_argument("--latency", type=float, default=0.03)
    args = parser.parse_args()
    asyncio.run(serve(args.feeds, args.hosts, args.latency))


if __name__ == "__main__":
    main()

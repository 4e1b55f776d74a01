"""The feed server answers a real aiohttp client: conditional GET, redirects, and hostile bodies."""

from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import feedparser
import pytest

from tests.fakes.feed_server import FeedServer, build_rss

DATA = Path(__file__).parent / "data"


@pytest.fixture
async def srv():
    server = FeedServer()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def http():
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        yield session


async def test_conditional_get_round_trip_with_etag(srv, http):
    srv.set("/lemonde.xml", b"<rss>v1</rss>", etag="auto", last_modified=datetime(2024, 5, 1, 12, tzinfo=UTC))
    async with http.get(srv.url("/lemonde.xml")) as resp:
        assert resp.status == 200 and await resp.read() == b"<rss>v1</rss>"
        etag, modified = resp.headers["ETag"], resp.headers["Last-Modified"]
        assert resp.headers["Content-Type"] == "application/rss+xml; charset=utf-8"
    assert modified == "Wed, 01 May 2024 12:00:00 GMT"
    async with http.get(srv.url("/lemonde.xml"), headers={"If-None-Match": etag}) as resp:
        assert resp.status == 304 and await resp.read() == b"" and resp.headers["ETag"] == etag
    srv.set("/lemonde.xml", b"<rss>v2</rss>", etag="auto")
    async with http.get(srv.url("/lemonde.xml"), headers={"If-None-Match": etag}) as resp:
        assert resp.status == 200 and resp.headers["ETag"] != etag
    assert srv.hits("/lemonde.xml") == 3
    assert [r.headers.get("if-none-match") for r in srv.requests_for("/lemonde.xml")] == [None, etag, etag]


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"If-Modified-Since": "Wed, 01 May 2024 12:00:00 GMT"}, 304),
        ({"If-Modified-Since": "Thu, 02 May 2024 00:00:00 GMT"}, 304),
        ({"If-Modified-Since": "Wed, 01 May 2024 11:59:59 GMT"}, 200),
        ({"If-Modified-Since": "pas une date"}, 200),
        ({"If-None-Match": '"abc"'}, 304),
        ({"If-None-Match": 'W/"abc"'}, 304),
        ({"If-None-Match": '"zzz", "abc"'}, 304),
        ({"If-None-Match": "*"}, 304),
        # If-None-Match decides alone when present, even if the date would match
        ({"If-None-Match": '"old"', "If-Modified-Since": "Thu, 02 May 2024 00:00:00 GMT"}, 200),
        ({}, 200),
    ],
)
async def test_conditional_rules(srv, http, headers, status):
    srv.set("/f.xml", "<rss/>", etag="abc", last_modified="Wed, 01 May 2024 12:00:00 GMT")
    async with http.get(srv.url("/f.xml"), headers=headers) as resp:
        assert resp.status == status


async def test_rss_builder_escapes_and_feedparser_reads_it_back(srv, http):
    items = [
        {"title": "L'OTAN & d’Azerbaïdjan <analyse>", "link": "https://ex.org/a?x=1&y=2", "guid": "a-1",
         "description": "<p>Œuvre « citée »</p>", "pub_date": datetime(2021, 12, 14, 15, 12, tzinfo=UTC),
         "author": "Rédaction", "categories": ["Défense"], "content": "<p>Texte complet</p>"},
        {"title": "Deux", "link": "https://ex.org/b", "guid": "https://ex.org/b", "pub_date": "Tue, 14 Dec 2021 10:00:00 +0000"},
    ]
    document = srv.set_rss("/rss", items, title="Le Monde & co", etag="auto")
    async with http.get(srv.url("/rss")) as resp:
        body = await resp.read()
    assert body == document
    parsed = feedparser.parse(body)
    assert not parsed.bozo
    assert parsed.feed.title == "Le Monde & co" and parsed.feed.language == "fr"
    first, second = parsed.entries
    assert first.title == "L'OTAN & d’Azerbaïdjan <analyse>"
    assert first.link == "https://ex.org/a?x=1&y=2" and first.id == "a-1" and not first.guidislink
    assert first.published_parsed[:5] == (2021, 12, 14, 15, 12)
    assert first.author == "Rédaction" and first.tags[0].term == "Défense"
    assert first.content[0].value == "<p>Texte complet</p>"
    assert second.id == "https://ex.org/b"


async def test_the_real_sample_feed_is_served_byte_for_byte(srv, http):
    sample = (DATA / "eureporter-fr-feed.xml").read_bytes()
    srv.set("/fr/feed/", sample)
    async with http.get(srv.url("/fr/feed/")) as resp:
        assert await resp.read() == sample


async def test_redirects_are_followed_and_every_hop_is_counted(srv, http):
    srv.set("/new.xml", "<rss/>")
    srv.redirect("/old.xml", "/moved.xml", status=301)
    srv.redirect("/moved.xml", srv.url("/new.xml"), status=302)
    async with http.get(srv.url("/old.xml")) as resp:
        assert resp.status == 200 and str(resp.url) == srv.url("/new.xml")
        assert [r.status for r in resp.history] == [301, 302]
    assert (srv.hits("/old.xml"), srv.hits("/moved.xml"), srv.hits("/new.xml")) == (1, 1, 1)


async def test_unknown_paths_and_configured_errors(srv, http):
    async with http.get(srv.url("/nope")) as resp:
        assert resp.status == 404
    srv.set("/busy", "slow down", status=429, headers={"Retry-After": "120"}, etag="x")
    async with http.get(srv.url("/busy"), headers={"If-None-Match": '"x"'}) as resp:
        assert resp.status == 429 and resp.headers["Retry-After"] == "120"
    srv.set("/gone", "")
    srv.remove("/gone")
    async with http.get(srv.url("/gone")) as resp:
        assert resp.status == 404
    assert srv.hits("/nope") == 1 and srv.hits("/gone") == 1


async def test_a_delayed_answer_trips_a_client_timeout(srv, http):
    srv.set("/late", "<rss/>", delay=2.0)
    with pytest.raises(TimeoutError):
        await http.get(srv.url("/late"), timeout=aiohttp.ClientTimeout(total=0.2))


async def test_a_drip_feed_is_too_slow_for_a_read_timeout(srv, http):
    srv.drip("/drip", b"<rss>" + b" " * 100 + b"</rss>", interval=0.5)
    async with http.get(srv.url("/drip"), timeout=aiohttp.ClientTimeout(total=1.0)) as resp:
        assert resp.status == 200 and resp.content_length == 111
        with pytest.raises(TimeoutError):
            await resp.read()


async def test_a_fast_drip_arrives_whole(srv, http):
    srv.drip("/trickle", "<rss>é</rss>", interval=0.01, chunk_size=3)
    async with http.get(srv.url("/trickle")) as resp:
        assert (await resp.read()).decode() == "<rss>é</rss>"


async def test_an_endless_body_keeps_coming_until_the_client_stops(srv, http):
    srv.endless("/endless")
    received = 0
    async with http.get(srv.url("/endless")) as resp:
        assert resp.content_length is None
        async for chunk in resp.content.iter_chunked(65536):
            received += len(chunk)
            if received > 4 * 1024 * 1024:
                break
    assert received > 4 * 1024 * 1024


async def test_an_endless_body_still_ends_at_its_server_side_limit(srv, http):
    srv.endless("/bounded", chunk=b"x" * 1000, limit=10_000)
    async with http.get(srv.url("/bounded")) as resp:
        assert len(await resp.read()) == 10_000


async def test_a_gzip_bomb_is_small_on_the_wire_and_huge_once_inflated(srv, http):
    compressed = srv.gzip_bomb("/bomb.xml", expanded_size=20 * 1024 * 1024)
    assert compressed < 100_000
    inflated = 0
    async with http.get(srv.url("/bomb.xml")) as resp:
        assert resp.headers["Content-Encoding"] == "gzip"
        async for chunk in resp.content.iter_chunked(1 << 20):
            inflated += len(chunk)
    assert inflated == 20 * 1024 * 1024


def test_build_rss_is_valid_xml_with_a_declaration():
    document = build_rss([{"title": "a & b"}])
    assert document.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    assert b"a &amp; b" in document

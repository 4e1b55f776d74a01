"""Polling, against a real feed server on 127.0.0.1 and the real database: what is new, what alerts,
what is recorded when a source fails."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.core.polling import PollPolicy
from bot.core.query import QueryLimits
from bot.db import repo
from bot.db.models import Article, Delivery, Source
from bot.fetcher.http import Fetcher, FetcherConfig
from bot.services.matcher import Matcher
from bot.services.poller import Poller, PollerConfig
from bot.services.subscriptions import ChatInfo, SubscriptionService, UserInfo
from tests.fakes.feed_server import FeedServer

CHAT = 777


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def rss(*items: tuple[str, str, str]) -> str:
    body = "".join(
        f"<item><title>{title}</title><link>https://news.example/{guid}</link><guid>{guid}</guid>"
        f"<description>{text}</description></item>"
        for guid, title, text in items
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Le Fil</title>'
        f"<link>https://news.example/</link><description>x</description><language>fr</language>{body}"
        "</channel></rss>"
    )


@pytest.fixture
async def feeds():
    async with FeedServer() as server:
        yield server


@pytest.fixture
async def env(session_factory, feeds):  # noqa: ANN001
    clock = Clock()
    fetcher = Fetcher(FetcherConfig(user_agent="Veille-test", allow_private_networks=True, total_timeout=5))
    await fetcher.start()
    matcher = Matcher()
    poller = Poller(
        session_factory=session_factory,
        fetcher=fetcher,
        matcher=matcher,
        config=PollerConfig(policy=PollPolicy(default_interval=60, min_interval=60, max_interval=3600),
                            error_limit=3, fetch_full_text=False, admin_ids=frozenset({CHAT})),
        clock=clock,
    )
    subscriptions = SubscriptionService(
        session_factory, matcher, limits=QueryLimits(), max_alerts_per_chat=10, default_language="fr",
        default_timezone="Europe/Paris", clock=clock,
    )
    await subscriptions.register(ChatInfo(CHAT, "private"), UserInfo(CHAT), "fr")
    yield poller, subscriptions, clock, feeds, session_factory
    await fetcher.close()


async def add_source(session_factory, url: str, now: datetime) -> int:  # noqa: ANN001
    async with session_factory() as session, session.begin():
        source, _ = await repo.upsert_source(session, url=url, name="Le Fil", language="fr", category=None, now=now)
        return source.id


async def deliveries(session_factory) -> list[Delivery]:  # noqa: ANN001
    async with session_factory() as session:
        return list((await session.execute(select(Delivery).order_by(Delivery.id))).scalars())


async def test_first_poll_backfills_silently_then_new_matching_items_alert_once(env) -> None:  # noqa: ANN001
    poller, subscriptions, clock, feeds, sessions = env
    await subscriptions.subscribe(CHAT, "Azerbaïdjan", user_id=CHAT)
    feeds.set("/fil.xml", rss(("a1", "L'Azerbaïdjan et l'OTAN", "Rencontre à Bruxelles.")),
              content_type="application/rss+xml")
    source_id = await add_source(sessions, feeds.url("/fil.xml"), clock())

    reports = await poller.poll_all_due()
    assert [(r.source_id, r.outcome, r.new_articles, r.alerts) for r in reports] == [(source_id, "ok", 1, 0)]

    feeds.set("/fil.xml", rss(("a2", "Visite à Bakou", "Le président d’AZERBAÏDJAN a reçu..."),
                              ("a3", "La botanique à Paris", "Des jardins."),
                              ("a1", "L'Azerbaïdjan et l'OTAN", "Rencontre à Bruxelles.")),
              content_type="application/rss+xml")
    clock.advance(3600)
    reports = await poller.poll_all_due()
    assert [(r.new_articles, r.alerts) for r in reports] == [(2, 1)]
    rows = await deliveries(sessions)
    assert [(r.chat_id, r.kind, r.status) for r in rows] == [(CHAT, "alert", "pending")]
    assert "Azerbaïdjan" in (rows[0].matched_terms or "") or "azerbaidjan" in (rows[0].matched_terms or "")

    clock.advance(3600)
    reports = await poller.poll_all_due()
    assert [(r.new_articles, r.alerts) for r in reports] == [(0, 0)]
    assert len(await deliveries(sessions)) == 1


async def test_changed_item_is_an_update_not_a_new_article(env) -> None:  # noqa: ANN001
    poller, subscriptions, clock, feeds, sessions = env
    await subscriptions.subscribe(CHAT, "OTAN", user_id=CHAT)
    feeds.set("/f.xml", rss(("x", "Sommet", "Premier texte.")), content_type="application/rss+xml")
    await add_source(sessions, feeds.url("/f.xml"), clock())
    await poller.poll_all_due()
    feeds.set("/f.xml", rss(("x", "Sommet de l'OTAN", "Texte corrigé.")), content_type="application/rss+xml")
    clock.advance(3600)
    [report] = await poller.poll_all_due()
    assert (report.new_articles, report.updated_articles, report.alerts) == (0, 1, 0)
    async with sessions() as session:
        [article] = (await session.execute(select(Article))).scalars().all()
    assert article.title == "Sommet de l'OTAN"
    assert article.updated_at is not None


async def test_not_modified_answer_costs_no_parsing_and_is_counted(env) -> None:  # noqa: ANN001
    poller, _, clock, feeds, sessions = env
    feeds.set("/etag.xml", rss(("e", "Titre", "Texte.")), content_type="application/rss+xml", etag="auto")
    await add_source(sessions, feeds.url("/etag.xml"), clock())
    assert [r.outcome for r in await poller.poll_all_due()] == ["ok"]
    clock.advance(3600)
    assert [r.outcome for r in await poller.poll_all_due()] == ["not_modified"]
    assert feeds.requests_for("/etag.xml")[-1].headers.get("If-None-Match")
    async with sessions() as session:
        source = (await session.execute(select(Source))).scalar_one()
    assert (source.polls, source.not_modified_polls, source.error_streak) == (2, 1, 0)
    assert source.next_check_at > clock()


async def test_failing_source_records_errors_backs_off_and_is_disabled_with_one_notice(env) -> None:  # noqa: ANN001
    poller, _, clock, feeds, sessions = env
    feeds.set("/broken.xml", "<rss><channel><item><title>oops", content_type="application/rss+xml", status=500)
    source_id = await add_source(sessions, feeds.url("/broken.xml"), clock())
    intervals = []
    for _ in range(3):
        [report] = await poller.poll_all_due()
        assert report.outcome == "error"
        async with sessions() as session:
            source = await repo.get_source(session, source_id)
        intervals.append((source.next_check_at - clock()).total_seconds())
        clock.advance(7200)
    assert source.error_streak == 3 and source.last_error_status == 500 and source.last_error_kind == "http"
    assert source.enabled is False and "3 failures in a row" in source.disabled_reason
    assert intervals[0] <= intervals[1] <= 3600 * 1.25
    notices = [r for r in await deliveries(sessions) if r.kind == "notice"]
    assert len(notices) == 1 and notices[0].chat_id == CHAT
    assert await poller.poll_all_due() == []  # disabled: never polled again


async def test_malformed_feed_is_a_recorded_error_that_does_not_stop_the_others(env) -> None:  # noqa: ANN001
    poller, _, clock, feeds, sessions = env
    feeds.set("/bad.xml", b"\x00\x01 not xml at all <<<", content_type="application/rss+xml")
    feeds.set("/good.xml", rss(("g", "Bonne nouvelle", "Texte.")), content_type="application/rss+xml")
    bad = await add_source(sessions, feeds.url("/bad.xml"), clock())
    good = await add_source(sessions, feeds.url("/good.xml"), clock())
    reports = {r.source_id: r for r in await poller.poll_all_due()}
    assert reports[bad].outcome == "error" and reports[bad].error
    assert reports[good].outcome == "ok" and reports[good].new_articles == 1


def dated_rss(count: int, gap_minutes: int, end: datetime) -> str:
    from email.utils import format_datetime

    items = "".join(
        f"<item><title>N{n}</title><link>https://news.example/d{n}</link><guid>d{n}</guid>"
        f"<pubDate>{format_datetime(end - timedelta(minutes=gap_minutes * n))}</pubDate></item>"
        for n in range(count)
    )
    return ('<?xml version="1.0"?><rss version="2.0"><channel><title>Rythme</title>'
            f"<link>https://news.example/</link><description>x</description>{items}</channel></rss>")


async def test_unchanged_feed_keeps_the_interval_learnt_from_its_rhythm(env) -> None:  # noqa: ANN001
    poller, _, clock, feeds, sessions = env
    feeds.set("/rythme.xml", dated_rss(10, gap_minutes=20, end=clock()), etag="auto")
    source_id = await add_source(sessions, feeds.url("/rythme.xml"), clock())
    await poller.poll_all_due()
    async with sessions() as session:
        learnt = (await repo.get_source(session, source_id)).interval_seconds
    assert 500 <= learnt <= 700  # half the 20-minute rhythm, with jitter
    clock.advance(3600)
    assert [r.outcome for r in await poller.poll_all_due()] == ["not_modified"]
    async with sessions() as session:
        after_304 = (await repo.get_source(session, source_id)).interval_seconds
    assert 500 <= after_304 <= 700, "a 304 must not reset the interval to the default"


async def test_a_saturated_tick_claims_more_as_soon_as_slots_free(session_factory, feeds) -> None:  # noqa: ANN001
    import asyncio

    clock = Clock()
    for n in range(12):
        feeds.set(f"/s{n}.xml", rss((f"g{n}", "Titre", "Texte.")))
    fetcher = Fetcher(FetcherConfig(user_agent="t", allow_private_networks=True, total_timeout=5))
    await fetcher.start()
    poller = Poller(session_factory=session_factory, fetcher=fetcher, matcher=Matcher(),
                    config=PollerConfig(policy=PollPolicy(default_interval=60, min_interval=60), concurrency=2,
                                        fetch_full_text=False), clock=clock)
    try:
        for n in range(12):
            await add_source(session_factory, feeds.url(f"/s{n}.xml"), clock())
        assert await poller.tick() == 4  # 2 × concurrency
        for _ in range(400):  # bounded wait, no second explicit tick
            if all(feeds.hits(f"/s{n}.xml") for n in range(12)) and not poller._running:
                break
            await asyncio.sleep(0.05)
        assert all(feeds.hits(f"/s{n}.xml") == 1 for n in range(12))
    finally:
        await poller.drain(timeout=1)
        await fetcher.close()

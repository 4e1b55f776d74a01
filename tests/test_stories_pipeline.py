"""Stories in the pipeline (issue #5), over a real feed server, the real database and aiogram's client
against the fake Bot API: the same dispatch from three outlets is one alert, edited to list the others;
an updated article edits its alert; nothing is edited after 48 h; muted or filtered alerts stay silent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.core.polling import PollPolicy
from bot.core.query import QueryLimits
from bot.core.ratelimit import ChatPacer, PacingSettings, RateLimiter
from bot.core.stories import fingerprint_from_bytes
from bot.db import repo
from bot.db.models import Article, Delivery, Story, Subscription
from bot.fetcher.http import Fetcher, FetcherConfig
from bot.services.alert_views import AlertActions
from bot.services.delivery import Deliverer
from bot.services.matcher import Matcher
from bot.services.poller import Poller, PollerConfig
from bot.services.subscriptions import ChatInfo, SubscriptionService, UserInfo
from bot.telegram.client import make_bot
from bot.telegram.keyboards import AlertKeyboards
from bot.telegram.sender import TelegramSender
from tests.fakes.feed_server import FeedServer, build_rss
from tests.fakes.telegram_api import FakeTelegram

CHAT = 31337
START = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)

DISPATCH = (
    "Le secrétaire général de l'OTAN a salué mardi à Bruxelles le soutien de l'Azerbaïdjan à la sécurité et à "
    "la stabilité dans le Caucase du Sud, lors d'une rencontre avec le président Ilham Aliyev avant le sommet du "
    "Partenariat oriental. Les deux dirigeants ont évoqué la coopération en matière de déminage, la formation des "
    "officiers, la situation le long de la frontière avec l'Arménie et les corridors de transport entre la mer "
    "Caspienne et la mer Noire, a indiqué l'Alliance dans un communiqué publié après l'entretien."
)
VERSIONS = {  # the same dispatch as three outlets run it (20 and 19 bits from the first)
    "fil": ("L'OTAN salue le soutien de l'Azerbaïdjan", DISPATCH),
    "monde": ("Caucase du Sud : l'OTAN remercie l'Azerbaïdjan", "(AFP) - " + DISPATCH),
    "f24": ("Azerbaïdjan et OTAN : rencontre à Bruxelles",
            DISPATCH.replace("mardi", "ce mardi").replace("communiqué", "bref communiqué")),
}
NAMES = {"fil": "Le Fil", "monde": "Le Monde", "f24": "France 24"}
UNRELATED = ("La botanique à Paris", "Des jardins du Luxembourg aux serres d'Auteuil, la capitale compte des "
             "centaines d'espèces rares que les visiteurs découvrent chaque printemps.")


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Env:
    poller: Poller
    deliverer: Deliverer
    subscriptions: SubscriptionService
    actions: AlertActions
    clock: Clock
    feeds: FeedServer
    fake: FakeTelegram
    sessions: object
    sources: dict[str, int]

    def publish(self, outlet: str, *items: tuple[str, str, str, datetime | None]) -> None:
        self.feeds.set(f"/{outlet}.xml", build_rss(
            [{"guid": guid, "link": f"https://{outlet}.example/{guid}", "title": title, "description": text,
              **({"pub_date": published} if published else {})} for guid, title, text, published in items],
            title=NAMES[outlet],
        ), content_type="application/rss+xml")

    async def poll(self) -> dict[int, tuple[int, int, int]]:
        """Polls every source now due; (new, alerts, edits) per source id."""
        self.clock.advance(hours=1)
        return {r.source_id: (r.new_articles, r.alerts, r.edits) for r in await self.poller.poll_all_due()}

    async def deliver(self) -> None:
        await self.deliverer.drain_all()


@pytest.fixture
async def env(session_factory) -> AsyncIterator[Env]:  # noqa: ANN001
    clock = Clock()
    async with FeedServer() as feeds, FakeTelegram() as fake:
        fetcher = Fetcher(FetcherConfig(user_agent="Veille-test", allow_private_networks=True, total_timeout=5))
        await fetcher.start()
        bot = make_bot(fake.token, fake.base_url)
        matcher = Matcher()
        poller = Poller(
            session_factory=session_factory, fetcher=fetcher, matcher=matcher,
            config=PollerConfig(policy=PollPolicy(default_interval=60, min_interval=60, max_interval=600),
                                fetch_full_text=False),
            clock=clock,
        )
        actions = AlertActions(session_factory, matcher, clock=clock)
        limiter = RateLimiter(global_per_second=1000, pacer=ChatPacer(PacingSettings(private_per_second=1000,
                                                                                   private_burst=1000)))
        deliverer = Deliverer(session_factory=session_factory, limiter=limiter, clock=clock,
                              sender=TelegramSender(bot, keyboards=AlertKeyboards(actions)))
        subscriptions = SubscriptionService(
            session_factory, matcher, limits=QueryLimits(), max_alerts_per_chat=10, default_language="fr",
            default_timezone="Europe/Paris", clock=clock,
        )
        await subscriptions.register(ChatInfo(CHAT, "private"), UserInfo(CHAT, language_code="fr"), "fr")
        sources = {}
        async with session_factory() as session, session.begin():
            for outlet, name in NAMES.items():
                source, _ = await repo.upsert_source(session, url=feeds.url(f"/{outlet}.xml"), name=name,
                                                     language="fr", category=None, now=clock())
                sources[outlet] = source.id
        env = Env(poller, deliverer, subscriptions, actions, clock, feeds, fake, session_factory, sources)
        for outlet in NAMES:  # the first poll stores what is there without alerting
            env.publish(outlet, ("old", *UNRELATED, None))
        await env.poll()
        try:
            yield env
        finally:
            await bot.session.close()
            await fetcher.close()


def item(outlet: str, published: datetime | None = None, guid: str = "otan") -> tuple[str, str, str, datetime | None]:
    title, text = VERSIONS[outlet]
    return (guid, title, text, published)


async def rows_of(env: Env, model: type) -> list:
    async with env.sessions() as session:  # type: ignore[operator]
        return list((await session.execute(select(model).order_by(model.id))).scalars())


async def test_same_dispatch_from_three_sources_is_one_alert_edited_to_list_the_others(env: Env) -> None:
    await env.subscriptions.subscribe(CHAT, "Azerbaïdjan", user_id=CHAT)
    env.publish("fil", ("old", *UNRELATED, None), item("fil"))
    assert (await env.poll())[env.sources["fil"]] == (1, 1, 0)
    await env.deliver()
    [alert] = env.fake.sent(CHAT)
    assert "L'OTAN salue le soutien" in alert.visible_text and "Aussi dans" not in alert.visible_text
    assert [b["text"] for b in alert.buttons] == ["🔕 Pause 24 h", "🚫 Plus cette source", "✖ Se désabonner"]

    env.publish("monde", ("old", *UNRELATED, None), item("monde"))
    assert (await env.poll())[env.sources["monde"]] == (1, 0, 1)
    await env.deliver()
    env.publish("f24", ("old", *UNRELATED, None), item("f24"))
    assert (await env.poll())[env.sources["f24"]] == (1, 0, 1)
    await env.deliver()

    assert len(env.fake.sent(CHAT)) == 1, "one alert per story"
    edits = env.fake.edits(CHAT)
    assert [e.message_id for e in edits] == [alert.message_id, alert.message_id]
    assert "Aussi dans\u00a0: Le Monde" in edits[0].visible_text
    assert "Aussi dans\u00a0: Le Monde, France 24" in edits[1].visible_text
    assert "L'OTAN salue le soutien" in edits[1].visible_text, "the alert still shows the first article"
    assert len(edits[1].buttons) == 3, "an edit keeps the buttons"
    articles = await rows_of(env, Article)
    stories = {s.id: s for s in await rows_of(env, Story)}
    [story_id] = {a.story_id for a in articles if (a.url or "").endswith("/otan")}
    story = stories[story_id]
    assert (story.article_count, story.source_count) == (3, 3)
    assert len(stories) == 2, "the backfilled item, the same in the three feeds, is one story too"
    assert all(a.fingerprint is not None and fingerprint_from_bytes(a.fingerprint) for a in articles)
    deliveries = await rows_of(env, Delivery)
    assert [(d.kind, d.dedup_key, d.status) for d in deliveries] == [
        ("alert", f"story:{story.id}", "sent"),
        ("edit", f"edit:{deliveries[0].id}:1", "sent"),
        ("edit", f"edit:{deliveries[0].id}:2", "sent"),
    ]


async def test_pending_alert_lists_the_other_sources_in_its_first_send(env: Env) -> None:
    await env.subscriptions.subscribe(CHAT, "OTAN", user_id=CHAT)
    env.publish("fil", item("fil"))
    env.publish("monde", item("monde"))
    reports = await env.poll()
    assert sorted(reports.values()) == [(0, 0, 0), (1, 0, 0), (1, 1, 0)]
    await env.deliver()
    [alert] = env.fake.sent(CHAT)
    assert "Aussi dans" in alert.visible_text
    assert env.fake.edits(CHAT) == []


async def test_updated_article_edits_its_alert_instead_of_a_new_one(env: Env) -> None:
    await env.subscriptions.subscribe(CHAT, "Azerbaïdjan", user_id=CHAT)
    env.publish("fil", item("fil"))
    await env.poll()
    await env.deliver()
    env.publish("fil", ("otan", "L'OTAN salue le soutien de l'Azerbaïdjan (mis à jour)", DISPATCH, None))
    reports = await env.poll()
    assert reports[env.sources["fil"]] == (0, 0, 1)
    await env.deliver()
    assert len(env.fake.sent(CHAT)) == 1
    [edit] = env.fake.edits(CHAT)
    assert "(mis à jour)" in edit.visible_text
    # Polling the same feed again changes nothing, so no further edit.
    await env.poll()
    await env.deliver()
    assert len(env.fake.edits(CHAT)) == 1


async def test_story_alert_older_than_48_hours_is_not_edited(env: Env) -> None:
    await env.subscriptions.subscribe(CHAT, "Azerbaïdjan", user_id=CHAT)
    env.publish("fil", item("fil"))
    await env.poll()
    await env.deliver()
    # The message went out 48 h and a minute before the next poll (the story's articles stay recent).
    async with env.sessions() as session, session.begin():  # type: ignore[operator]
        [row] = (await session.execute(select(Delivery))).scalars().all()
        row.sent_at = env.clock() + timedelta(hours=1) - timedelta(hours=48, minutes=1)
    env.publish("monde", item("monde"))
    reports = await env.poll()
    assert reports[env.sources["monde"]] == (1, 0, 0), "joins the story, but the message is too old to edit"
    await env.deliver()
    assert len(env.fake.sent(CHAT)) == 1 and env.fake.edits(CHAT) == []
    [story_id] = {a.story_id for a in await rows_of(env, Article) if (a.url or "").endswith("/otan")}
    assert {s.id: s.source_count for s in await rows_of(env, Story)}[story_id] == 2


async def test_muted_alert_does_not_fire_until_the_mute_ends(env: Env) -> None:
    result = await env.subscriptions.subscribe(CHAT, "Azerbaïdjan", user_id=CHAT)
    until = await env.actions.mute(CHAT, result.subscription.id)
    assert until == env.clock() + timedelta(hours=24)
    env.publish("fil", item("fil"))
    assert (await env.poll())[env.sources["fil"]] == (1, 0, 0)
    env.clock.advance(hours=24)
    env.publish("monde", ("other", "Bakou accueille une conférence sur l'Azerbaïdjan et l'énergie",
                          "Une conférence internationale sur l'énergie s'ouvre à Bakou.", None))
    assert (await env.poll())[env.sources["monde"]] == (1, 1, 0)


async def test_chosen_and_excluded_sources_filter_matches(env: Env) -> None:
    result = await env.subscriptions.subscribe(CHAT, "OTAN", user_id=CHAT)
    sub_id = result.subscription.id
    async with env.sessions() as session, session.begin():  # type: ignore[operator]
        sub = await session.get(Subscription, sub_id)
        sub.source_ids = [env.sources["fil"], env.sources["monde"]]
        sub.excluded_source_ids = [env.sources["fil"]]
    assert env.poller.matcher.update_filters(
        sub_id, source_ids=[env.sources["fil"], env.sources["monde"]], excluded_source_ids=[env.sources["fil"]]
    )
    env.publish("fil", item("fil"))
    env.publish("f24", ("nato", "Sommet de l'OTAN à Vilnius", "Les alliés de l'OTAN se réunissent.", None))
    reports = await env.poll()
    assert reports[env.sources["fil"]][1] == 0, "excluded source"
    assert reports[env.sources["f24"]][1] == 0, "not among the chosen sources"
    env.publish("monde", ("nato2", "L'OTAN et la Baltique", "Les ministres de l'OTAN à Riga.", None))
    assert (await env.poll())[env.sources["monde"]][1] == 1


async def test_story_index_is_rebuilt_from_the_database_at_start(env: Env) -> None:
    await env.subscriptions.subscribe(CHAT, "Azerbaïdjan", user_id=CHAT)
    env.publish("fil", item("fil"))
    await env.poll()
    await env.deliver()
    fresh = Poller(session_factory=env.poller.session_factory, fetcher=env.poller.fetcher,
                   matcher=env.poller.matcher, config=env.poller.config, clock=env.clock)
    assert fresh.stories is not None and await fresh.stories.load() == 4  # 3 backfilled + 1
    env.poller = fresh
    env.publish("monde", item("monde"))
    assert (await env.poll())[env.sources["monde"]] == (1, 0, 1)

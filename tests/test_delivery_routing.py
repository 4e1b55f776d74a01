"""Routing at claim time (quiet hours, digest modes, noise guard), digests end to end through aiogram to
the fake Bot API, per-chat order in claims, edits and broadcasts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from bot.core.ratelimit import ChatPacer, PacingSettings, RateLimiter
from bot.db import outbox, repo
from bot.db.models import Article, Broadcast, Chat, Delivery, Subscription
from bot.services.delivery import Deliverer
from bot.services.digests import DigestService
from bot.telegram.client import make_bot
from bot.telegram.routers.delivery_buttons import DigestMore, TelegramButtons, UndoThrottle
from bot.telegram.sender import TelegramSender
from tests.fakes.telegram_api import FakeTelegram
from tests.test_delivery import Clock
from tests.test_delivery import outbox as all_rows

CHAT = 601


@pytest.fixture
async def fake():
    async with FakeTelegram() as server:
        yield server


@pytest.fixture
async def deliverer(fake: FakeTelegram, session_factory):  # noqa: ANN001
    bot = make_bot(fake.token, fake.base_url)
    limiter = RateLimiter(global_per_second=1000, pacer=ChatPacer(PacingSettings(private_per_second=1000,
                                                                               private_burst=1000)))
    yield Deliverer(session_factory=session_factory, sender=TelegramSender(bot), limiter=limiter, clock=Clock())
    await bot.session.close()


async def seed_alerts(session_factory, clock: Clock, chat_id: int, count: int, *, mode: str = "instant",  # noqa: ANN001
                      title: str = "Titre {n}") -> int:
    """A chat with one alert and `count` matching articles queued; returns the subscription id."""
    async with session_factory() as session, session.begin():
        chat = await session.get(Chat, chat_id)
        if chat is None:
            await repo.upsert_chat(session, chat_id=chat_id, chat_type="private", title=None, username=None,
                                   language="fr", timezone="Europe/Paris", now=clock())
        subscription = await repo.add_subscription(session, chat_id=chat_id, query=f"OTAN {chat_id} {mode}",
                                                   created_by=None, message_thread_id=None, now=clock())
        subscription.mode, subscription.digest_time = mode, "10:00"
        source, _ = await repo.upsert_source(session, url="https://news.example/feed", name="Le Fil",
                                             language="fr", category=None, now=clock())
        rows = []
        for n in range(count):
            article = await repo.add_article(session, Article(
                source_id=source.id, key=f"{chat_id}-{mode}-{n}", url=f"https://news.example/{chat_id}/{n}",
                title=title.format(n=n), summary="Résumé.", first_seen_at=clock(),
            ))
            rows.append(repo.NewDelivery(chat_id=chat_id, kind="alert", dedup_key=f"article:{article.id}",
                                         article_id=article.id, subscription_id=subscription.id))
        await repo.enqueue_deliveries(session, rows, now=clock())
        return subscription.id


def digests_for(d: Deliverer, session_factory, max_messages: int = 3) -> DigestService:  # noqa: ANN001
    return DigestService(session_factory, d.clock, buttons=TelegramButtons(), max_messages=max_messages)


async def test_alerts_in_quiet_hours_are_held_then_sent_once_as_one_digest(
    fake: FakeTelegram, deliverer: Deliverer, session_factory  # noqa: ANN001
) -> None:
    clock = deliverer.clock  # 08:00 UTC = 09:00 in Paris
    await seed_alerts(session_factory, clock, CHAT, 3)
    async with session_factory() as session, session.begin():
        await session.execute(update(Chat).where(Chat.id == CHAT).values(quiet_start="08:30", quiet_end="09:30"))
    await deliverer.drain_all()
    assert fake.sent(CHAT) == []
    rows = await all_rows(session_factory)
    assert {r.status for r in rows} == {"held"} and {r.next_attempt_at for r in rows} == {clock() + timedelta(minutes=30)}
    digests = digests_for(deliverer, session_factory)
    assert await digests.tick() == 0  # not yet
    clock.advance(30 * 60)
    assert await digests.tick() == 1
    assert await digests.tick() == 0  # never twice
    await deliverer.drain_all()
    [message] = fake.sent(CHAT)
    assert message.text.startswith("📬 <b>Résumé</b> — 3 articles")
    assert all(f"Titre {n}" in message.text for n in range(3))
    statuses = sorted(r.status for r in await all_rows(session_factory))
    assert statuses == ["digested"] * 3 + ["sent"]


async def test_a_daily_alert_waits_for_its_digest_time_while_an_instant_one_goes_at_once(
    fake: FakeTelegram, deliverer: Deliverer, session_factory  # noqa: ANN001
) -> None:
    clock = deliverer.clock
    await seed_alerts(session_factory, clock, CHAT, 2, mode="daily")
    await seed_alerts(session_factory, clock, CHAT, 1, mode="instant", title="Instantané {n}")
    await deliverer.drain_all()
    [instant] = fake.sent(CHAT)
    assert "Instantané 0" in instant.text
    digests = digests_for(deliverer, session_factory)
    clock.advance(3600)  # 10:00 in Paris: the daily digest time
    assert await digests.tick() == 1
    await deliverer.drain_all()
    assert len(fake.sent(CHAT)) == 2 and "Titre 1" in fake.sent(CHAT)[1].text
    async with session_factory() as session:
        subscriptions = (await session.execute(select(Subscription).order_by(Subscription.id))).scalars().all()
    assert subscriptions[0].last_digest_at == clock() and subscriptions[1].last_digest_at is None


async def test_a_long_digest_sends_its_first_part_and_the_rest_on_more(
    fake: FakeTelegram, deliverer: Deliverer, session_factory  # noqa: ANN001
) -> None:
    clock = deliverer.clock
    await seed_alerts(session_factory, clock, CHAT, 120, mode="daily", title="Un titre assez long numéro {n} " * 3)
    await deliverer.drain_all()
    clock.advance(3600)
    digests = digests_for(deliverer, session_factory, max_messages=1)
    assert await digests.tick() == 1
    await deliverer.drain_all()
    [first] = fake.sent(CHAT)
    [button] = first.buttons
    more = DigestMore.unpack(button["callback_data"])
    assert more.part == 1 and "de plus" in first.text
    assert await digests.more(CHAT, more.bundle, more.part) == 1
    await deliverer.drain_all()
    assert len(fake.sent(CHAT)) == 2
    assert await digests.more(CHAT, more.bundle, more.part) == 0  # a second tap releases nothing


async def test_noise_guard_switches_the_alert_to_hourly_tells_once_and_can_be_undone(
    fake: FakeTelegram, deliverer: Deliverer, session_factory  # noqa: ANN001
) -> None:
    clock = deliverer.clock
    deliverer.alerts_per_hour = 2
    deliverer.buttons = TelegramButtons()
    deliverer.batch_size = 1  # one alert per claim: each is a separate instant message
    subscription_id = await seed_alerts(session_factory, clock, CHAT, 5)
    await deliverer.drain_all()
    sent = fake.sent(CHAT)
    assert len(sent) == 3  # two alerts, then the notice
    notice = sent[2]
    assert "24 prochaines heures" in notice.text
    undo = UndoThrottle.unpack(notice.buttons[0]["callback_data"])
    assert undo.subscription_id == subscription_id
    statuses = [r.status for r in await all_rows(session_factory) if r.kind == "alert"]
    assert statuses == ["sent", "sent", "held", "held", "held"]
    digests = digests_for(deliverer, session_factory)
    assert await digests.undo_throttle(CHAT + 1, subscription_id) is None  # not that chat's alert
    assert await digests.undo_throttle(CHAT, subscription_id) is not None
    await deliverer.drain_all()
    assert len(fake.sent(CHAT)) == 6  # released instantly; the guard does not fire again today
    assert [r.status for r in await all_rows(session_factory) if r.kind == "alert"] == ["sent"] * 5


async def test_a_chats_newer_row_is_not_claimed_while_an_older_one_waits_for_a_retry(
    deliverer: Deliverer, session_factory  # noqa: ANN001
) -> None:
    clock = deliverer.clock
    await seed_alerts(session_factory, clock, CHAT, 2)
    await seed_alerts(session_factory, clock, CHAT + 1, 1)
    async with session_factory() as session, session.begin():
        first = (await session.execute(select(Delivery).order_by(Delivery.id))).scalars().first()
        await outbox.reschedule_delivery(session, first.id, error="5xx", next_attempt_at=clock() + timedelta(seconds=30))
    async with session_factory() as session, session.begin():
        claimed = await outbox.claim_due_deliveries(session, now=clock(), owner="a", lease=timedelta(minutes=1), limit=10)
        assert [r.chat_id for r in claimed] == [CHAT + 1]
    async with session_factory() as session, session.begin():  # in flight elsewhere also blocks
        await session.execute(update(Delivery).where(Delivery.id == first.id).values(
            status="sending", lease_until=clock() + timedelta(seconds=30)))
        claimed = await outbox.claim_due_deliveries(session, now=clock(), owner="b", lease=timedelta(minutes=1), limit=10)
        assert claimed == []
    clock.advance(31)  # the lease expired: the older row first, then the newer one, in one claim
    async with session_factory() as session, session.begin():
        claimed = await outbox.claim_due_deliveries(session, now=clock(), owner="c", lease=timedelta(minutes=1), limit=10)
        assert [r.id for r in claimed] == sorted(r.id for r in claimed) and len(claimed) == 2


async def test_edit_rows_edit_the_message_and_an_unchanged_edit_counts_as_done(
    fake: FakeTelegram, deliverer: Deliverer, session_factory  # noqa: ANN001
) -> None:
    clock = deliverer.clock
    await seed_alerts(session_factory, clock, CHAT, 1)
    await deliverer.drain_all()
    [alert] = fake.sent(CHAT)
    for n, text in enumerate(["<b>Mis à jour</b>", "<b>Mis à jour</b>"]):
        async with session_factory() as session, session.begin():
            await outbox.enqueue_deliveries(session, [outbox.NewDelivery(
                chat_id=CHAT, kind="edit", dedup_key=f"edit:{n}", edit_message_id=alert.message_id, payload=text,
            )], now=clock())
        await deliverer.drain_all()
    assert len(fake.edits(CHAT)) == 1 and fake.message(CHAT, alert.message_id)["text"] == "Mis à jour"
    edits = [r for r in await all_rows(session_factory) if r.kind == "edit"]
    assert [(r.status, r.message_id) for r in edits] == [("sent", alert.message_id)] * 2


async def test_a_broadcast_with_a_photo_goes_as_a_captioned_photo_with_its_buttons(
    fake: FakeTelegram, deliverer: Deliverer, session_factory  # noqa: ANN001
) -> None:
    clock = deliverer.clock
    photo = fake.add_file(b"\x89PNG...", file_name="a.png")
    await seed_alerts(session_factory, clock, CHAT, 0)
    markup = {"inline_keyboard": [[{"text": "Lire", "url": "https://veille.example/news"}]]}
    async with session_factory() as session, session.begin():
        broadcast = Broadcast(created_by=1, text="<b>Nouveau</b>", photo_file_id=photo, created_at=clock())
        session.add(broadcast)
        await session.flush()
        await outbox.enqueue_deliveries(session, [outbox.NewDelivery(
            chat_id=CHAT, kind="broadcast", dedup_key=f"broadcast:{broadcast.id}", broadcast_id=broadcast.id,
            payload="<b>Nouveau</b> !", reply_markup=markup,
        )], now=clock())
    await deliverer.drain_all()
    [message] = fake.sent(CHAT)
    assert message.method == "sendPhoto" and message.params["caption"] == "<b>Nouveau</b> !"
    assert message.buttons == [{"text": "Lire", "url": "https://veille.example/news"}]

"""Delivery through aiogram's real client to the fake Bot API server: coalescing, marking sent with the
message id, and what each Telegram error does to the outbox."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.core.ratelimit import ChatPacer, PacingSettings, RateLimiter
from bot.db import repo
from bot.db.models import Article, Chat, Delivery
from bot.services.delivery import Deliverer
from bot.telegram.client import make_bot
from bot.telegram.sender import TelegramSender
from tests.fakes.telegram_api import FakeTelegram


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
async def fake():
    async with FakeTelegram() as server:
        yield server


@pytest.fixture
async def deliverer(fake: FakeTelegram, session_factory):  # noqa: ANN001
    bot = make_bot(fake.token, fake.base_url)
    clock = Clock()
    limiter = RateLimiter(global_per_second=1000, pacer=ChatPacer(PacingSettings(private_per_second=1000,
                                                                               private_burst=1000)))
    d = Deliverer(session_factory=session_factory, sender=TelegramSender(bot), limiter=limiter, clock=clock)
    yield d
    await bot.session.close()


async def seed(session_factory, clock: Clock, chats: list[int], articles: int) -> list[int]:  # noqa: ANN001
    async with session_factory() as session, session.begin():
        for chat_id in chats:
            await repo.upsert_chat(session, chat_id=chat_id, chat_type="private", title=None, username=None,
                                   language="fr", timezone="Europe/Paris", now=clock())
        source, _ = await repo.upsert_source(session, url="https://news.example/feed", name="Le Fil <&>",
                                             language="fr", category=None, now=clock())
        ids = []
        for n in range(articles):
            article = await repo.add_article(session, Article(
                source_id=source.id, key=f"k{n}", url=f"https://news.example/{n}?a=1&b=2",
                title=f"Titre <b>{n}</b> & AT&T", summary="Résumé. Deux phrases.", first_seen_at=clock(),
            ))
            ids.append(article.id)
        rows = [repo.NewDelivery(chat_id=c, kind="alert", dedup_key=f"article:{a}", article_id=a,
                                 matched_terms=["OTAN"]) for c in chats for a in ids]
        await repo.enqueue_deliveries(session, rows, now=clock())
    return ids


async def outbox(session_factory) -> list[Delivery]:  # noqa: ANN001
    async with session_factory() as session:
        return list((await session.execute(select(Delivery).order_by(Delivery.id))).scalars())


async def test_several_alerts_for_one_chat_go_as_one_message_marked_with_its_id(
    fake: FakeTelegram, deliverer: Deliverer, session_factory  # noqa: ANN001
) -> None:
    await seed(session_factory, deliverer.clock, [501], articles=3)
    assert await deliverer.drain_all() == 3
    [message] = fake.sent(501)
    assert message.text.count("Titre &lt;b&gt;") == 3
    assert "AT&amp;T" in message.text and "Le Fil &lt;&amp;&gt;" in message.text
    rows = await outbox(session_factory)
    assert {(r.status, r.message_id) for r in rows} == {("sent", message.message_id)}


async def test_enqueueing_the_same_alert_twice_keeps_one_row(deliverer: Deliverer, session_factory) -> None:  # noqa: ANN001
    [article] = await seed(session_factory, deliverer.clock, [502], articles=1)
    async with session_factory() as session, session.begin():
        again = await repo.enqueue_deliveries(
            session, [repo.NewDelivery(chat_id=502, kind="alert", dedup_key=f"article:{article}", article_id=article)],
            now=deliverer.clock(),
        )
    assert again == 0
    assert len(await outbox(session_factory)) == 1


async def test_blocked_user_is_deactivated_and_nothing_is_lost(
    fake: FakeTelegram, deliverer: Deliverer, session_factory  # noqa: ANN001
) -> None:
    await seed(session_factory, deliverer.clock, [503, 504], articles=1)
    fake.block(503)
    await deliverer.drain_all()
    assert len(fake.sent(504)) == 1 and fake.sent(503) == []
    rows = {r.chat_id: r for r in await outbox(session_factory)}
    assert rows[503].status == "cancelled" and "blocked" in rows[503].last_error
    assert rows[504].status == "sent"
    async with session_factory() as session:
        chat = await session.get(Chat, 503)
    assert chat.active is False and "blocked" in chat.inactive_reason


async def test_flood_wait_keeps_the_message_and_sends_it_once_after_waiting(
    fake: FakeTelegram, deliverer: Deliverer, session_factory  # noqa: ANN001
) -> None:
    await seed(session_factory, deliverer.clock, [505], articles=1)
    fake.flood_wait(505, retry_after=1)
    await deliverer.drain_all()
    [row] = await outbox(session_factory)
    assert row.status == "pending" and "retry_after" in row.last_error
    assert row.next_attempt_at == deliverer.clock() + timedelta(seconds=1)
    deliverer.clock.advance(1)
    await deliverer.drain_all()
    assert len(fake.sent(505)) == 1
    assert [r.status for r in await outbox(session_factory)] == ["sent"]


async def test_server_errors_are_retried_with_backoff(
    fake: FakeTelegram, deliverer: Deliverer, session_factory  # noqa: ANN001
) -> None:
    await seed(session_factory, deliverer.clock, [506], articles=1)
    fake.fail_next("sendMessage", status=502, count=2)
    await deliverer.drain_all()
    [row] = await outbox(session_factory)
    first_delay = (row.next_attempt_at - deliverer.clock()).total_seconds()
    assert row.status == "pending" and 1 <= first_delay <= 2
    deliverer.clock.advance(first_delay)
    await deliverer.drain_all()
    [row] = await outbox(session_factory)
    second_delay = (row.next_attempt_at - deliverer.clock()).total_seconds()
    assert row.status == "pending" and 2 <= second_delay <= 4
    deliverer.clock.advance(second_delay)
    await deliverer.drain_all()
    assert len(fake.sent(506)) == 1


async def test_bad_request_fails_the_row_without_retrying_forever(
    fake: FakeTelegram, deliverer: Deliverer, session_factory  # noqa: ANN001
) -> None:
    await seed(session_factory, deliverer.clock, [507], articles=1)
    fake.fail_next("sendMessage", status=400, count=1)
    await deliverer.drain_all()
    [row] = await outbox(session_factory)
    assert row.status == "failed"
    deliverer.clock.advance(3600)
    assert await deliverer.drain_all() == 0


async def test_group_migrated_to_supergroup_gets_its_alerts_at_the_new_id(
    fake: FakeTelegram, deliverer: Deliverer, session_factory  # noqa: ANN001
) -> None:
    await seed(session_factory, deliverer.clock, [-508], articles=1)
    fake.migrate(-508, -1000000000508)
    await deliverer.drain_all()
    await deliverer.drain_all()
    assert len(fake.sent(-1000000000508)) == 1
    [row] = await outbox(session_factory)
    assert (row.chat_id, row.status) == (-1000000000508, "sent")

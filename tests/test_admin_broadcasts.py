"""Broadcasts through the outbox to the fake Bot API server (issue #8): 3,000 chats with blocked users,
429s and refusals; the report equals what the server received; a restart resumes without duplicates;
a second confirm starts nothing; cancelling and deleting."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from bot.core.ratelimit import ChatPacer, PacingSettings, RateLimiter
from bot.db import repo
from bot.db.models import Broadcast, Delivery
from bot.services.broadcasts import (
    Audience,
    BroadcastError,
    BroadcastService,
    chats_following,
    check_html,
    eta_seconds,
    parse_buttons,
    progress_bar,
)
from bot.services.delivery import Deliverer
from bot.telegram.client import make_bot
from bot.telegram.sender import TelegramSender
from tests.fakes.telegram_api import FakeTelegram

FIRST_CHAT = 7_000_001


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
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def bot(fake: FakeTelegram):
    bot = make_bot(fake.token, fake.base_url)
    yield bot
    await bot.session.close()


def make_deliverer(bot, session_factory, clock: Clock, owner: str) -> Deliverer:  # noqa: ANN001
    limiter = RateLimiter(global_per_second=100_000,
                          pacer=ChatPacer(PacingSettings(private_per_second=1000, private_burst=1000,
                                                         group_per_minute=100_000)))
    return Deliverer(session_factory=session_factory, sender=TelegramSender(bot), limiter=limiter, clock=clock,
                     owner=owner)


async def seed_chats(session_factory, clock: Clock, chat_ids: list[int], *, language: str = "fr",  # noqa: ANN001
                     chat_type: str = "private") -> None:
    async with session_factory() as session, session.begin():
        for chat_id in chat_ids:
            await repo.upsert_chat(session, chat_id=chat_id, chat_type=chat_type, title=None, username=None,
                                   language=language, timezone="Europe/Paris", now=clock())


async def drain_until_done(deliverers: list[Deliverer], service: BroadcastService, clock: Clock, broadcast_id: int):  # noqa: ANN201
    for _ in range(20):
        for deliverer in deliverers:
            await deliverer.drain_all()
        report = await service.report(broadcast_id)
        if report.counts.pending == 0:
            return report
        clock.advance(2)  # past every retry_after the fake asked for
    raise AssertionError("the broadcast never finished")


async def test_broadcast_to_3000_chats_reports_exactly_what_the_server_received(
    fake: FakeTelegram, bot, session_factory, clock: Clock  # noqa: ANN001
) -> None:
    chats = list(range(FIRST_CHAT, FIRST_CHAT + 3000))
    await seed_chats(session_factory, clock, chats)
    blocked = chats[::30]  # 100 chats blocked the bot
    for chat_id in blocked:
        fake.block(chat_id)
    for chat_id in chats[5::401]:  # 8 chats answer 429 once
        fake.flood_wait(chat_id, retry_after=1)
    fake.fail_next("sendMessage", 400, count=4)  # four messages refused outright
    service = BroadcastService(session_factory, clock=clock)
    draft = await service.create_draft(1, "<b>Maintenance</b> ce soir &amp; demain", buttons=parse_buttons(
        "Détails - https://example.org/maintenance"))
    result = await service.confirm(draft.id, report_chat_id=None, report_message_id=None)
    assert result.started and result.queued == 3000

    report = await drain_until_done([make_deliverer(bot, session_factory, clock, "a")], service, clock, draft.id)

    received = Counter(m.chat_id for m in fake.sent())
    assert max(received.values()) == 1, "a chat got the broadcast twice"
    assert report.counts.sent == len(received) == sum(received.values())
    # The injected 400s go to whichever sends come next, a blocked chat's included: count what was answered.
    assert report.counts.blocked == sum(1 for e in fake.errors if e.status == 403)
    assert report.counts.failed == 4 == sum(1 for e in fake.errors if e.status == 400)
    assert len(blocked) - 4 <= report.counts.blocked <= len(blocked)
    assert report.counts.cancelled == 0 and report.counts.pending == 0
    assert report.counts.sent + report.counts.blocked + report.counts.failed == 3000
    assert fake.too_many_requests >= 1 or any(e.status == 429 for e in fake.errors)
    assert not set(received) & set(blocked)
    message = fake.sent()[0]
    assert message.text == "<b>Maintenance</b> ce soir &amp; demain" and message.parse_mode == "HTML"
    assert message.buttons == [{"text": "Détails", "url": "https://example.org/maintenance"}]

    [finished] = await service.running()
    assert finished.status == "done" and finished.finished
    assert await service.running() == []
    csv_text = await service.failures_csv(draft.id)
    lines = csv_text.strip().splitlines()
    assert lines[0] == "chat_id,chat_type,status,error" and len(lines) == 1 + report.counts.blocked + 4
    assert sum(",blocked," in line for line in lines) == report.counts.blocked


async def test_restart_mid_broadcast_resumes_without_duplicates_and_a_second_confirm_starts_nothing(
    fake: FakeTelegram, bot, session_factory, clock: Clock  # noqa: ANN001
) -> None:
    chats = list(range(FIRST_CHAT, FIRST_CHAT + 600))
    await seed_chats(session_factory, clock, chats)
    service = BroadcastService(session_factory, clock=clock)
    draft = await service.create_draft(1, "Bonjour à tous")
    assert (await service.confirm(draft.id)).queued == 600

    first = make_deliverer(bot, session_factory, clock, "process-1")
    first_batch = await first.drain_once()  # the first process sends one batch (its size is the deliverer's)…
    await first.wait_idle()
    assert 0 < first_batch < 600
    async with session_factory() as session, session.begin():  # …leases another, and dies before sending it
        crashed = await repo.claim_due_deliveries(session, now=clock(), owner="process-1",
                                                  lease=timedelta(minutes=2), limit=100)
    assert 0 < len(crashed) <= 600 - first_batch
    sent_before = len(fake.sent())
    assert sent_before == first_batch

    # The restarted process: a new service, the same database. A second confirm (a double tap, the
    # button pressed again after the restart) must not queue anything.
    restarted = BroadcastService(session_factory, clock=clock)
    again = await restarted.confirm(draft.id)
    assert not again.started and again.queued == 0
    mid = await restarted.report(draft.id)
    assert (mid.counts.sent, mid.counts.pending) == (first_batch, 600 - first_batch)

    clock.advance(180)  # the dead process's leases expire
    second = make_deliverer(bot, session_factory, clock, "process-2")
    report = await drain_until_done([second], restarted, clock, draft.id)

    received = Counter(m.chat_id for m in fake.sent())
    assert set(received) == set(chats) and set(received.values()) == {1}
    assert report.counts.sent == 600
    async with session_factory() as session:
        rows = (await session.execute(select(func.count()).select_from(Delivery))).scalar_one()
    assert rows == 600


async def test_cancel_stops_pending_rows_and_sent_messages_can_be_deleted(
    fake: FakeTelegram, bot, session_factory, clock: Clock  # noqa: ANN001
) -> None:
    chats = list(range(FIRST_CHAT, FIRST_CHAT + 40))
    await seed_chats(session_factory, clock, chats)
    sleeps: list[float] = []

    async def record_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    service = BroadcastService(session_factory, clock=clock, sleep=record_sleep)
    draft = await service.create_draft(1, "Oups")
    await service.confirm(draft.id)
    deliverer = make_deliverer(bot, session_factory, clock, "a")
    deliverer.batch_size = 15
    sent = await deliverer.drain_once()
    await deliverer.wait_idle()
    assert 0 < sent < 40
    report = await service.cancel(draft.id)
    assert report.status == "cancelled"
    assert (report.counts.sent, report.counts.cancelled, report.counts.pending) == (sent, 40 - sent, 0)
    await deliverer.drain_all()
    assert len(fake.sent()) == sent, "cancelled rows must not be sent"
    assert await service.cancel(draft.id) is None, "a cancelled broadcast cannot be cancelled again"

    async def delete(chat_id: int, message_id: int) -> bool:
        return await bot.delete_message(chat_id, message_id)

    fake.fail_next("deleteMessage", 400)  # one message is too old to delete

    async def tolerant_delete(chat_id: int, message_id: int) -> bool:
        try:
            return await delete(chat_id, message_id)
        except Exception:  # noqa: BLE001 - the router's deleter maps Telegram errors to False the same way
            return False

    deleted, failed = await service.delete_sent(draft.id, tolerant_delete, per_second=20)
    assert (deleted, failed) == (sent - 1, 1)
    assert len(fake.deleted) == sent - 1
    assert sleeps == [pytest.approx(0.05)] * (sent - 1), "deletes are paced"
    again, _ = await service.delete_sent(draft.id, tolerant_delete)
    assert again == 1, "only the message that could not be deleted is tried again"


async def test_audiences_select_chats_by_language_term_and_type(session_factory, clock: Clock) -> None:  # noqa: ANN001
    await seed_chats(session_factory, clock, [11, 12], language="fr")
    await seed_chats(session_factory, clock, [13], language="en")
    await seed_chats(session_factory, clock, [-100500], chat_type="supergroup")
    await seed_chats(session_factory, clock, [-100600], chat_type="channel")
    await seed_chats(session_factory, clock, [14])
    async with session_factory() as session, session.begin():
        for chat_id, query in [(11, "(OTAN OR NATO) Arménie"), (13, "otan"), (12, "Botanique"), (-100500, "l'OTAN")]:
            await repo.add_subscription(session, chat_id=chat_id, query=query, created_by=None,
                                        message_thread_id=None, now=clock())
        await repo.deactivate_chat(session, 14, "blocked", clock())
    service = BroadcastService(session_factory, clock=clock)
    assert await service.audience_chat_ids(Audience("everyone")) == [-100600, -100500, 11, 12, 13]
    assert await service.audience_chat_ids(Audience.parse("lang:en")) == [13]
    assert sorted(await service.audience_chat_ids(Audience.parse("term:OTAN"))) == [-100500, 11, 13]
    assert await service.audience_chat_ids(Audience.parse("groups")) == [-100600, -100500]
    assert await service.audience_chat_ids(Audience.parse("chat:14")) == [], "an inactive chat gets nothing"


@pytest.mark.parametrize(
    ("text", "ok"),
    [("<b>gras</b> et <i>italique</i>", True), ('<a href="https://x.org/?a=1&amp;b=2">lien</a>', True),
     ("<b>non fermé", False), ("<div>bloc</div>", False), ("A & B", False), ("<b><i>x</b></i>", False)],
)
def test_broadcast_html_is_checked_before_anything_is_queued(text: str, ok: bool) -> None:
    if ok:
        check_html(text)
    else:
        with pytest.raises(BroadcastError):
            check_html(text)


def test_pure_helpers() -> None:
    assert parse_buttons("Site - https://a.org || Doc — https://b.org/x\nAide | tg://resolve?domain=x") == [
        [{"text": "Site", "url": "https://a.org"}, {"text": "Doc", "url": "https://b.org/x"}],
        [{"text": "Aide", "url": "tg://resolve?domain=x"}],
    ]
    with pytest.raises(BroadcastError):
        parse_buttons("Site - javascript:alert(1)")
    assert chats_following("otan", [(1, "l'OTAN Arménie"), (2, "Botanique"), (3, "otan*"), (1, "OTAN")]) == [1, 3]
    assert chats_following("Caucase du Sud", [(5, '"caucase du sud" -football'), (6, "Sud Caucase")]) == [5]
    assert progress_bar(0, 10, 10) == "░" * 10 and progress_bar(5, 10, 10) == "▓" * 5 + "░" * 5
    assert eta_seconds(100, 300, 10.0) == 30.0 and eta_seconds(0, 10, 5.0) is None and eta_seconds(5, 0, 1) == 0
    for bad in ("", "lang:french", "term:", "chat:abc", "nobody"):
        if bad == "":
            assert Audience.parse(bad) == Audience("everyone")
            continue
        with pytest.raises(BroadcastError):
            Audience.parse(bad)


async def test_a_photo_caption_over_1024_characters_is_refused(session_factory, clock: Clock) -> None:  # noqa: ANN001
    service = BroadcastService(session_factory, clock=clock)
    with pytest.raises(BroadcastError) as error:
        await service.create_draft(1, "x" * 1025, photo_file_id="PHOTO")
    assert error.value.code == "too_long"
    draft = await service.create_draft(1, "x" * 1024, photo_file_id="PHOTO")
    async with session_factory() as session:
        assert (await session.get(Broadcast, draft.id)).status == "draft"

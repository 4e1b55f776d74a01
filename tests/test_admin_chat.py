"""Admin conversations through aiogram's Dispatcher and the real Bot client against the fake Bot API
(issue #8): a non-admin gets nothing (forged callbacks included); an admin composes, previews and
confirms a broadcast and the report message is edited to the final numbers; /ban, /stats, /health."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiogram.types import Update
from sqlalchemy import select

from bot.app import App
from bot.db import repo
from bot.db.models import Broadcast, Chat, Source, User
from bot.settings import Settings
from bot.telegram.routers.admin import BroadcastCb, SourceCb, refresh_broadcast_reports
from tests.fakes.telegram_api import FakeTelegram

ADMIN = 4001
USER = 5001


@pytest.fixture
async def fake():
    async with FakeTelegram() as server:
        yield server


@pytest.fixture
async def app(fake: FakeTelegram, database_url: str, tmp_path: Path):
    settings = Settings(bot_token=fake.token, telegram_api_url=fake.base_url, database_url=database_url,
                        sources_file=tmp_path / "none.toml", admin_ids=frozenset({ADMIN}))
    app = App.build(settings)
    yield app
    await app.bot.session.close()
    await app.core.close()


async def feed(app: App, update: dict) -> None:
    await app.dispatcher.feed_update(app.bot, Update.model_validate(update, context={"bot": app.bot}))


async def say(app: App, fake: FakeTelegram, chat_id: int, text: str) -> None:
    await feed(app, fake.push_message(chat_id, text, language_code="fr"))


async def press(app: App, fake: FakeTelegram, chat_id: int, data: str, message_id: int) -> None:
    await feed(app, fake.push_callback(chat_id, data, message_id=message_id))


def services(app: App):  # noqa: ANN201
    return app.dispatcher["admin_services"]


async def seed_chats(app: App, chat_ids: list[int]) -> None:
    async with app.core.session_factory() as session, session.begin():
        for chat_id in chat_ids:
            await repo.upsert_chat(session, chat_id=chat_id, chat_type="private", title=None, username=None,
                                   language="fr", timezone="Europe/Paris", now=datetime.now(UTC))


async def test_a_non_admin_gets_nothing_from_admin_commands_or_forged_callbacks(app: App, fake: FakeTelegram) -> None:
    draft = await services(app).broadcasts.create_draft(ADMIN, "Secret")
    for command in ("/broadcast", "/stats", "/health", f"/ban {ADMIN}", "/ban 6001", "/cancel_broadcast",
                    "/digest", "/unban 6001"):
        await say(app, fake, USER, command)
    for data in (BroadcastCb(action="send", id=draft.id).pack(), BroadcastCb(action="drop", id=draft.id).pack(),
                 SourceCb(action="remove", id=1).pack()):
        await press(app, fake, USER, data, message_id=1)
    revealing = ("Diffusion", "Broadcast", "Statistiques", "banni", "Sources", "📣", "📊", "🩺")
    for message in fake.sent(USER):
        assert not any(word in message.visible_text for word in revealing), message.text
    assert fake.calls("sendPhoto") == [] and fake.calls("editMessageText") == []
    assert not any(a.get("text") for a in fake.callback_answers)
    async with app.core.session_factory() as session:
        assert (await session.get(Broadcast, draft.id)).status == "draft"
        assert await session.get(User, 6001) is None


async def test_admin_composes_previews_confirms_once_and_the_report_ends_with_the_final_numbers(
    app: App, fake: FakeTelegram
) -> None:
    await seed_chats(app, [USER, USER + 1, USER + 2])
    fake.block(USER + 2)
    await say(app, fake, ADMIN, "/broadcast")
    assert "Envoyez-moi le message" in fake.sent(ADMIN)[-1].text
    await say(app, fake, ADMIN, "Grande <nouvelle> & co")
    preview, panel = fake.sent(ADMIN)[-2:]
    assert preview.text == "Grande &lt;nouvelle&gt; &amp; co", "the preview is the message exactly as sent"
    assert "<b>4</b> discussions" in panel.text  # the admin's own chat counts too
    send = next(b["callback_data"] for b in panel.buttons if b["callback_data"].startswith("abc:send:"))

    # Buttons: add one, the preview shows it, and the panel comes back.
    add = next(b["callback_data"] for b in panel.buttons if b["callback_data"].startswith("abc:btn:"))
    await press(app, fake, ADMIN, add, panel.message_id)
    await say(app, fake, ADMIN, "Le site - https://example.org/veille")
    preview, panel = fake.sent(ADMIN)[-2:]
    assert preview.buttons == [{"text": "Le site", "url": "https://example.org/veille"}]

    await press(app, fake, ADMIN, send, panel.message_id)
    await press(app, fake, ADMIN, send, panel.message_id)  # a double tap
    assert [a.get("text") for a in fake.callback_answers[-2:]] == [
        "Envoi à 4 discussions.", "Cette diffusion est déjà lancée."]
    assert "envoi en cours" in fake.message(ADMIN, panel.message_id)["text"]
    async with app.core.session_factory() as session:
        [broadcast] = (await session.execute(select(Broadcast))).scalars().all()
    assert broadcast.status == "running" and broadcast.total == 4

    await app.deliverer.drain_all()
    assert await refresh_broadcast_reports(app.bot, services(app)) == 1
    final = fake.message(ADMIN, panel.message_id)
    assert "terminée" in final["text"]
    assert "Envoyés : 3" in final["text"] and "Bloqués : 1" in final["text"] and "Échecs : 0" in final["text"]
    buttons = [b["text"] for row in final["reply_markup"]["inline_keyboard"] for b in row]
    assert buttons == ["📄 Échecs (CSV)", "🗑 Supprimer les messages envoyés"]
    assert await refresh_broadcast_reports(app.bot, services(app)) == 0, "the final report is shown once"
    assert fake.sent(USER)[0].buttons == [{"text": "Le site", "url": "https://example.org/veille"}]

    csv_button = final["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    await press(app, fake, ADMIN, csv_button, panel.message_id)
    document = fake.sent(ADMIN)[-1]
    assert document.method == "sendDocument" and f"{USER + 2},private,blocked" in document.file.decode()


async def test_ban_stops_a_users_alerts_and_ignores_their_messages_until_unban(app: App, fake: FakeTelegram) -> None:
    await say(app, fake, USER, "/start")
    await app.core.subscriptions.subscribe(USER, "Arménie", user_id=USER)
    assert len(app.core.matcher) == 1
    await say(app, fake, ADMIN, f"/ban {USER}")
    assert "banni" in fake.sent(ADMIN)[-1].text and "1 alertes" in fake.sent(ADMIN)[-1].text
    assert len(app.core.matcher) == 0, "the banned user's alerts no longer match"
    before = len(fake.sent(USER))
    await say(app, fake, USER, "/list")
    await say(app, fake, USER, "/start")
    assert len(fake.sent(USER)) == before, "a banned user's messages are ignored"
    async with app.core.session_factory() as session:
        assert (await session.get(Chat, USER)).active is False
    await say(app, fake, ADMIN, f"/ban {ADMIN}")
    assert "ne peut pas être banni" in fake.sent(ADMIN)[-1].text

    await say(app, fake, ADMIN, f"/unban {USER}")
    assert "n’est plus banni" in fake.sent(ADMIN)[-1].text
    assert len(app.core.matcher) == 1
    await say(app, fake, USER, "/list")
    assert len(fake.sent(USER)) == before + 1


async def test_stats_sends_the_numbers_and_a_png_chart(app: App, fake: FakeTelegram) -> None:
    await seed_chats(app, [USER, -100777])
    await say(app, fake, ADMIN, "/stats")
    text, photo = fake.sent(ADMIN)[-2:]
    assert "Statistiques" in text.text and "Discussions :" in text.text
    assert photo.method == "sendPhoto" and photo.file.startswith(b"\x89PNG\r\n\x1a\n")


async def test_health_lists_sources_and_its_buttons_act_on_them(app: App, fake: FakeTelegram) -> None:
    now = datetime.now(UTC)
    async with app.core.session_factory() as session, session.begin():
        ok, _ = await repo.upsert_source(session, url="https://ok.example/feed", name="Bon flux", language="fr",
                                         category=None, now=now)
        bad, _ = await repo.upsert_source(session, url="https://bad.example/feed", name="Flux cassé",
                                          language="fr", category=None, now=now)
        ok.polls, ok.not_modified_polls, ok.interval_seconds, ok.last_success_at = 10, 4, 600, now
        bad.error_streak, bad.last_error_kind, bad.last_error_status = 3, "http", 503
        bad.last_error_message, bad.next_check_at = "Service Unavailable", now + timedelta(hours=1)
    await say(app, fake, ADMIN, "/health")
    message = fake.sent(ADMIN)[-1]
    lines = message.visible_text.splitlines()
    assert "1 ok, 1 en échec, 0 désactivées" in lines[0]
    assert lines[1].startswith(f"🔴 #{bad.id} Flux cassé") and "✗3 http 503: Service Unavailable" in lines[2]
    assert "304 40%" in message.visible_text and "every 10 min 00 s" in message.visible_text
    retry = SourceCb(action="retry", id=bad.id).pack()
    assert retry in [b["callback_data"] for b in message.buttons]
    await press(app, fake, ADMIN, retry, message.message_id)
    await press(app, fake, ADMIN, SourceCb(action="disable", id=ok.id).pack(), message.message_id)
    async with app.core.session_factory() as session:
        sources = {s.id: s for s in (await session.execute(select(Source))).scalars()}
    assert sources[bad.id].next_check_at <= datetime.now(UTC)
    assert sources[ok.id].enabled is False

"""Whole conversations through aiogram's Dispatcher against the fake Bot API server (issue #6):
what the user sees (in French and English) and what the database holds, in private chats, groups,
forum topics and channels."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.app import App
from bot.db.models import Article, Chat, Source, Subscription
from bot.settings import Settings
from tests.fakes.telegram_api import FakeTelegram, SentMessage

USER = 5551
BOT = "veille_test_bot"


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(bot_username=BOT) as server:
        yield server


def settings_for(tmp_path: Path, database_url: str, fake: FakeTelegram, **overrides: object) -> Settings:
    values: dict = dict(
        bot_token=fake.token, telegram_api_url=fake.base_url, database_url=database_url,
        sources_file=tmp_path / "no-sources.toml", poll_tick=30, delivery_tick=30, allow_private_networks=True,
    )
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
async def app(tmp_path: Path, database_url: str, fake: FakeTelegram) -> AsyncIterator[App]:
    application = App.build(settings_for(tmp_path, database_url, fake))
    await application.start()
    try:
        yield application
    finally:
        await application.stop()


async def say(fake: FakeTelegram, chat_id: int, text: str, **options: object) -> SentMessage:
    """Pushes `text` and returns the bot's next message in the chat."""
    before = len(fake.sent(chat_id))
    fake.push_message(chat_id, text, **options)
    return (await fake.wait_for_messages(before + 1, chat_id=chat_id))[before]


async def press(fake: FakeTelegram, chat_id: int, message: SentMessage, label: str, *,
                user_id: int | None = None, expect: str = "edit") -> SentMessage:
    """Presses the button whose text contains `label`; returns the edit (or the new message)."""
    button = next(b for b in _buttons(fake, chat_id, message) if label in b["text"])
    edits, sent = len(fake.edits(chat_id)), len(fake.sent(chat_id))
    answers = len(fake.callback_answers)
    fake.push_callback(chat_id, button["callback_data"], message_id=message.message_id, user_id=user_id)
    if expect == "edit":
        await fake.wait_until(lambda: len(fake.edits(chat_id)) > edits, what=f"an edit after {label!r}")
        return fake.edits(chat_id)[-1]
    if expect == "message":
        await fake.wait_until(lambda: len(fake.sent(chat_id)) > sent, what=f"a message after {label!r}")
        return fake.sent(chat_id)[-1]
    await fake.wait_until(lambda: len(fake.callback_answers) > answers, what=f"an answer to {label!r}")
    return message


def _buttons(fake: FakeTelegram, chat_id: int, message: SentMessage) -> list[dict]:
    current = fake.message(chat_id, message.message_id) or {}
    rows = (current.get("reply_markup") or message.reply_markup or {}).get("inline_keyboard", [])
    return [b for row in rows for b in row]


async def rows(app: App, model: type) -> list:
    async with app.core.session_factory() as session:
        return list((await session.execute(select(model))).scalars().all())


# --- private chats, both languages ------------------------------------------------------------


async def test_subscribe_in_french_confirms_with_preview_and_undo_deletes(app: App, fake: FakeTelegram) -> None:
    reply = await say(fake, USER, "/subscribe Azerbaïdjan", language_code="fr")
    assert "Alerte n°" in reply.visible_text and "Azerbaïdjan" in reply.visible_text
    assert "0 article" in reply.visible_text
    [alert] = await rows(app, Subscription)
    assert (alert.chat_id, alert.query, alert.mode, alert.created_by) == (USER, "Azerbaïdjan", "instant", USER)
    assert len(app.core.matcher) == 1

    edited = await press(fake, USER, reply, "Annuler")
    assert "supprimée" in edited.visible_text
    assert await rows(app, Subscription) == []
    assert len(app.core.matcher) == 0


async def test_english_speaker_is_answered_in_english_until_lang_switches(app: App, fake: FakeTelegram) -> None:
    welcome = await say(fake, USER, "/start", language_code="en", first_name="Ann")
    assert "Hello Ann" in welcome.visible_text
    assert len(welcome.buttons) == 3
    added = await press(fake, USER, welcome, "Azerbaïdjan", expect="message")
    assert "Alert #" in added.visible_text
    menu = await say(fake, USER, "/lang")
    switched = await press(fake, USER, menu, "Français")
    assert "français" in switched.visible_text
    reply = await say(fake, USER, "/list")
    assert "Vos alertes" in reply.visible_text
    [chat] = await rows(app, Chat)
    assert chat.language == "fr"


async def test_invalid_query_is_explained_in_french_and_nothing_is_stored(app: App, fake: FakeTelegram) -> None:
    reply = await say(fake, USER, '/subscribe "Caucase du Sud', language_code="fr")
    assert "Guillemet non fermé" in reply.visible_text
    reply = await say(fake, USER, "/subscribe -football")
    assert "Rien à chercher" in reply.visible_text
    assert await rows(app, Subscription) == []


async def test_guided_subscribe_asks_query_previews_then_mode(app: App, fake: FakeTelegram) -> None:
    prompt = await say(fake, USER, "/subscribe", language_code="en")
    assert "What should I follow" in prompt.visible_text
    bad = await say(fake, USER, "(OTAN")
    assert "Unbalanced parenthesis" in bad.visible_text
    preview = await say(fake, USER, "OTAN Arménie")
    assert "would have found" in preview.visible_text
    created = await press(fake, USER, preview, "Daily digest", expect="message")
    assert "daily digest at 08:00" in created.visible_text
    [alert] = await rows(app, Subscription)
    assert (alert.query, alert.mode, alert.digest_time) == ("OTAN Arménie", "daily", "08:00")


async def test_a_command_ends_the_guided_flow(app: App, fake: FakeTelegram) -> None:
    await say(fake, USER, "/subscribe", language_code="en")
    await say(fake, USER, "/help")
    before = len(fake.sent(USER))
    fake.push_message(USER, "just chatting")
    await say(fake, USER, "/list")
    assert len(fake.sent(USER)) == before + 1  # only /list answered; the text was not taken as a query
    assert await rows(app, Subscription) == []


async def test_preview_counts_the_last_week_of_stored_articles(app: App, fake: FakeTelegram) -> None:
    now = datetime.now(UTC)
    async with app.core.session_factory() as session, session.begin():
        one = Source(url="https://a.example/feed", name="Alpha", next_check_at=now, created_at=now)
        two = Source(url="https://b.example/feed", name="Beta", next_check_at=now, created_at=now)
        session.add_all([one, two])
        await session.flush()
        for i, (source, title, age) in enumerate([
            (one, "L'OTAN salue l'Azerbaïdjan", 1), (two, "OTAN : sommet à Bakou", 2),
            (one, "Botanique au jardin", 1), (one, "OTAN, il y a un mois", 30),
        ]):
            session.add(Article(source_id=source.id, key=f"k{i}", url=f"https://a.example/{i}", title=title,
                                summary="", first_seen_at=now - timedelta(days=age)))
    reply = await say(fake, USER, "/preview OTAN", language_code="en")
    text = reply.visible_text
    assert "found 2 article(s)" in text
    assert "L'OTAN salue" in text and "sommet à Bakou" in text
    assert "Botanique" not in text and "il y a un mois" not in text
    assert "Alpha: 1" in text and "Beta: 1" in text
    assert await rows(app, Subscription) == []


# --- /list and its buttons ---------------------------------------------------------------------


async def test_list_paginates_and_buttons_change_the_stored_alert(app: App, fake: FakeTelegram) -> None:
    for word in ("un", "deux", "trois", "quatre", "cinq", "six", "sept"):
        await say(fake, USER, f"/subscribe mot{word}", language_code="en")
    listing = await say(fake, USER, "/list")
    assert "page 1/2" in listing.visible_text and "#1" in listing.visible_text and "#6" not in listing.visible_text
    second = await press(fake, USER, listing, "▶️")
    assert "page 2/2" in second.visible_text and "#7" in second.visible_text

    first = await press(fake, USER, listing, "◀️")
    paused = await press(fake, USER, first, "#2 ⏸")
    assert "paused" in paused.visible_text
    alerts = {a.id: a for a in await rows(app, Subscription)}
    assert alerts[2].paused and not alerts[1].paused
    assert len(app.core.matcher) == 6

    # Delivery mode: weekly, Thursday, 18:00.
    menu = await press(fake, USER, paused, "📬")
    assert "How should its matches be delivered" in menu.visible_text
    weekly = await press(fake, USER, menu, "Weekly")
    thursday = await press(fake, USER, weekly, "Thursday")
    back = await press(fake, USER, thursday, "18:00")
    alerts = {a.id: a for a in await rows(app, Subscription)}
    target = int(menu.visible_text.split("#")[1].split()[0])
    assert (alerts[target].mode, alerts[target].digest_weekday, alerts[target].digest_time) == ("weekly", 3, "18:00")
    assert "weekly digest, Thursday at 18:00" in back.visible_text

    # Delete with confirmation.
    confirm = await press(fake, USER, back, "🗑")
    assert "Delete this alert?" in confirm.visible_text
    await press(fake, USER, confirm, "Yes, delete it")
    assert len(await rows(app, Subscription)) == 6


async def test_edit_query_and_digest_time_through_buttons(app: App, fake: FakeTelegram) -> None:
    await say(fake, USER, "/subscribe OTAN", language_code="fr")
    listing = await say(fake, USER, "/liste")
    prompt = await press(fake, USER, listing, "✏️", expect="message")
    assert "nouvelle requête" in prompt.visible_text
    bad = await say(fake, USER, '"oops')
    assert "Guillemet non fermé" in bad.visible_text
    done = await say(fake, USER, "(OTAN OR NATO) Arménie")
    assert "suit désormais" in done.visible_text
    [alert] = await rows(app, Subscription)
    assert alert.query == "(OTAN OR NATO) Arménie"

    listing = await say(fake, USER, "/liste")
    menu = await press(fake, USER, listing, "📬")
    daily = await press(fake, USER, menu, "quotidien")
    ask = await press(fake, USER, daily, "Autre heure", expect="message")
    assert "HH:MM" in ask.visible_text or "07:30" in ask.visible_text
    wrong = await say(fake, USER, "25h")
    assert "pas une heure" in wrong.visible_text
    ok = await say(fake, USER, "7h15")
    assert "07:15" in ok.visible_text
    [alert] = await rows(app, Subscription)
    assert (alert.mode, alert.digest_time) == ("daily", "07:15")


async def test_pause_and_resume_every_alert(app: App, fake: FakeTelegram) -> None:
    await say(fake, USER, "/subscribe OTAN", language_code="en")
    await say(fake, USER, "/subscribe Arménie")
    reply = await say(fake, USER, "/pause")
    assert "2 alert(s) paused" in reply.visible_text
    assert all(a.paused for a in await rows(app, Subscription)) and len(app.core.matcher) == 0
    reply = await say(fake, USER, "/resume")
    assert "2 alert(s) resumed" in reply.visible_text
    assert len(app.core.matcher) == 2


async def test_alert_limit_is_a_sentence_not_a_crash(tmp_path: Path, database_url: str, fake: FakeTelegram) -> None:
    application = App.build(settings_for(tmp_path, database_url, fake, max_alerts_per_chat=1))
    await application.start()
    try:
        await say(fake, USER, "/subscribe OTAN", language_code="en")
        reply = await say(fake, USER, "/subscribe Arménie")
        assert "already has 1 alerts" in reply.visible_text
        assert len(await rows(application, Subscription)) == 1
    finally:
        await application.stop()

"""The alert message's buttons, pressed through aiogram's Dispatcher against the fake Bot API (issue #5):
each acts at once, confirms by redrawing the keyboard, can be undone, and a button naming another
chat's alert changes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.app import App
from bot.db import repo
from bot.db import stories as story_db
from bot.db.models import Article, Subscription
from bot.services.subscriptions import ChatInfo, UserInfo
from bot.settings import Settings
from bot.telegram.keyboards import AlertButton
from tests.fakes.telegram_api import FakeTelegram, SentMessage

CHAT = 6001
OTHER = 6002
START = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)  # 09:00 in Paris


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server


@pytest.fixture
async def app(tmp_path: Path, database_url: str, fake: FakeTelegram) -> AsyncIterator[App]:
    settings = Settings(
        bot_token=fake.token, telegram_api_url=fake.base_url, database_url=database_url,
        sources_file=tmp_path / "no-sources.toml", poll_tick=30, delivery_tick=30, allow_private_networks=True,
    )
    application = App.build(settings, clock=Clock())
    await application.start()
    try:
        yield application
    finally:
        await application.stop()


async def alert(app: App, chat_id: int, query: str, *, language: str = "fr", chat_type: str = "private",
                n: int = 1) -> tuple[SentMessage, int, int]:
    """A chat with an alert, and the alert message the bot sent for it: (message, alert id, source id)."""
    core = app.core
    await core.subscriptions.register(ChatInfo(chat_id, chat_type, title="G" if chat_type != "private" else None),
                                      UserInfo(abs(chat_id), language_code=language), language)
    result = await core.subscriptions.subscribe(chat_id, query, user_id=abs(chat_id))
    async with core.session_factory() as session, session.begin():
        source, _ = await repo.upsert_source(session, url="https://lefil.example/rss", name="Le Fil",
                                             language="fr", category=None, now=START)
        article = await repo.add_article(session, Article(
            source_id=source.id, key=f"{chat_id}-{n}", url=f"https://lefil.example/{chat_id}/{n}",
            title=f"{query} : les nouvelles", summary="Un résumé.", first_seen_at=START,
        ))
        story = await story_db.create_story(session, first_article_id=article.id, now=START)
        article.story_id = story
        await story_db.enqueue_story_deliveries(session, [story_db.StoryDelivery(
            chat_id=chat_id, kind="alert", dedup_key=f"story:{story}", article_id=article.id, story_id=story,
            subscription_id=result.subscription.id, matched_terms=[query],
        )], now=START)
    fake: FakeTelegram = app._fake  # type: ignore[attr-defined]
    before = len(fake.sent(chat_id))
    await app.deliverer.drain_all()  # or the scheduler's delivery tick, already draining
    sent = await fake.wait_for_messages(before + 1, chat_id=chat_id)
    return sent[-1], result.subscription.id, source.id


def labels(fake: FakeTelegram, chat_id: int, message: SentMessage) -> list[str]:
    current = fake.message(chat_id, message.message_id) or {}
    return [b["text"] for row in (current.get("reply_markup") or {}).get("inline_keyboard", []) for b in row]


async def press(fake: FakeTelegram, chat_id: int, message: SentMessage, label: str, *,
                user_id: int | None = None) -> dict:
    """Presses the button whose text contains `label`; returns the callback's answer."""
    current = fake.message(chat_id, message.message_id) or {}
    buttons = [b for row in (current.get("reply_markup") or {}).get("inline_keyboard", []) for b in row]
    button = next(b for b in buttons if label in b["text"])
    return await push(fake, chat_id, message, button["callback_data"], user_id=user_id)


async def push(fake: FakeTelegram, chat_id: int, message: SentMessage, data: str, *,
               user_id: int | None = None) -> dict:
    answers = len(fake.callback_answers)
    fake.push_callback(chat_id, data, message_id=message.message_id, user_id=user_id)
    await fake.wait_until(lambda: len(fake.callback_answers) > answers, what=f"an answer to {data!r}")
    return fake.callback_answers[-1]


async def subscription(app: App, subscription_id: int) -> Subscription | None:
    async with app.core.session_factory() as session:
        return (await session.execute(
            select(Subscription).where(Subscription.id == subscription_id)
        )).scalar_one_or_none()


@pytest.fixture(autouse=True)
def _remember_fake(app: App, fake: FakeTelegram) -> None:
    app._fake = fake  # type: ignore[attr-defined]


async def test_mute_button_mutes_for_24_hours_confirms_and_undo_restores(app: App, fake: FakeTelegram) -> None:
    message, sub_id, _ = await alert(app, CHAT, "Azerbaïdjan")
    assert labels(fake, CHAT, message) == ["🔕 Pause 24 h", "🚫 Plus cette source", "✖ Se désabonner"]

    answer = await press(fake, CHAT, message, "Pause 24 h")
    assert answer.get("text") == "🔕 En pause pour 24 heures."
    assert (await subscription(app, sub_id)).muted_until == START + timedelta(hours=24)
    assert app.core.matcher.filters(sub_id).muted_until == START + timedelta(hours=24)
    assert labels(fake, CHAT, message) == [
        "✅ En pause jusqu’à 09:00", "↩ Annuler", "🚫 Plus cette source", "✖ Se désabonner",
    ]
    assert fake.edits(CHAT)[-1].method == "editMessageReplyMarkup"

    await press(fake, CHAT, message, "Annuler")
    assert (await subscription(app, sub_id)).muted_until is None
    assert app.core.matcher.filters(sub_id).muted_until is None
    assert labels(fake, CHAT, message) == ["🔕 Pause 24 h", "🚫 Plus cette source", "✖ Se désabonner"]


async def test_stop_source_button_excludes_the_articles_source_and_undo_restores(
    app: App, fake: FakeTelegram
) -> None:
    message, sub_id, source_id = await alert(app, CHAT, "OTAN")
    answer = await press(fake, CHAT, message, "Plus cette source")
    assert answer.get("text") == "🚫 Le Fil ne sera plus utilisée pour cette alerte."
    assert (await subscription(app, sub_id)).excluded_source_ids == [source_id]
    assert app.core.matcher.filters(sub_id).excluded_source_ids == {source_id}
    assert labels(fake, CHAT, message) == ["🔕 Pause 24 h", "✅ Le Fil écartée", "↩ Annuler", "✖ Se désabonner"]

    await press(fake, CHAT, message, "Annuler")
    assert not (await subscription(app, sub_id)).excluded_source_ids
    assert app.core.matcher.filters(sub_id).excluded_source_ids == frozenset()


async def test_unsubscribe_button_deletes_the_alert_and_says_so(app: App, fake: FakeTelegram) -> None:
    message, sub_id, _ = await alert(app, CHAT, "Arménie")
    answer = await press(fake, CHAT, message, "Se désabonner")
    assert answer.get("text") == "🗑 Alerte supprimée."
    assert await subscription(app, sub_id) is None
    assert app.core.matcher.filters(sub_id) is None and len(app.core.matcher) == 0
    assert labels(fake, CHAT, message) == ["🗑 Alerte supprimée"]


async def test_forged_button_for_another_chats_alert_changes_nothing(app: App, fake: FakeTelegram) -> None:
    message, _, _ = await alert(app, CHAT, "OTAN")
    _, other_sub, _ = await alert(app, OTHER, "Géorgie", n=2)
    edits = len(fake.edits())
    for action in ("mute", "stop", "unsub"):
        answer = await push(fake, CHAT, message, AlertButton(action=action, sub=other_sub).pack())
        assert answer.get("show_alert") is True
        assert answer.get("text") == "Cette alerte n’existe pas dans cette discussion : rien n’a été modifié."
    other = await subscription(app, other_sub)
    assert other is not None and other.muted_until is None and not other.excluded_source_ids
    assert len(fake.edits()) == edits


async def test_buttons_speak_english_in_an_english_chat(app: App, fake: FakeTelegram) -> None:
    message, _, _ = await alert(app, CHAT, "NATO", language="en")
    assert labels(fake, CHAT, message) == ["🔕 Mute 24 h", "🚫 Stop this source", "✖ Unsubscribe"]
    answer = await press(fake, CHAT, message, "Mute 24 h")
    assert answer.get("text") == "🔕 Muted for 24 hours."
    assert labels(fake, CHAT, message)[:2] == ["✅ Muted until 09:00", "↩ Undo"]


async def test_in_a_group_only_administrators_may_press(app: App, fake: FakeTelegram) -> None:
    group = -100_777
    message, sub_id, _ = await alert(app, group, "OTAN", chat_type="supergroup")
    fake.set_member(group, 4242, "member")
    answer = await press(fake, group, message, "Pause 24 h", user_id=4242)
    assert answer.get("show_alert") is True
    assert (await subscription(app, sub_id)).muted_until is None
    fake.set_member(group, 4243, "administrator")
    await press(fake, group, message, "Pause 24 h", user_id=4243)
    assert (await subscription(app, sub_id)).muted_until is not None

"""Issue #6 in every kind of chat, through aiogram's Dispatcher and the fake Bot API server: groups
(administrators only), forum topics, channels linked from a private chat, the bot's membership
changes, group migration; plus chat settings, source proposals, export/import and throttling."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from bot.app import App
from bot.db.models import Chat, Source, Subscription
from tests.fakes.feed_server import FeedServer
from tests.fakes.telegram_api import FakeTelegram
from tests.test_chat_conversations import BOT, USER, rows, say, settings_for
from tests.test_end_to_end import EMPTY_FEED

GROUP = -5001
FORUM = -1007770
CHANNEL = -1009990
MEMBER = 10_001


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(bot_username=BOT) as server:
        yield server


@pytest.fixture
async def app(tmp_path: Path, database_url: str, fake: FakeTelegram) -> AsyncIterator[App]:
    application = App.build(settings_for(tmp_path, database_url, fake))
    await application.start()
    try:
        yield application
    finally:
        await application.stop()


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    for _ in range(200):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


def raw_message(fake: FakeTelegram, chat_id: int, user_id: int, **fields: object) -> dict:
    chat = fake.chat(chat_id) if chat_id in fake._chats else fake.add_chat(chat_id)
    chat.last_message_id += 1
    user = {"id": user_id, "is_bot": False, "first_name": "Ann", "language_code": "en"}
    return {"message": {"message_id": chat.last_message_id, "date": int(time.time()), "chat": chat.as_json(),
                        "from": user, **fields}}


# --- groups and forum topics ---------------------------------------------------------------------


async def test_only_group_administrators_change_alerts_and_addressed_commands_work(
    app: App, fake: FakeTelegram
) -> None:
    fake.add_chat(GROUP, "group", title="Rédaction")
    refused = await say(fake, GROUP, "/subscribe OTAN", user_id=MEMBER, language_code="fr")
    assert "Seuls les administrateurs" in refused.visible_text
    assert await rows(app, Subscription) == []
    listing = await say(fake, GROUP, "/list", user_id=MEMBER)
    assert "Aucune alerte" in listing.visible_text  # reading is open to members

    fake.set_member(GROUP, MEMBER, "administrator")
    created = await say(fake, GROUP, f"/subscribe@{BOT} OTAN", user_id=MEMBER)
    assert "Alerte n°" in created.visible_text
    [alert] = await rows(app, Subscription)
    assert (alert.chat_id, alert.message_thread_id) == (GROUP, None)


async def test_alert_created_in_a_forum_topic_goes_to_that_topic(app: App, fake: FakeTelegram) -> None:
    fake.add_chat(FORUM, "supergroup", title="Desk", is_forum=True)
    fake.set_member(FORUM, MEMBER, "creator")
    reply = await say(fake, FORUM, "/subscribe Arménie", user_id=MEMBER, message_thread_id=42, language_code="en")
    assert "Alert #" in reply.visible_text
    assert reply.params.get("message_thread_id") == 42
    [alert] = await rows(app, Subscription)
    assert alert.message_thread_id == 42
    chat = next(c for c in await rows(app, Chat) if c.id == FORUM)
    assert chat.is_forum
    assert app.core.matcher._targets[alert.id].message_thread_id == 42


async def test_group_migration_moves_alerts_to_the_supergroup(app: App, fake: FakeTelegram) -> None:
    fake.add_chat(GROUP, "group")
    fake.set_member(GROUP, MEMBER, "administrator")
    await say(fake, GROUP, "/subscribe OTAN", user_id=MEMBER)
    fake.push_update(raw_message(fake, GROUP, MEMBER, migrate_to_chat_id=-1005001))

    async def moved() -> bool:
        return [a.chat_id for a in await rows(app, Subscription)] == [-1005001]

    await eventually(moved, "the alert moved to the supergroup")
    [alert] = await rows(app, Subscription)

    async def reindexed() -> bool:
        target = app.core.matcher._targets.get(alert.id)
        return target is not None and target.chat_id == -1005001

    await eventually(reindexed, "the index sends the alert to the supergroup")


async def test_bot_kicked_deactivates_the_chat_and_added_back_reactivates(app: App, fake: FakeTelegram) -> None:
    fake.add_chat(GROUP, "group")
    fake.set_member(GROUP, MEMBER, "administrator")
    await say(fake, GROUP, "/subscribe OTAN", user_id=MEMBER)
    assert len(app.core.matcher) == 1
    fake.push_my_chat_member(GROUP, new_status="kicked", old_status="member")

    async def inactive() -> bool:
        return not next(c for c in await rows(app, Chat) if c.id == GROUP).active

    await eventually(inactive, "the chat deactivated")
    assert len(app.core.matcher) == 0
    fake.push_my_chat_member(GROUP, new_status="member", old_status="left")

    async def active() -> bool:
        return next(c for c in await rows(app, Chat) if c.id == GROUP).active

    await eventually(active, "the chat reactivated")

    async def indexed() -> bool:
        return len(app.core.matcher) == 1

    await eventually(indexed, "the alert back in the index")


# --- channels --------------------------------------------------------------------------------------


async def test_channel_admin_links_a_channel_and_manages_its_alerts_from_private(app: App, fake: FakeTelegram) -> None:
    fake.add_chat(CHANNEL, "channel", title="Veille News", username="veillenews")
    fake.set_member(CHANNEL, USER, "administrator")
    linked = await say(fake, USER, "/channel @veillenews", language_code="en")
    assert "Veille News is linked" in linked.visible_text
    created = await say(fake, USER, "/subscribe OTAN")
    assert "Channel Veille News" in created.visible_text
    [alert] = await rows(app, Subscription)
    assert alert.chat_id == CHANNEL
    channel = next(c for c in await rows(app, Chat) if c.id == CHANNEL)
    assert (channel.type, channel.linked_by) == ("channel", USER)
    listing = await say(fake, USER, "/list")
    assert "Channel Veille News" in listing.visible_text and "OTAN" in listing.visible_text

    back = await say(fake, USER, "/channel off")
    assert "Back to this chat" in back.visible_text
    own = await say(fake, USER, "/list")
    assert "No alerts yet" in own.visible_text


async def test_channel_link_needs_the_user_to_be_an_admin_there(app: App, fake: FakeTelegram) -> None:
    fake.add_chat(CHANNEL, "channel", title="Other", username="other")
    fake.set_member(CHANNEL, USER, "member")
    reply = await say(fake, USER, "/channel @other", language_code="en")
    assert "Only the administrators of Other" in reply.visible_text
    unknown = await say(fake, USER, "/channel @nosuchchannel")
    assert "cannot reach" in unknown.visible_text
    assert all(c.type != "channel" for c in await rows(app, Chat))


async def test_a_message_forwarded_from_the_channel_links_it(app: App, fake: FakeTelegram) -> None:
    channel = fake.add_chat(CHANNEL, "channel", title="Veille News")
    fake.set_member(CHANNEL, USER, "creator")
    before = len(fake.sent(USER))
    fake.push_update(raw_message(fake, USER, USER, text="news!", forward_origin={
        "type": "channel", "chat": channel.as_json(), "message_id": 7, "date": int(time.time())}))
    [reply] = (await fake.wait_for_messages(before + 1, chat_id=USER))[before:]
    assert "is linked" in reply.visible_text


# --- settings ----------------------------------------------------------------------------------------


async def test_timezone_and_quiet_hours_are_validated_and_stored(app: App, fake: FakeTelegram) -> None:
    menu = await say(fake, USER, "/timezone", language_code="fr")
    assert "Europe/Paris" in menu.visible_text and len(menu.buttons) >= 6
    wrong = await say(fake, USER, "/fuseau Mars/Olympus")
    assert "n’est pas un fuseau horaire" in wrong.visible_text
    ok = await say(fake, USER, "/timezone asia/baku")
    assert "Asia/Baku" in ok.visible_text
    quiet = await say(fake, USER, "/quiet 22h-7h")
    assert "22:00–07:00" in quiet.visible_text
    [chat] = await rows(app, Chat)
    assert (chat.timezone, chat.quiet_start, chat.quiet_end) == ("Asia/Baku", "22:00", "07:00")
    bad = await say(fake, USER, "/silence demain")
    assert "Je n’ai pas pu lire" in bad.visible_text
    await say(fake, USER, "/quiet off")
    [chat] = await rows(app, Chat)
    assert (chat.quiet_start, chat.quiet_end) == (None, None)


# --- export and import ------------------------------------------------------------------------------


async def test_export_then_import_recreates_the_alerts_elsewhere(app: App, fake: FakeTelegram) -> None:
    await say(fake, USER, "/subscribe OTAN", language_code="en")
    await say(fake, USER, "/subscribe Arménie -football")
    before = len(fake.sent(USER))
    fake.push_message(USER, "/export")
    [document] = (await fake.wait_for_messages(before + 1, chat_id=USER))[before:]
    assert document.method == "sendDocument" and document.file_name == "veille-alerts.json"
    exported = json.loads(document.file or b"")
    assert [a["query"] for a in exported["alerts"]] == ["OTAN", "Arménie -football"]

    other = USER + 1
    payload = json.dumps({**exported, "alerts": [*exported["alerts"], {"query": '"broken'}]}).encode()
    file_id = fake.add_file(payload, file_name="veille-alerts.json")
    fake.add_chat(other, "private")
    fake.push_update(raw_message(fake, other, other, caption="/import",
                                 caption_entities=[{"type": "bot_command", "offset": 0, "length": 7}],
                                 document={"file_id": file_id, "file_unique_id": "u" + file_id,
                                           "file_name": "veille-alerts.json"}))
    [report] = await fake.wait_for_messages(1, chat_id=other)
    assert "2 new alert(s)" in report.visible_text and "Unclosed quote" in report.visible_text
    assert sorted(a.query for a in await rows(app, Subscription) if a.chat_id == other) == [
        "Arménie -football", "OTAN"]


# --- sources ------------------------------------------------------------------------------------------


@pytest.fixture
async def feeds() -> AsyncIterator[FeedServer]:
    async with FeedServer() as server:
        yield server


async def test_a_proposed_feed_is_checked_stored_and_limited_per_day(
    tmp_path: Path, database_url: str, fake: FakeTelegram, feeds: FeedServer
) -> None:
    feeds.set("/x/flux-actu", EMPTY_FEED, content_type="application/rss+xml")
    feeds.set("/page.html", b"<html><head><title>x</title></head><body>no feed</body></html>",
              content_type="text/html")
    application = App.build(settings_for(tmp_path, database_url, fake, sources_proposed_per_day=1))
    await application.start()
    try:
        nothing = await say(fake, USER, f"/sources add {feeds.url('/page.html')}", language_code="en")
        assert "no news feed" in nothing.visible_text
        added = await say(fake, USER, f"/sources add {feeds.url('/x/flux-actu')}")
        assert "EU Reporter is now a source" in added.visible_text
        [source] = await rows(application, Source)
        assert (source.proposed_by, source.url) == (USER, feeds.url("/x/flux-actu"))
        again = await say(fake, USER, f"/sources add {feeds.url('/x/flux-actu')}")
        assert "already a source" in again.visible_text
        feeds.set("/x/second", EMPTY_FEED, content_type="application/rss+xml")
        limited = await say(fake, USER, f"/sources add {feeds.url('/x/second')}")
        assert "proposed 1 feeds today" in limited.visible_text
        catalogue = await say(fake, USER, "/sources")
        assert "EU Reporter" in catalogue.visible_text and "Propose" in catalogue.visible_text
        assert len(await rows(application, Source)) == 1
    finally:
        await application.stop()


# --- throttling ----------------------------------------------------------------------------------------


async def test_a_flood_of_commands_gets_one_slow_down_and_other_users_are_served(
    tmp_path: Path, database_url: str, fake: FakeTelegram
) -> None:
    application = App.build(settings_for(tmp_path, database_url, fake, commands_per_minute=3))
    await application.start()
    try:
        for _ in range(8):
            fake.push_message(USER, "/help", language_code="en")
        other = USER + 7
        served = await say(fake, other, "/help", language_code="en")
        assert "How to write an alert" in served.visible_text
        await fake.wait_for_messages(4, chat_id=USER)
        await say(fake, other, "/lang")  # every earlier update has been handled by now
        texts = [m.visible_text for m in fake.sent(USER)]
        assert len(texts) == 4
        assert sum("lot of commands" in t for t in texts) == 1
    finally:
        await application.stop()


async def test_deep_link_subscribes_directly(app: App, fake: FakeTelegram) -> None:
    reply = await say(fake, USER, "/start sub_OTAN_Azerbaidjan", language_code="en")
    assert "Alert #" in reply.visible_text
    [alert] = await rows(app, Subscription)
    assert alert.query == "OTAN Azerbaidjan"

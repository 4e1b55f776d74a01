"""From a news feed to a Telegram alert, end to end, over real HTTP on 127.0.0.1.

The real app (aiogram's client, aiohttp fetcher, APScheduler, the database with migrations) runs
against a fake Telegram Bot API server and a feed server. A person subscribes to "Azerbaïdjan"; when
the French sample article appears in the feed, exactly one alert arrives, and no second one later.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.app import App
from bot.db.models import Delivery, Source
from bot.settings import Settings
from tests.conftest import DATA
from tests.fakes.feed_server import FeedServer
from tests.fakes.telegram_api import FakeTelegram

CHAT = 424242
ARTICLE_PATH = "/fr/world/azerbaijan/2021/12/15/nato-chief-welcomes-azerbaijans-support/"


def sample_feed_pointing_at(page_url: str) -> bytes:
    feed = (DATA / "eureporter-fr-feed.xml").read_text(encoding="utf-8")
    original = (
        "https://www.eureporter.co/fr/world/azerbaijan/2021/12/15/"
        "nato-chief-welcomes-azerbaijans-support-for-security-and-stability-in-the-south-caucasus/"
    )
    assert original in feed
    return feed.replace(original, page_url).encode("utf-8")


EMPTY_FEED = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>EU Reporter</title><link>https://www.eureporter.co/fr/</link>
<description>x</description><language>fr-FR</language>
<item><title>Le budget de l'UE adopte</title><link>https://www.eureporter.co/fr/budget/</link>
<guid>budget-1</guid><description>Le Parlement a vote le budget.</description></item>
</channel></rss>"""


def make_settings(tmp_path: Path, database_url: str, fake: FakeTelegram, feeds: FeedServer) -> Settings:
    sources = tmp_path / "sources.toml"
    sources.write_text(
        f'[[source]]\nname = "EU Reporter (FR)"\nurl = "{feeds.url("/fr/feed/")}"\nlanguage = "fr"\n',
        encoding="utf-8",
    )
    return Settings(
        bot_token=fake.token,
        telegram_api_url=fake.base_url,
        database_url=database_url,
        sources_file=sources,
        poll_interval=1,
        poll_max_interval=2,
        poll_tick=0.2,
        delivery_tick=0.2,
        allow_private_networks=True,
    )


async def wait_for(predicate, *, timeout: float, what: str) -> None:  # noqa: ANN001, ASYNC109
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


@pytest.fixture
async def fake_telegram():
    async with FakeTelegram() as fake:
        yield fake


@pytest.fixture
async def feed_server():
    server = FeedServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def test_subscriber_gets_exactly_one_alert_for_the_sample_article(
    tmp_path: Path, database_url: str, fake_telegram: FakeTelegram, feed_server: FeedServer
) -> None:
    feed_server.set("/fr/feed/", EMPTY_FEED, content_type="application/rss+xml; charset=utf-8")
    feed_server.set(ARTICLE_PATH, (DATA / "eureporter-fr-otan-azerbaidjan.html").read_bytes(),
                    content_type="text/html; charset=utf-8")
    app = App.build(make_settings(tmp_path, database_url, fake_telegram, feed_server))
    await app.start()
    try:
        fake_telegram.push_message(CHAT, "/start", first_name="Anna", language_code="fr")
        await fake_telegram.wait_for_messages(1, chat_id=CHAT)
        fake_telegram.push_message(CHAT, "/subscribe Azerbaïdjan", language_code="fr")
        replies = await fake_telegram.wait_for_messages(2, chat_id=CHAT)
        assert "Azerbaïdjan" in replies[1].text

        async def first_poll_done() -> bool:
            async with app.core.session_factory() as session:
                source = (await session.execute(select(Source))).scalar_one()
                return source.last_success_at is not None

        await wait_for(first_poll_done, timeout=10, what="the first poll of the source")
        assert len(fake_telegram.sent(CHAT)) == 2, "the backfilled unrelated item must not alert"

        feed_server.set("/fr/feed/", sample_feed_pointing_at(feed_server.url(ARTICLE_PATH)),
                        content_type="application/rss+xml; charset=utf-8")
        messages = await fake_telegram.wait_for_messages(3, chat_id=CHAT, timeout=15)
        alert = messages[2]
        assert alert.parse_mode == "HTML"
        assert feed_server.url(ARTICLE_PATH) in alert.text
        assert "Le chef de l'OTAN salue le soutien de l'Azerbaïdjan" in alert.text.replace("&#x27;", "'")
        assert "EU Reporter" in alert.text
        assert "Avant le sommet du Partenariat oriental" in alert.text
        for chrome in ("PARTAGEZ", "Publicité", "Suivez nous", "XNUMX"):
            assert chrome not in alert.text

        # Two more polls of the same feed: still exactly one alert.
        hits = feed_server.hits("/fr/feed/")
        await wait_for(lambda: _async(feed_server.hits("/fr/feed/") >= hits + 2), timeout=10, what="two more polls")
        await app.deliverer.drain_all()
        assert len(fake_telegram.sent(CHAT)) == 3
        async with app.core.session_factory() as session:
            rows = (await session.execute(select(Delivery))).scalars().all()
        assert [(r.chat_id, r.status) for r in rows] == [(CHAT, "sent")]
        assert rows[0].message_id == alert.message_id
    finally:
        started = time.monotonic()
        await app.stop()
        assert time.monotonic() - started < 5


async def _async(value: bool) -> bool:
    return value


async def test_commands_are_registered_in_english_and_french(
    tmp_path: Path, database_url: str, fake_telegram: FakeTelegram, feed_server: FeedServer
) -> None:
    feed_server.set("/fr/feed/", EMPTY_FEED, content_type="application/rss+xml")
    app = App.build(make_settings(tmp_path, database_url, fake_telegram, feed_server))
    await app.start()
    try:
        english = [c["command"] for c in fake_telegram.commands()]
        french = fake_telegram.commands(language_code="fr")
        assert {"subscribe", "list", "unsubscribe", "help", "start"} <= set(english)
        assert any("alerte" in c["description"] for c in french)
    finally:
        await app.stop()


async def test_preview_prints_matches_from_a_feed_server(tmp_path: Path, feed_server: FeedServer) -> None:
    feed_server.set("/fr/feed/", sample_feed_pointing_at("https://www.eureporter.co/fr/article/"),
                    content_type="application/rss+xml; charset=utf-8")
    feed_server.set("/other.xml", EMPTY_FEED, content_type="application/rss+xml")
    sources = tmp_path / "sources.toml"
    sources.write_text(
        f'[[source]]\nname = "EU Reporter (FR)"\nurl = "{feed_server.url("/fr/feed/")}"\nlanguage = "fr"\n'
        f'[[source]]\nname = "Other"\nurl = "{feed_server.url("/other.xml")}"\nlanguage = "fr"\n',
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("VEILLE_")}
    env.update(VEILLE_SOURCES_FILE=str(sources), VEILLE_ALLOW_PRIVATE_NETWORKS="true",
               VEILLE_CONFIG_FILE=str(tmp_path / "none.toml"))

    async def preview(query: str) -> str:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "preview", query, cwd=tmp_path, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
        assert process.returncode == 0, stderr.decode()
        return stdout.decode()

    out = await preview("OTAN")
    assert "1 alert(s)" in out
    assert "Le chef de l'OTAN salue le soutien" in out
    assert "https://www.eureporter.co/fr/article/" in out
    assert "budget" not in out.lower()
    assert "0 alert(s)" in await preview("botanique")


async def test_a_telegram_error_on_the_command_menu_does_not_stop_the_bot(
    tmp_path: Path, database_url: str, fake_telegram: FakeTelegram, feed_server: FeedServer
) -> None:
    feed_server.set("/fr/feed/", EMPTY_FEED, content_type="application/rss+xml")
    fake_telegram.fail_next("setMyCommands", status=500, count=1)
    app = App.build(make_settings(tmp_path, database_url, fake_telegram, feed_server))
    await app.start()
    try:
        fake_telegram.push_message(CHAT, "/start", language_code="fr")
        [reply] = await fake_telegram.wait_for_messages(1, chat_id=CHAT)
        assert "Veille" in reply.text
        assert app.scheduler.get_job("register-commands") is not None  # retried later
    finally:
        await app.stop()

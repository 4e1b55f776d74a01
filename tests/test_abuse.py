"""Abuse (issue #10): non-admins reach no admin function by deep link; per-user limits (alerts per chat,
sources proposed per day, commands per minute) hold, and a user spamming 1,000 commands is throttled
without slowing the others; secrets never reach the logs; the webhook secret is compared in constant
time. (Admin commands and forged admin callbacks: tests/test_admin_chat.py.)
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import statistics
import time
from pathlib import Path

import pytest
from aiogram.types import Update
from aiohttp import ClientSession
from sqlalchemy import func, select

from bot.app import App
from bot.db.models import Broadcast, Source, Subscription, User
from bot.settings import Settings
from tests.fakes.fault_tools import (
    ForkedVeille,
    Zygote,
    env_int,
    free_port,
    record_figure,
    veille_env,
)
from tests.fakes.feed_server import FeedServer
from tests.fakes.telegram_api import FakeTelegram

ADMIN = 4101
INTRUDER = 5101


@pytest.fixture
async def fake():
    async with FakeTelegram() as server:
        yield server


def build_app(fake: FakeTelegram, database_url: str, tmp_path: Path, **overrides: object) -> App:
    return App.build(Settings(bot_token=fake.token, telegram_api_url=fake.base_url, database_url=database_url,
                              sources_file=tmp_path / "none.toml", admin_ids=frozenset({ADMIN}), **overrides))


async def say(app: App, fake: FakeTelegram, chat_id: int, text: str) -> None:
    update = fake.push_message(chat_id, text, language_code="fr")
    await app.dispatcher.feed_update(app.bot, Update.model_validate(update, context={"bot": app.bot}))


def subx(text: str) -> str:
    return "subx_" + base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


ADMIN_DEEP_LINKS = ["admin", "broadcast", "broadcast_1", "stats", "health", "ban_4101", f"ban_{INTRUDER}",
                    "source_remove_1", "digest_24h", "cancel_broadcast_1", subx("/broadcast Hello all"),
                    subx("/ban 4101"), "sub_/stats", "sub_/broadcast_x", subx("\n/health"), "a" * 64,
                    subx("x" * 400)]


async def test_deep_links_give_a_non_admin_no_admin_function(fake: FakeTelegram, database_url: str,
                                                             tmp_path: Path) -> None:
    app = build_app(fake, database_url, tmp_path)
    try:
        draft = await app.dispatcher["admin_services"].broadcasts.create_draft(ADMIN, "Draft")
        for payload in ADMIN_DEEP_LINKS:
            await say(app, fake, INTRUDER, f"/start {payload}")
        revealing = ("Diffusion", "Broadcast", "Statistiques", "banni", "📣", "📊", "🩺", "Santé")
        assert len(fake.sent(INTRUDER)) >= len(ADMIN_DEEP_LINKS), "every deep link is answered (as a user)"
        for message in fake.sent(INTRUDER):
            assert not any(word in message.visible_text for word in revealing), message.text
        assert fake.calls("sendPhoto") == []
        async with app.core.session_factory() as session:
            assert await session.scalar(select(func.count()).select_from(Broadcast)) == 1
            assert (await session.get(Broadcast, draft.id)).status == "draft"
            banned = await session.scalar(select(func.count()).select_from(User).where(User.banned.is_(True)))
            assert not banned
        # The same bot does answer its admin: the check above could fail.
        await say(app, fake, ADMIN, "/stats")
        assert fake.calls("sendPhoto") or any("📊" in m.visible_text for m in fake.sent(ADMIN))
    finally:
        await app.bot.session.close()
        await app.core.close()


async def test_alerts_per_chat_and_proposals_per_day_are_capped(fake: FakeTelegram, database_url: str,
                                                                tmp_path: Path) -> None:
    async with FeedServer() as feeds:
        for n in range(4):
            feeds.set_rss(f"/p{n}.xml", [{"title": f"t{n}", "link": f"https://ex.org/{n}", "guid": str(n)}],
                          title=f"Proposed {n}")
        app = build_app(fake, database_url, tmp_path, max_alerts_per_chat=3, sources_proposed_per_day=2,
                        allow_private_networks=True)
        await app.core.fetcher.start()
        try:
            for word in ("alpha", "bravo", "charlie", "delta", "echo"):
                await say(app, fake, INTRUDER, f"/subscribe {word}")
            for n in range(4):
                await say(app, fake, INTRUDER, f"/sources add {feeds.url(f'/p{n}.xml')}")
            async with app.core.session_factory() as session:
                alerts = await session.scalar(select(func.count()).select_from(Subscription)
                                              .where(Subscription.chat_id == INTRUDER))
                proposed = await session.scalar(select(func.count()).select_from(Source))
        finally:
            await app.bot.session.close()
            await app.core.close()
    assert alerts == 3
    assert proposed == 2
    assert sum("3" in m.visible_text for m in fake.sent(INTRUDER)[3:5]) == 2, "the refusal names the limit"


async def test_a_user_spamming_commands_is_throttled_without_slowing_the_others(
    fake: FakeTelegram, database_url: str, tmp_path: Path
) -> None:
    spam = env_int("VEILLE_TEST_SPAM_COMMANDS", 1000)
    others = [6201, 6202, 6203, 6204, 6205]
    spammer = 6666
    app = build_app(fake, database_url, tmp_path, commands_per_minute=20)
    await app.start()

    async def ask(chat: int) -> float:
        before = len(fake.sent(chat))
        asked = time.monotonic()
        fake.push_message(chat, "/help", language_code="fr")
        await fake.wait_for_messages(before + 1, chat_id=chat, timeout=30)
        return time.monotonic() - asked

    try:
        baseline = [await ask(chat) for chat in others for _ in range(2)]
        for n in range(spam):
            fake.push_message(spammer, "/list" if n % 2 else "/help", language_code="fr")
        during = []
        for _ in range(4):
            for chat in others:
                during.append(await ask(chat))
        await fake.wait_until(lambda: fake.pending_updates == 0, timeout=60, what="every spam update taken")
        await asyncio.sleep(0.5)
        spammer_replies = fake.sent(spammer)
    finally:
        await app.stop()
    warnings = [m for m in spammer_replies if "🐢" in m.visible_text]
    assert len(warnings) == 1
    assert len(spammer_replies) <= 20 + 1, len(spammer_replies)
    assert len(during) == 4 * len(others)  # every other user answered, each within the wait's bound
    record_figure("spam", spam_commands=spam, spammer_replies=len(spammer_replies),
                  others_p50_baseline_s=round(statistics.median(baseline), 3),
                  others_max_baseline_s=round(max(baseline), 3),
                  others_p50_during_spam_s=round(statistics.median(during), 3),
                  others_max_during_spam_s=round(max(during), 3))


# ---- secrets -----------------------------------------------------------------------------------


async def test_webhook_secret_is_checked_with_compare_digest_and_wrong_secrets_get_401(
    fake: FakeTelegram, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aiohttp import web

    from bot.telegram.webhook import SECRET_HEADER, register_webhook

    secret = "s3cr3t-Webhook-Value_0123456789"
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    app = build_app(fake, database_url, tmp_path)
    web_app = web.Application()
    register_webhook(web_app, app.dispatcher, app.bot, url="https://bot.example.org/tg", secret=secret,
                     subscriptions=app.core.subscriptions)
    runner = web.AppRunner(web_app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    update = {"update_id": 1, "message": {"message_id": 1, "date": 0, "chat": {"id": 77, "type": "private"},
                                          "from": {"id": 77, "is_bot": False, "first_name": "A"}, "text": "/help"}}
    statuses = {}
    try:
        async with ClientSession() as client:
            for name, header in (("missing", None), ("wrong", "x" * len(secret)), ("prefix", secret[:-1]),
                                 ("longer", secret + "x"), ("non-ascii", "sécret"), ("right", secret)):
                headers = {SECRET_HEADER: header} if header is not None else {}
                async with client.post(f"http://127.0.0.1:{port}/tg", json=update, headers=headers) as answer:
                    statuses[name] = answer.status
    finally:
        await runner.cleanup()
        await app.bot.session.close()
        await app.core.close()
    assert statuses == {"missing": 401, "wrong": 401, "prefix": 401, "longer": 401, "non-ascii": 401,
                        "right": 200}
    assert (secret.encode(), secret.encode()) in compared, "the right secret was compared with compare_digest"
    assert len(compared) >= 5, "every presented secret goes through compare_digest"


async def test_no_secret_reaches_the_logs_even_at_debug_level_and_on_errors(tmp_path: Path) -> None:
    """Two real processes at DEBUG: long polling through dropped connections and 401s, then webhook mode."""
    secret = "WebhookSecret-9f8e7d6c5b4a"
    zygote = await Zygote().start()
    try:
        async with FakeTelegram(token="987654:SuperSecretTokenPart-xyz") as fake:
            fake.fail_next("getUpdates", 0, count=2)
            fake.fail_next("getUpdates", 502, count=1, html=True)
            env = veille_env(bot_token=fake.token, telegram_api_url=fake.base_url,
                             database_url=f"sqlite+aiosqlite:///{tmp_path / 'v.db'}",
                             sources_file=tmp_path / "none.toml", config_file=tmp_path / "none.toml",
                             log_level="DEBUG")
            log = tmp_path / "veille.log"
            polling = await ForkedVeille(zygote, tmp_path, env, log).start()
            await polling.wait_for_log("long polling started")
            fake.push_message(31, "/start", language_code="fr")
            await fake.wait_for_messages(1, chat_id=31, timeout=30)
            assert await polling.terminate()
            port = free_port()
            webhook_env = {**env, "VEILLE_WEBHOOK_URL": f"http://127.0.0.1:{port}/tg", "VEILLE_HTTP_PORT": str(port),
                           "VEILLE_WEBHOOK_SECRET": secret}
            hooked = await ForkedVeille(zygote, tmp_path, webhook_env, log).start()
            await hooked.wait_for_log("webhook set")
            fake.push_message(32, "/help", language_code="fr")
            await fake.wait_for_messages(1, chat_id=32, timeout=30)
            assert await hooked.terminate()
            text = log.read_text(encoding="utf-8", errors="replace")
    finally:
        await zygote.close()
    assert "DEBUG" in text and "webhook set" in text, "the processes did log at DEBUG"
    for leaked in (fake.token, fake.token.split(":")[1], secret):
        assert leaked not in text, f"{leaked[:6]}… appears in the logs"

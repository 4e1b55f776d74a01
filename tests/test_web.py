"""The operations HTTP server (/healthz, /readyz, /metrics), webhook mode, and the process roles.

Webhook mode runs the real app against the fake Bot API: `setWebhook` is recorded with the secret,
the fake pushes updates to our server with the secret header (as Telegram does), and requests without
it, or with a wrong one, are refused before reaching the Dispatcher.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import aiohttp
import pytest

from bot.app import App
from bot.errors import ConfigError
from bot.metrics import Metrics
from bot.settings import Settings
from bot.web import OpsServer
from tests.fakes.telegram_api import FakeTelegram

CHAT = 515151
SECRET = "s3cret-token_for-tests"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def fake_telegram():
    async with FakeTelegram() as fake:
        yield fake


async def _ok() -> None:
    return None


async def _broken() -> None:
    raise ConnectionRefusedError("connection refused")


async def _slow() -> None:
    await asyncio.sleep(5)


async def _get(url: str) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, response.headers.get("Content-Type", ""), await response.text()


async def test_healthz_readyz_and_metrics_answer() -> None:
    metrics = Metrics()
    metrics.observe_poll("ok", elapsed_s=0.1, new_articles=2, alerts=1)
    server = OpsServer(metrics=metrics, checks={"database": _ok, "telegram": _ok}, host="127.0.0.1", port=0)
    await server.start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        assert (await _get(base + "/healthz"))[0] == 200
        status, _, body = await _get(base + "/readyz")
        assert status == 200 and '"database": "ok"' in body
        status, content_type, body = await _get(base + "/metrics")
        assert status == 200 and content_type.startswith("text/plain")
        assert 'veille_polls_total{outcome="ok"} 1.0' in body
        assert "veille_articles_total 2.0" in body
    finally:
        await server.stop()


async def test_readyz_is_503_and_names_the_failing_dependency() -> None:
    server = OpsServer(metrics=Metrics(), checks={"database": _ok, "redis": _broken, "telegram": _slow},
                       host="127.0.0.1", port=0, check_timeout=0.2)
    await server.start()
    try:
        status, _, body = await _get(f"http://127.0.0.1:{server.port}/readyz")
        assert status == 503
        assert '"database": "ok"' in body
        assert "ConnectionRefusedError" in body
        assert "timeout after 0.2s" in body
        assert (await _get(f"http://127.0.0.1:{server.port}/healthz"))[0] == 200, "alive though not ready"
    finally:
        await server.stop()


def _settings(tmp_path: Path, database_url: str, fake: FakeTelegram, **extra) -> Settings:  # noqa: ANN003
    return Settings(
        bot_token=fake.token, telegram_api_url=fake.base_url, database_url=database_url,
        sources_file=tmp_path / "none.toml", poll_interval=1, poll_max_interval=2, poll_tick=0.2,
        delivery_tick=0.2, allow_private_networks=True, **extra,
    )


async def test_webhook_mode_sets_the_webhook_and_refuses_updates_without_the_secret(
    tmp_path: Path, database_url: str, fake_telegram: FakeTelegram
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/telegram/hook"
    app = App.build(_settings(tmp_path, database_url, fake_telegram, webhook_url=url, webhook_secret=SECRET,
                              http_port=port))
    await app.start()
    try:
        assert fake_telegram.webhook is not None
        assert fake_telegram.webhook["url"] == url and fake_telegram.webhook["secret_token"] == SECRET
        assert not fake_telegram.calls("getUpdates"), "no long polling in webhook mode"

        # Telegram (the fake) pushes an update with the secret: the bot answers.
        fake_telegram.push_message(CHAT, "/start", first_name="Anna", language_code="en")
        await fake_telegram.wait_for_messages(1, chat_id=CHAT)

        update = {"update_id": 999_001, "message": {
            "message_id": 5, "date": 1_700_000_000, "text": "/start",
            "chat": {"id": CHAT + 1, "type": "private", "first_name": "Eve"},
            "from": {"id": CHAT + 1, "is_bot": False, "first_name": "Eve"},
            "entities": [{"type": "bot_command", "offset": 0, "length": 6}]}}
        async with aiohttp.ClientSession() as http:
            for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"},
                            {"X-Telegram-Bot-Api-Secret-Token": SECRET[:-1]}):
                async with http.post(url, json=update, headers=headers) as response:
                    assert response.status == 401
            async with http.post(url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}) as response:
                assert response.status == 200
        await fake_telegram.wait_for_messages(1, chat_id=CHAT + 1)
        assert len(fake_telegram.sent(CHAT + 1)) == 1, "only the signed request reached the bot"

        status, _, _ = await _get(f"http://127.0.0.1:{port}/healthz")
        assert status == 200
        status, _, body = await _get(f"http://127.0.0.1:{port}/readyz")
        assert status == 200 and '"telegram": "ok"' in body
    finally:
        await app.stop()


def test_webhook_without_secret_or_port_is_a_config_error(tmp_path: Path, database_url: str) -> None:
    fake_url = "http://127.0.0.1:9"
    settings = Settings(bot_token="1:abc", telegram_api_url=fake_url, database_url=database_url,
                        webhook_url="https://bot.example.org/hook", http_port=8080)
    with pytest.raises(ConfigError, match="VEILLE_WEBHOOK_SECRET"):
        App.build(settings)
    with pytest.raises(ConfigError, match="--role"):
        App.build(Settings(bot_token="1:abc", telegram_api_url=fake_url, database_url=database_url), role="cook")


@pytest.mark.parametrize(
    ("role", "jobs", "long_polling"),
    [
        ("poller", {"poll"}, False),
        ("sender", {"deliver"}, False),
        ("bot", set(), True),
    ],
)
async def test_each_role_runs_only_its_part(
    tmp_path: Path, database_url: str, fake_telegram: FakeTelegram, role: str, jobs: set[str],
    long_polling: bool,
) -> None:
    app = App.build(_settings(tmp_path, database_url, fake_telegram), role=role)
    await app.start()
    try:
        started = {job.id for job in app.scheduler.get_jobs()}
        assert started & {"poll", "deliver"} == jobs
        assert (app._polling_task is not None) == long_polling
        assert app.index_sync is not None, "several processes: the index is reloaded periodically"
    finally:
        await app.stop()

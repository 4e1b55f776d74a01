"""`veille run` as a real process: it logs one line per stage, answers a chat, and stops cleanly within
5 s on SIGTERM or SIGINT (Ctrl-C)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from tests.fakes.feed_server import FeedServer
from tests.fakes.telegram_api import FakeTelegram

STAGES = ("database ready", "sources loaded", "subscription index built", "telegram ready", "scheduler started",
          "long polling started")


def veille_env(tmp_path: Path, fake: FakeTelegram, feeds: FeedServer, database_url: str) -> dict[str, str]:
    sources = tmp_path / "sources.toml"
    sources.write_text(f'[[source]]\nname = "Le Fil"\nurl = "{feeds.url("/feed.xml")}"\nlanguage = "fr"\n',
                       encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("VEILLE_")}
    env.update(
        VEILLE_BOT_TOKEN=fake.token,
        VEILLE_TELEGRAM_API_URL=fake.base_url,
        VEILLE_DATABASE_URL=database_url,
        VEILLE_SOURCES_FILE=str(sources),
        VEILLE_POLL_INTERVAL="1",
        VEILLE_ALLOW_PRIVATE_NETWORKS="true",
        VEILLE_CONFIG_FILE=str(tmp_path / "none.toml"),
    )
    return env


async def read_until(stream: asyncio.StreamReader, needle: str, log: list[str], timeout: float) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not any(needle in line for line in log):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"{needle!r} never logged; log so far:\n" + "".join(log[-30:]))
        line = await asyncio.wait_for(stream.readline(), remaining)
        if not line:
            raise AssertionError("process exited early; log:\n" + "".join(log[-30:]))
        log.append(line.decode(errors="replace"))


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
async def test_veille_run_logs_each_stage_answers_and_stops_within_five_seconds(
    tmp_path: Path, database_url: str, stop_signal: signal.Signals
) -> None:
    async with FakeTelegram() as fake, FeedServer() as feeds:
        feeds.set("/feed.xml", "<rss version='2.0'><channel><title>Le Fil</title></channel></rss>")
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", cwd=tmp_path, env=veille_env(tmp_path, fake, feeds, database_url),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        log: list[str] = []
        try:
            await read_until(process.stderr, "long polling started", log, timeout=60)
            fake.push_message(99, "/start", first_name="Jean", language_code="fr")
            [reply] = await fake.wait_for_messages(1, chat_id=99, timeout=15)
            assert "Veille" in reply.text
            await feeds_polled(feeds, "/feed.xml")

            started = time.monotonic()
            process.send_signal(stop_signal)
            await asyncio.wait_for(process.wait(), timeout=10)
            elapsed = time.monotonic() - started
            rest = await process.stderr.read()
            log.append(rest.decode(errors="replace"))
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        text = "".join(log)
        (tmp_path / "veille.log").write_text(text, encoding="utf-8")  # kept by pytest for a failed run
        assert process.returncode == 0, text[-2000:]
        assert elapsed < 5, f"stopping took {elapsed:.1f}s; log tail:\n" + "\n".join(text.splitlines()[-8:])
        for stage in STAGES:
            assert stage in text, f"no log line for stage {stage!r}"
        assert "stopped" in text.splitlines()[-1] or "stopped" in text
        assert fake.token not in text and fake.token.split(":")[1] not in text, "the token leaked into the logs"
        assert "Traceback" not in text


async def feeds_polled(feeds: FeedServer, path: str) -> None:
    for _ in range(200):
        if feeds.hits(path):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the source was never polled")


def test_console_script_and_module_are_the_same_program(tmp_path: Path) -> None:
    import subprocess

    script = Path(sys.executable).parent / "veille"
    assert script.exists(), "the `veille` console script is installed with the package"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VEILLE_")}
    by_script = subprocess.run([str(script), "--help"], capture_output=True, text=True, env=env, timeout=60)
    by_module = subprocess.run([sys.executable, "-m", "bot", "--help"], capture_output=True, text=True, env=env,
                               timeout=60)
    assert by_script.returncode == by_module.returncode == 0
    assert by_script.stdout.replace("veille", "") == by_module.stdout.replace("veille", "")


@pytest.mark.parametrize(
    ("token", "api", "code", "expected"),
    [
        ("999:wrong-token", None, 2, "VEILLE_BOT_TOKEN was refused by Telegram"),
        (None, "http://127.0.0.1:9", 1, "cannot reach the Telegram Bot API"),
    ],
)
async def test_a_wrong_token_or_unreachable_api_is_one_clear_line(
    tmp_path: Path, database_url: str, token: str | None, api: str | None, code: int, expected: str
) -> None:
    async with FakeTelegram() as fake, FeedServer() as feeds:
        env = veille_env(tmp_path, fake, feeds, database_url)
        if token:
            env["VEILLE_BOT_TOKEN"] = token
        if api:
            env["VEILLE_TELEGRAM_API_URL"] = api
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", cwd=tmp_path, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(process.communicate(), timeout=90)
    text = err.decode(errors="replace")
    assert process.returncode == code, text[-1500:]
    assert expected in text.strip().splitlines()[-1]
    assert "Traceback" not in text

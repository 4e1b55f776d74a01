"""Kill -9 a delivering process at random moments, restart it, and count what each chat received:
every alert arrives, and duplicates stay within the proven bound (one per kill with one message in
flight, see bot.services.delivery)."""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.fakes.telegram_api import FakeTelegram
from tests.test_delivery_scale import enqueue_wave, seed_chats

ROOT = Path(__file__).resolve().parent.parent
TITLE = re.compile(r"Alerte (-?\d+)-(\d+)")
KILLS = 6


async def start_worker(database_url: str, fake: FakeTelegram) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.fakes.delivery_worker", database_url, fake.base_url, fake.token, "300", "1",
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), timeout=60)
    assert line.strip() == b"ready"
    return process


@pytest.mark.timeout(240)
async def test_killed_and_restarted_delivery_loses_nothing_and_duplicates_at_most_one_per_kill(
    session_factory, database_url: str  # noqa: ANN001
) -> None:
    chats = [7_000 + n for n in range(300)]
    waves = await seed_chats(session_factory, chats, 2)
    for wave in waves.values():
        await enqueue_wave(session_factory, chats, wave)
    rng = random.Random(20261126)
    kills = 0
    async with FakeTelegram() as fake:
        fake.validate_html = None  # speed: the HTML is checked by the other delivery tests
        for _ in range(KILLS):
            process = await start_worker(database_url, fake)
            sent_before = len(fake.sent())
            await asyncio.sleep(rng.uniform(0.2, 1.2))
            if process.returncode is None:
                process.send_signal(signal.SIGKILL)
                kills += 1
            await process.wait()
            assert len(fake.sent()) >= sent_before  # it was really sending when killed
        process = await start_worker(database_url, fake)
        assert await asyncio.wait_for(process.wait(), timeout=120) == 0
        counts = Counter(
            (chat, match.group(2))
            for chat in chats for message in fake.sent(chat) for match in TITLE.finditer(message.text or "")
        )
    assert kills >= 5
    assert set(counts) == {(chat, str(wave)) for chat in chats for wave in range(2)}, "an alert was lost"
    duplicates = sum(count - 1 for count in counts.values())
    duplicate_messages = sum(1 for chat in chats for n, m in enumerate(fake.sent(chat))
                             if any(m.text == other.text for other in fake.sent(chat)[:n]))
    assert duplicate_messages <= kills, f"{duplicate_messages} duplicated messages for {kills} kills"
    assert duplicates <= 2 * kills  # a duplicated message may carry both of a chat's alerts

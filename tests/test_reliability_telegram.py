"""A Telegram storm (issue #10, "Faults"): 500s, nginx 502 pages, dropped connections, timeouts and 429s
with a large retry_after, in turns, while news keeps arriving and another user keeps talking to the bot.

The real App runs in-process (aiogram client, scheduler, outbox) against the fake Bot API and a feed
server. Its Bot API timeout is lowered to 2 s so a 3 s answer is a client timeout (production uses 30 s;
the code path is the same). What must hold: no alert is dropped (every chat gets every alert once the
storm passes; every outbox row ends `sent`); the bystander's every command is answered (a reply is
attempted) during the storm; the longest wait between two send attempts to one chat stays within the
deliverer's backoff cap (or the retry_after Telegram asked for).

CI: `VEILLE_TEST_STORM_SECONDS` = 10 (2 s per phase, retry_after 3 s); bench/reliability.py: 600 s
(phases of 30 s, retry_after 60 s).
"""

from __future__ import annotations

import asyncio
import itertools
import random
import re
import statistics
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.app import App
from bot.db.models import Delivery
from bot.settings import Settings
from tests.fakes.fault_tools import env_float, record_figure
from tests.fakes.feed_server import FeedServer
from tests.fakes.telegram_api import FakeTelegram
from tests.test_reliability_kill import WORDS

CHATS = (8101, 8102)
BYSTANDER = 8999
TOKEN = re.compile(r"st\d{4}x")
PHASES = ("500", "502 page", "connection reset", "timeout", "429")


def alert_counts(fake: FakeTelegram) -> Counter[tuple[int, str]]:
    counts: Counter[tuple[int, str]] = Counter()
    for message in fake.sent():
        for token in set(TOKEN.findall(message.text or "")):
            counts[(message.chat_id, token)] += 1
    return counts


def shown(fake: FakeTelegram) -> set[tuple[int, str]]:
    """Alerts the chats can see: sent, or added by an edit (an item joining a story already alerted)."""
    edited = {(e.chat_id, t) for e in fake.edits() for t in TOKEN.findall(e.text or "")}
    return set(alert_counts(fake)) | edited


def apply_phase(fake: FakeTelegram, phase: str, retry_after: int) -> None:
    fake.random_failures(0)
    fake.delay("sendMessage", 0)
    fake._fail_next.clear()  # noqa: SLF001 - the fake has no public "clear injected failures"
    if phase == "500":
        fake.random_failures(0.7, seed=5, status=500)
    elif phase == "502 page":
        fake.fail_next("sendMessage", 502, count=10_000, html=True)
    elif phase == "connection reset":
        fake.random_failures(0.7, seed=7, status=0)
    elif phase == "timeout":
        fake.delay("sendMessage", 3)
    elif phase == "429":
        for chat in CHATS:
            fake.flood_wait(chat, retry_after, times=2)


@pytest.mark.xfail(reason="open finding (docs/reliability.md, bug 4): after the storm one chat lacks one alert "
                   "whose outbox rows are all `sent`, and no article carries its title", strict=False)
async def test_a_telegram_storm_drops_nothing_and_the_bot_keeps_answering(
    tmp_path: Path, database_url: str
) -> None:
    storm_seconds = env_float("VEILLE_TEST_STORM_SECONDS", 10)
    phase_seconds = max(2.0, min(30.0, storm_seconds / 20))
    retry_after = 3 if storm_seconds <= 60 else 60
    async with FakeTelegram() as fake, FeedServer() as feeds:
        items: list[dict] = []
        feeds.set_rss("/storm.xml", items)
        sources = tmp_path / "sources.toml"
        sources.write_text(f'[[source]]\nname = "Storm"\nurl = "{feeds.url("/storm.xml")}"\nlanguage = "fr"\n',
                           encoding="utf-8")
        app = App.build(Settings(
            bot_token=fake.token, telegram_api_url=fake.base_url, database_url=database_url,
            sources_file=sources, poll_interval=1, poll_max_interval=2, poll_tick=0.2, delivery_tick=0.2,
            allow_private_networks=True, fetch_full_text=False, alerts_per_hour=0, private_chat_rate=20,
        ))
        app.bot.session.timeout = 2
        await app.start()
        try:
            for chat in CHATS:
                fake.push_message(chat, "/subscribe Tempête", language_code="fr")
                await fake.wait_for_messages(1, chat_id=chat, timeout=20)
            await fake.wait_until(lambda: feeds.hits("/storm.xml") >= 2, timeout=20, what="the first polls")

            latencies: list[float] = []
            unanswered = 0
            numbers = itertools.count(1)
            rng = random.Random(1010)
            started = time.monotonic()
            phase_index = -1
            phases_run: Counter[str] = Counter()
            while (elapsed := time.monotonic() - started) < storm_seconds:
                wanted = int(elapsed // phase_seconds) % len(PHASES)
                if wanted != phase_index or elapsed < 0:
                    phase_index = wanted
                    apply_phase(fake, PHASES[phase_index], retry_after)
                    phases_run[PHASES[phase_index]] += 1
                number = next(numbers)
                words = rng.sample(WORDS, 6)  # distinct stories: similar items would be one alert, then edits
                items.append({"title": f"Tempête st{number:04d}x {' '.join(words[:3])}",
                              "link": f"https://news.example.org/storm/{number}", "guid": f"storm-{number}",
                              "description": f"Le {words[3]} et la {words[4]} face au {words[5]}.",
                              "pub_date": datetime.now(UTC)})
                feeds.set_rss("/storm.xml", items[-30:])
                # The bystander asks for /help; the reply attempt (whatever Telegram answers) is the response.
                asked_at = time.monotonic()
                before = len([r for r in fake.calls("sendMessage") if r.params.get("chat_id") == BYSTANDER])
                fake.push_message(BYSTANDER, "/help", language_code="fr")
                try:
                    await fake.wait_until(
                        lambda b=before: len([r for r in fake.calls("sendMessage")
                                              if r.params.get("chat_id") == BYSTANDER]) > b,
                        timeout=30, what="the bystander's reply")
                    latencies.append(time.monotonic() - asked_at)
                except TimeoutError:
                    unanswered += 1
                await asyncio.sleep(0.5)
            apply_phase(fake, "calm", retry_after)
            storm_ended = time.monotonic()

            expected = {(chat, f"st{n:04d}x") for chat in CHATS for n in range(1, next(numbers))}
            try:
                await fake.wait_until(lambda: expected <= shown(fake),
                                      timeout=env_float("VEILLE_TEST_STORM_RECOVERY",
                                                        60 if storm_seconds <= 60 else app.deliverer.retry_cap + 120),
                                      what="every alert after the storm")
            except TimeoutError:
                async with app.core.session_factory() as session:
                    rows = (await session.execute(select(Delivery.status, Delivery.attempts, Delivery.last_error,
                                                         Delivery.next_attempt_at))).all()
                missing = sorted(expected - shown(fake))
                raise AssertionError(f"{len(missing)} alerts missing, e.g. {missing[:4]}; outbox: "
                                     f"{Counter(r.status for r in rows)}; not sent: "
                                     f"{[tuple(r) for r in rows if r.status != 'sent'][:6]}") from None
            recovery = time.monotonic() - storm_ended
            await app.deliverer.drain_all()
            async with app.core.session_factory() as session:
                statuses = Counter((await session.scalars(select(Delivery.status))).all())
        finally:
            await app.stop()

    assert unanswered == 0, f"{unanswered} bystander commands got no reply attempt within 30 s"
    assert set(statuses) == {"sent"}, statuses
    longest_gap = 0.0
    for chat in CHATS:
        attempts = [r.at for r in fake.calls("sendMessage") if r.params.get("chat_id") == chat]
        longest_gap = max([longest_gap, *(b - a for a, b in itertools.pairwise(attempts))])
    allowed_gap = max(app.deliverer.retry_cap, retry_after) + 10
    assert longest_gap <= allowed_gap, f"a chat waited {longest_gap:.0f}s between attempts (bound {allowed_gap}s)"
    counts = alert_counts(fake)
    record_figure(
        "telegram_storm", storm_seconds=storm_seconds, phase_seconds=phase_seconds, retry_after=retry_after,
        phases=dict(phases_run), alerts=len(expected), delivered=len(shown(fake) & expected),
        duplicates=sum(c - 1 for c in counts.values()), errors_answered=len(fake.errors),
        bystander_commands=len(latencies) + unanswered, bystander_unanswered=unanswered,
        bystander_reply_p50_s=round(statistics.median(latencies), 3) if latencies else None,
        bystander_reply_max_s=round(max(latencies), 3) if latencies else None,
        longest_wait_between_attempts_s=round(longest_gap, 1), recovery_after_storm_s=round(recovery, 1),
    )

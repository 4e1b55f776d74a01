"""Admin digest ranking, statistics and the admin CLI (issue #8), on the real database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.cli import main
from bot.db import repo
from bot.db.models import Article, Delivery, Story, User
from bot.i18n import translator
from bot.services.admin import AdminService, Digest, DigestStory, parse_schedule, period_start, render_digest
from bot.services.stats import StatsService, render_chart
from tests.telegram_html import check_telegram_html

NOW = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)


async def seed_news(session_factory) -> dict[str, int]:  # noqa: ANN001
    """Story A: 3 sources, 1 alerted chat; story B: 1 source, 5 alerted chats; C: old; D: 1 source, 0."""
    async with session_factory() as session, session.begin():
        sources = []
        for n in range(3):
            source, _ = await repo.upsert_source(session, url=f"https://s{n}.example/feed", name=f"Source {n}",
                                                 language="fr", category=None, now=NOW)
            sources.append(source)
        story_a = Story(article_count=3, source_count=3, created_at=NOW, updated_at=NOW)
        session.add(story_a)
        await session.flush()
        ids = {}

        async def article(key: str, source: int, title: str, seen: datetime, story: int | None) -> int:
            row = await repo.add_article(session, Article(
                source_id=sources[source].id, key=key, url=f"https://s{source}.example/{key}", title=title,
                summary="L'OTAN et l'Arménie.", first_seen_at=seen, story_id=story))
            return row.id

        for n in range(3):
            ids[f"a{n}"] = await article(f"a{n}", n, "Sommet de l'OTAN à Vilnius", NOW - timedelta(hours=2), story_a.id)
        ids["b"] = await article("b", 0, "Élections en Arménie", NOW - timedelta(hours=1), None)
        ids["c"] = await article("c", 1, "Vieille nouvelle", NOW - timedelta(days=3), None)
        ids["d"] = await article("d", 2, "Météo <orageuse> & vents", NOW - timedelta(minutes=5), None)
        for chat_id in range(100, 106):
            await repo.upsert_chat(session, chat_id=chat_id, chat_type="private", title=None, username=None,
                                   language="fr", timezone="Europe/Paris", now=NOW)
        rows = [repo.NewDelivery(chat_id=c, kind="alert", dedup_key=f"article:{ids['b']}", article_id=ids["b"])
                for c in range(100, 105)]
        rows.append(repo.NewDelivery(chat_id=100, kind="alert", dedup_key=f"article:{ids['a0']}",
                                     article_id=ids["a0"]))
        await repo.enqueue_deliveries(session, rows, now=NOW)
    return ids


async def test_digest_ranks_stories_by_sources_then_matches_and_renders_valid_html(session_factory) -> None:  # noqa: ANN001
    await seed_news(session_factory)
    admin = AdminService(session_factory, admin_ids=frozenset({1}), clock=lambda: NOW)
    digest = await admin.build_digest("24h")
    assert [(s.title, s.source_count, s.matches) for s in digest.stories] == [
        ("Sommet de l'OTAN à Vilnius", 3, 1),
        ("Élections en Arménie", 1, 5),
        ("Météo <orageuse> & vents", 1, 0),
    ]
    assert digest.stories[0].sources == ("Source 0", "Source 1", "Source 2")
    week = await admin.build_digest("7d")
    assert len(week.stories) == 4
    topic = await admin.build_digest("24h", "Arménie -OTAN")
    assert [s.title for s in topic.stories] == []  # every Arménie article here also names l'OTAN
    topic = await admin.build_digest("24h", "intitle:Arménie")
    assert [s.title for s in topic.stories] == ["Élections en Arménie"]
    html = render_digest(digest, translator("fr"))
    check_telegram_html(html)
    assert html.startswith("📰 <b>À la une</b> — dernières 24 heures")
    assert "Météo &lt;orageuse&gt; &amp; vents" in html and "3 sources · 1 alertés" in html


def test_digest_fits_one_message_and_says_when_empty() -> None:
    story = DigestStory(title="T" * 400, url="https://x.example/" + "p" * 300, sources=("S",), source_count=2,
                        matches=1, first_seen_at=NOW)
    text = render_digest(Digest("7d", "OTAN", NOW, (story,) * 40), translator("en"))
    check_telegram_html(text)
    assert text.count("\n\n") < 40
    assert "No stories" in render_digest(Digest("today", None, NOW, ()), translator("en"))


@pytest.mark.parametrize(
    ("period", "expected"),
    [("24h", NOW - timedelta(hours=24)), ("7d", NOW - timedelta(days=7)),
     ("today", datetime(2026, 11, 25, 23, 0, tzinfo=UTC))],  # midnight in Paris (UTC+1 in November)
)
def test_digest_periods(period: str, expected: datetime) -> None:
    assert period_start(period, NOW, "Europe/Paris") == expected


def test_schedules_parse_or_fail_clearly() -> None:
    assert parse_schedule("08:00 Europe/Paris") == (8, 0, "Europe/Paris")
    assert parse_schedule("7:05") == (7, 5, "Europe/Paris")
    for bad in ("25:00", "8h", "08:00 Mars/Olympus"):
        with pytest.raises(ValueError):
            parse_schedule(bad)


async def test_stats_count_users_chats_sources_and_draw_a_chart(session_factory) -> None:  # noqa: ANN001
    ids = await seed_news(session_factory)
    async with session_factory() as session, session.begin():
        for user_id, created, banned in [(100, NOW, False), (101, NOW - timedelta(days=2), False),
                                         (102, NOW - timedelta(days=40), True)]:
            session.add(User(id=user_id, banned=banned, created_at=created, last_seen_at=created))
        await repo.deactivate_chat(session, 101, "Forbidden: bot was blocked by the user", NOW)
        source = await repo.get_source(session, 1)
        source.error_streak = 2
        await repo.add_subscription(session, chat_id=100, query="OTAN", created_by=None, message_thread_id=None,
                                    now=NOW)
        await repo.add_subscription(session, chat_id=102, query="OTAN", created_by=None, message_thread_id=None,
                                    now=NOW)
        row = await session.get(Delivery, 1)
        row.status, row.sent_at = "sent", NOW - timedelta(minutes=3)
    snapshot = await StatsService(session_factory, clock=lambda: NOW).snapshot()
    assert (snapshot.users.total, snapshot.users.active, snapshot.users.blocked, snapshot.users.banned) == (3, 1, 1, 1)
    assert snapshot.chats == {"private": (5, 1)}
    assert snapshot.sources == {"ok": 2, "failing": 1, "disabled": 0}
    assert snapshot.alerts == 2 and snapshot.top_terms == [("OTAN", 2)]
    assert snapshot.articles_today == 5 and snapshot.alerts_today == 1 and ids
    assert len(snapshot.alerts_per_day) == 30 and snapshot.alerts_per_day[-1] == (NOW.date(), 1)
    assert dict(snapshot.new_users_per_day)[NOW.date() - timedelta(days=2)] == 1
    assert render_chart(snapshot).startswith(b"\x89PNG")


def test_cli_broadcast_dry_run_counts_and_a_real_one_queues(database_url: str, monkeypatch, capsys) -> None:  # noqa: ANN001
    import asyncio

    from bot.db.engine import create_engine, create_session_factory

    async def seed() -> None:
        engine = create_engine(database_url)
        factory = create_session_factory(engine)
        async with factory() as session, session.begin():
            for chat_id, language in [(1, "fr"), (2, "fr"), (3, "en")]:
                await repo.upsert_chat(session, chat_id=chat_id, chat_type="private", title=None, username=None,
                                       language=language, timezone="Europe/Paris", now=NOW)
        await engine.dispose()

    async def rows() -> list[tuple[int, str]]:
        from sqlalchemy import select

        engine = create_engine(database_url)
        async with create_session_factory(engine)() as session:
            result = (await session.execute(select(Delivery.chat_id, Delivery.payload))).all()
        await engine.dispose()
        return sorted((r[0], r[1]) for r in result)

    asyncio.run(seed())
    monkeypatch.setenv("VEILLE_DATABASE_URL", database_url)
    assert main(["broadcast", "--text", "<b>Salut</b>", "--audience", "lang:fr", "--dry-run"]) == 0
    assert "would send to 2 chats" in capsys.readouterr().out
    assert asyncio.run(rows()) == []
    assert main(["broadcast", "--text", "<b>Salut</b>", "--audience", "lang:fr",
                 "--button", "Site - https://example.org"]) == 0
    assert "2 chats queued" in capsys.readouterr().out
    assert asyncio.run(rows()) == [(1, "<b>Salut</b>"), (2, "<b>Salut</b>")]
    assert main(["broadcast", "--text", "<b>Salut", "--dry-run"]) == 2
    assert "not valid Telegram HTML" in capsys.readouterr().err
    assert main(["stats"]) == 0
    assert "users: 0" in capsys.readouterr().out
    assert main(["sources", "health"]) == 0
    assert "no sources" in capsys.readouterr().out

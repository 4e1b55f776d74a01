"""Matcher.load: a reload from the database makes the index hold exactly the stored alerts, and only
what changed is parsed again (the scale-out reload runs every minute on the event loop)."""

from __future__ import annotations

import pytest

import bot.services.matcher as matcher_module
from bot.core.matching import Document
from bot.db.repo import ActiveSubscription
from bot.services.matcher import Matcher

DOC = Document(title="Sommet de l'OTAN à Bakou", text="L'Azerbaïdjan et l'Arménie, le Caucase du Sud.",
               source_name="EU Reporter", source_url="https://www.eureporter.co/x", lang="fr")


def _fired(matcher: Matcher) -> dict[int, tuple[int, tuple[str, ...]]]:
    return {m.target.subscription_id: (m.target.chat_id, m.match.terms) for m in matcher.match(DOC)}


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The queries the matcher parses (the expensive step a reload should skip when nothing changed)."""
    seen: list[str] = []
    real = matcher_module.parse_query

    def counting(text: str):  # noqa: ANN202
        seen.append(text)
        return real(text)

    monkeypatch.setattr(matcher_module, "parse_query", counting)
    return seen


def test_a_reload_applies_additions_changes_and_removals(parses: list[str]) -> None:
    matcher = Matcher()
    matcher.load([
        ActiveSubscription(1, 10, "OTAN", None),
        ActiveSubscription(2, 20, "Géorgie", None),
        ActiveSubscription(3, 30, '"Caucase du Sud" -football', None),
        ActiveSubscription(4, 40, "Arménie", None),
    ])
    assert _fired(matcher) == {1: (10, ("OTAN",)), 3: (30, ("Caucase du Sud",)), 4: (40, ("Arménie",))}

    parses.clear()
    matcher.load([
        ActiveSubscription(1, 10, "OTAN", None),  # unchanged
        ActiveSubscription(2, 20, "Bakou", None),  # changed: now fires
        ActiveSubscription(3, 33, '"Caucase du Sud" -football', None),  # moved to another chat
        # 4 removed
        ActiveSubscription(5, 50, "intitle:OTAN Azerbaïdjan", None),  # added
    ])
    assert _fired(matcher) == {
        1: (10, ("OTAN",)),
        2: (20, ("Bakou",)),
        3: (33, ("Caucase du Sud",)),
        5: (50, ("OTAN", "Azerbaïdjan")),
    }
    assert len(matcher) == 4
    assert sorted(parses) == sorted(["Bakou", "intitle:OTAN Azerbaïdjan"])  # the unchanged ones were kept


def test_a_reload_applies_new_filters_to_unchanged_queries() -> None:
    matcher = Matcher()
    matcher.load([ActiveSubscription(1, 10, "OTAN", None)])
    assert 1 in _fired(matcher)
    matcher.load([ActiveSubscription(1, 10, "OTAN", None, paused=True)])
    assert _fired(matcher) == {}


def test_a_query_that_no_longer_parses_leaves_the_index_on_reload(caplog: pytest.LogCaptureFixture) -> None:
    matcher = Matcher()
    matcher.load([ActiveSubscription(1, 10, "OTAN", None), ActiveSubscription(2, 20, "Bakou", None)])
    matcher.load([ActiveSubscription(1, 10, '"OTAN', None), ActiveSubscription(2, 20, "Bakou", None)])
    assert _fired(matcher) == {2: (20, ("Bakou",))}
    assert "skipping unparsable subscription" in caplog.text


def test_reloading_the_same_alerts_many_times_matches_like_a_fresh_build() -> None:
    stored = [ActiveSubscription(i, 100 + i, query, None) for i, query in enumerate(
        ["OTAN", "otan", "Arménie OR Géorgie", "azerbaïdjan*", "intitle:Bakou", "source:eureporter.co Arménie",
         "lang:en OTAN", '"Caucase du Sud"', "OTAN -Arménie"], start=1)]
    fresh = Matcher()
    fresh.load(stored)
    reloaded = Matcher()
    reloaded.load(stored[::2])
    for round_ in range(3):
        reloaded.load(stored if round_ % 2 == 0 else stored[1::2])
    reloaded.load(stored)
    assert _fired(reloaded) == _fired(fresh)
    assert sorted(_fired(fresh)) == [1, 2, 3, 4, 5, 6, 8]

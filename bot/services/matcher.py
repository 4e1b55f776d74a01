"""The in-memory subscription index, kept in step with the database.

The index is built from the database at start and patched in place when a chat adds, changes or
removes an alert in this process; a reload from the database (issue #9: every minute when several
processes share the database) patches it too, touching only the alerts that changed.

Besides its query, each alert keeps filters applied at match time (issue #5):
- `paused`: never fires;
- `muted_until`: does not fire while `now` is before it (the "mute 24 h" button);
- `source_ids`: the chosen sources, or None for all; `excluded_source_ids`: sources stopped for this
  alert (the "stop this source" button). Source filters apply when the caller says which source the
  article comes from, the mute when it says what time it is.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.core.matching import Document, Match, SubscriptionIndex
from bot.core.query import Query, QueryError, parse_query
from bot.db.repo import ActiveSubscription

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Target:
    subscription_id: int
    chat_id: int
    message_thread_id: int | None


@dataclass(frozen=True, slots=True)
class TargetedMatch:
    target: Target
    match: Match


@dataclass(frozen=True, slots=True)
class AlertFilters:
    source_ids: frozenset[int] | None = None
    excluded_source_ids: frozenset[int] = frozenset()
    muted_until: datetime | None = None
    paused: bool = False

    @classmethod
    def of(cls, subscription: ActiveSubscription) -> AlertFilters:
        source_ids = getattr(subscription, "source_ids", None)
        excluded = getattr(subscription, "excluded_source_ids", None)
        if (source_ids is None and not excluded and getattr(subscription, "muted_until", None) is None
                and not getattr(subscription, "paused", False)):
            return _NO_FILTERS  # most alerts: one shared object (a reload builds 100k of these)
        return cls(
            source_ids=_ids(getattr(subscription, "source_ids", None)),
            excluded_source_ids=_ids(getattr(subscription, "excluded_source_ids", None)) or frozenset(),
            muted_until=getattr(subscription, "muted_until", None),
            paused=bool(getattr(subscription, "paused", False)),
        )

    def allows(self, source_id: int | None, now: datetime | None) -> bool:
        if self.paused:
            return False
        if now is not None and self.muted_until is not None and now < self.muted_until:
            return False
        if source_id is not None:
            if self.source_ids is not None and source_id not in self.source_ids:
                return False
            if source_id in self.excluded_source_ids:
                return False
        return True


_NO_FILTERS = AlertFilters()
_UNCHANGED: Any = object()


class Matcher:
    def __init__(self) -> None:
        self._index = SubscriptionIndex.build([])
        self._targets: dict[int, Target] = {}
        self._filters: dict[int, AlertFilters] = {}

    def __len__(self) -> int:
        return len(self._targets)

    def load(self, subscriptions: Iterable[ActiveSubscription]) -> None:
        """Make the index hold exactly these subscriptions (at start, and at each periodic reload).

        Only what changed is parsed and compiled: a subscription whose stored query is the one
        already indexed is kept as it is, so reloading 100k unchanged alerts costs a comparison
        each, not a rebuild (the scale-out reload runs every minute, on the event loop).
        """
        index = self._index
        fresh = not len(index)
        pairs: list[tuple[int, Query]] = []
        targets: dict[int, Target] = {}
        filters: dict[int, AlertFilters] = {}
        for sub in subscriptions:
            if fresh or index.query_text(sub.id) != sub.query:
                try:
                    query = parse_query(sub.query)
                except QueryError as exc:
                    # A query saved under older, looser rules must not take the whole index down.
                    log.warning("skipping unparsable subscription", extra={"subscription": sub.id, "error": str(exc)})
                    continue
                pairs.append((sub.id, query))
            target = self._targets.get(sub.id)
            if target is None or target.chat_id != sub.chat_id or target.message_thread_id != sub.message_thread_id:
                target = Target(sub.id, sub.chat_id, sub.message_thread_id)
            targets[sub.id] = target
            filters[sub.id] = AlertFilters.of(sub)
        if fresh:
            self._index = SubscriptionIndex.build(pairs)
        else:
            for subscription_id in index.subscription_ids() - targets.keys():
                index.remove(subscription_id)
            for subscription_id, query in pairs:
                index.add(subscription_id, query)
        self._targets = targets
        self._filters = filters

    def add(self, subscription: ActiveSubscription, query: Query) -> None:
        if subscription.id in self._targets:
            self._index.remove(subscription.id)
        self._index.add(subscription.id, query)
        self._targets[subscription.id] = Target(
            subscription.id, subscription.chat_id, subscription.message_thread_id
        )
        self._filters[subscription.id] = AlertFilters.of(subscription)

    def remove(self, subscription_id: int) -> None:
        self._filters.pop(subscription_id, None)
        if self._targets.pop(subscription_id, None) is not None:
            self._index.remove(subscription_id)

    def update_filters(
        self,
        subscription_id: int,
        *,
        source_ids: Iterable[int] | None = _UNCHANGED,
        excluded_source_ids: Iterable[int] | None = _UNCHANGED,
        muted_until: datetime | None = _UNCHANGED,
        paused: bool = _UNCHANGED,
    ) -> bool:
        """Replaces the given filters of an indexed alert (omitted ones stay); False if not indexed.

        A paused alert stays in the index but never fires; resuming it is `paused=False`.
        """
        current = self._filters.get(subscription_id)
        if current is None or subscription_id not in self._targets:
            return False
        self._filters[subscription_id] = AlertFilters(
            source_ids=current.source_ids if source_ids is _UNCHANGED else _ids(source_ids),
            excluded_source_ids=current.excluded_source_ids
            if excluded_source_ids is _UNCHANGED
            else _ids(excluded_source_ids) or frozenset(),
            muted_until=current.muted_until if muted_until is _UNCHANGED else muted_until,
            paused=current.paused if paused is _UNCHANGED else bool(paused),
        )
        return True

    def filters(self, subscription_id: int) -> AlertFilters | None:
        return self._filters.get(subscription_id)

    def match(
        self, document: Document, *, source_id: int | None = None, now: datetime | None = None
    ) -> list[TargetedMatch]:
        """Alerts the document fires, leaving out those whose filters refuse this source or time."""
        out: list[TargetedMatch] = []
        for m in self._index.match(document):
            target = self._targets.get(m.subscription_id)
            if target is None:
                continue
            filters = self._filters.get(m.subscription_id)
            if filters is not None and not filters.allows(source_id, now):
                continue
            out.append(TargetedMatch(target, m))
        return out


def _ids(values: Iterable[int] | None) -> frozenset[int] | None:
    return None if values is None else frozenset(int(v) for v in values)

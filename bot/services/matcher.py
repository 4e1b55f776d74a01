"""The in-memory subscription index, kept in step with the database.

The index is rebuilt from the database at start and patched in place when a chat adds or removes an
alert in this process. (Issue #9 adds change notifications between processes.)
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

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


class Matcher:
    def __init__(self) -> None:
        self._index = SubscriptionIndex.build([])
        self._targets: dict[int, Target] = {}

    def __len__(self) -> int:
        return len(self._targets)

    def load(self, subscriptions: Iterable[ActiveSubscription]) -> None:
        pairs: list[tuple[int, Query]] = []
        targets: dict[int, Target] = {}
        for sub in subscriptions:
            try:
                query = parse_query(sub.query)
            except QueryError as exc:
                # A query saved under older, looser rules must not take the whole index down.
                log.warning("skipping unparsable subscription", extra={"subscription": sub.id, "error": str(exc)})
                continue
            pairs.append((sub.id, query))
            targets[sub.id] = Target(sub.id, sub.chat_id, sub.message_thread_id)
        self._index = SubscriptionIndex.build(pairs)
        self._targets = targets

    def add(self, subscription: ActiveSubscription, query: Query) -> None:
        if subscription.id in self._targets:
            self._index.remove(subscription.id)
        self._index.add(subscription.id, query)
        self._targets[subscription.id] = Target(
            subscription.id, subscription.chat_id, subscription.message_thread_id
        )

    def remove(self, subscription_id: int) -> None:
        if self._targets.pop(subscription_id, None) is not None:
            self._index.remove(subscription_id)

    def match(self, document: Document) -> list[TargetedMatch]:
        return [
            TargetedMatch(self._targets[m.subscription_id], m)
            for m in self._index.match(document)
            if m.subscription_id in self._targets
        ]

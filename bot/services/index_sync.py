"""Keeping every process's subscription index in step (issue #9).

Rules:
- A process that changes an alert patches its own index at once (as before), then publishes the
  change on a Redis pub/sub channel: ``{"op": "add"|"remove"|"update"|"reload", "id": ..., "origin": ...}``
  ("update": its pause, mute or sources changed).
- A process hearing another's change: a removal is applied in place at once; anything else (a new
  or edited alert, whose query or filters it must read) triggers a reload from the database,
  debounced so that a burst of changes costs one reload, and cheap: `Matcher.load` re-parses only
  the alerts whose query changed. Changes are published after their transaction
  committed, so the reload sees them.
- Pub/sub forgets messages sent while a subscriber is disconnected, so every `full_reload_every`
  seconds (and after every reconnection) the index is rebuilt from the database anyway: a change
  reaches every process within seconds through Redis, and within that period without it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bot.core.query import Query
from bot.db.repo import ActiveSubscription
from bot.services.matcher import Matcher

log = logging.getLogger(__name__)

DEFAULT_CHANNEL = "veille:index"


class SyncedMatcher(Matcher):
    """A `Matcher` that reports local changes to `on_change(op, subscription_id)`."""

    def __init__(self) -> None:
        super().__init__()
        self.on_change: Callable[[str, int], None] | None = None

    def add(self, subscription: ActiveSubscription, query: Query) -> None:
        super().add(subscription, query)
        if self.on_change is not None:
            self.on_change("add", subscription.id)

    def remove(self, subscription_id: int) -> None:
        super().remove(subscription_id)
        if self.on_change is not None:
            self.on_change("remove", subscription_id)

    def update_filters(self, subscription_id: int, **changes: Any) -> bool:
        """Pause, mute and source choices reach the other processes too (as a reload of the alert)."""
        changed = super().update_filters(subscription_id, **changes)
        if changed and self.on_change is not None:
            self.on_change("update", subscription_id)
        return changed

    def apply_remote_remove(self, subscription_id: int) -> None:
        """Another process removed it: patch without announcing it again."""
        Matcher.remove(self, subscription_id)


class IndexSync:
    """Publishes this process's index changes and applies the others' (see the module docstring).

    `redis` is a `redis.asyncio.Redis` or None (then only the periodic reload runs); `reload`
    rebuilds the index from the database.
    """

    def __init__(
        self,
        redis: Any,
        matcher: SyncedMatcher,
        reload: Callable[[], Awaitable[None]],
        *,
        origin: str,
        channel: str = DEFAULT_CHANNEL,
        full_reload_every: float = 60.0,
        debounce: float = 0.2,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.redis = redis
        self.matcher = matcher
        self.reload = reload
        self.origin = origin
        self.channel = channel
        self.full_reload_every = full_reload_every
        self.debounce = debounce
        self.monotonic = monotonic
        self.reloads = 0
        self.received = 0
        self._stop = asyncio.Event()
        self._reload_wanted = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._subscribed = asyncio.Event()
        matcher.on_change = self.notify

    # --- publishing ------------------------------------------------------------------------------

    def notify(self, op: str, subscription_id: int) -> None:
        """Called synchronously by the matcher: publishes in the background."""
        if self.redis is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        task = loop.create_task(self.publish(op, subscription_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def publish(self, op: str, subscription_id: int | None = None) -> None:
        message = json.dumps({"op": op, "id": subscription_id, "origin": self.origin})
        try:
            await self.redis.publish(self.channel, message)
        except Exception as exc:  # noqa: BLE001 — the periodic reload covers a lost notification
            log.warning("index change not published", extra={"op": op, "subscription": subscription_id,
                                                              "error": repr(exc)})

    # --- receiving -------------------------------------------------------------------------------

    def handle(self, raw: bytes | str) -> None:
        """Applies one message from the channel (own messages are ignored)."""
        try:
            event = json.loads(raw)
            op, origin = event["op"], event.get("origin")
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring malformed index event", extra={"event": str(raw)[:200]})
            return
        if origin == self.origin:
            return
        self.received += 1
        if op == "remove" and isinstance(event.get("id"), int):
            self.matcher.apply_remote_remove(event["id"])
        else:
            self._reload_wanted.set()

    async def wait_subscribed(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        await asyncio.wait_for(self._subscribed.wait(), timeout)

    async def run(self) -> None:
        """Listens and reloads until `stop()`; survives Redis going away and coming back."""
        reloader = asyncio.create_task(self._reload_loop(), name="index-reload")
        try:
            if self.redis is None:
                self._subscribed.set()
                await self._stop.wait()
                return
            for _ in range(1_000_000):  # bounded: one round per (re)connection
                if self._stop.is_set():
                    return
                try:
                    await self._listen()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 — reconnect, and reload for what was missed
                    log.warning("index channel lost; reconnecting", extra={"error": repr(exc)})
                    self._subscribed.clear()
                    self._reload_wanted.set()
                    try:
                        await asyncio.wait_for(self._stop.wait(), 1.0)
                    except TimeoutError:
                        pass
        finally:
            reloader.cancel()
            await asyncio.gather(reloader, return_exceptions=True)

    async def _listen(self) -> None:
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self.channel)
            self._subscribed.set()
            while not self._stop.is_set():
                message = await pubsub.get_message(timeout=0.5)
                if message is not None and message.get("type") == "message":
                    self.handle(message["data"])
        finally:
            await pubsub.aclose()

    async def _reload_loop(self) -> None:
        last = self.monotonic()
        while not self._stop.is_set():
            remaining = self.full_reload_every - (self.monotonic() - last)
            try:
                await asyncio.wait_for(self._reload_wanted.wait(), max(0.0, remaining))
                await asyncio.sleep(self.debounce)  # let a burst of changes arrive
            except TimeoutError:
                pass
            self._reload_wanted.clear()
            if self._stop.is_set():
                return
            try:
                await self.reload()
                self.reloads += 1
            except Exception:
                log.exception("index reload failed; keeping the previous index")
            last = self.monotonic()

    async def stop(self) -> None:
        self._stop.set()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

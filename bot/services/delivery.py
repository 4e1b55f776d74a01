"""Delivery: claim due outbox rows → render → pace → send → mark sent / reschedule / deactivate.

Rules:
- Nothing is sent that is not first a row in the outbox (`deliveries`); a row is marked sent in the
  same transaction that records Telegram's message_id.
- Claiming leases rows ("sending" until `lease_until`); a crash leaves them leased, and they become
  due again when the lease expires. The only message that can go out twice is one that Telegram
  accepted in the instant between the send and the commit of its row: at most one per crash.
- Per chat, rows go out in id order: a chat's rows are handled by one worker, one after the other, and
  a row is not claimed while an older row of the same chat waits for a retry.
- Several alerts waiting for the same chat (and topic) are coalesced into as few messages as fit.
- Errors follow `classify_send_error`: a 429 holds the chat (or everything) exactly as long as told and
  keeps the row; 5xx/network: capped exponential backoff with jitter; 403 and "chat not found":
  the chat is deactivated and its pending rows cancelled with the reason; a migrated group moves its
  rows to the new id; other 400s fail the row (recorded, not retried forever).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.backoff import RetryDecision, RetryKind, retry_delay
from bot.core.ratelimit import RateLimiter
from bot.core.render import AlertView, RenderedMessage, pack_alerts
from bot.db import repo
from bot.db.models import Chat, Delivery
from bot.errors import VeilleError
from bot.services.alert_views import load_alert_views

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 12


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    chat_id: int
    text: str
    message_thread_id: int | None = None
    disable_link_preview: bool = False
    subscription_ids: tuple[int, ...] = ()  # alerts: lets the sender attach per-alert buttons


class SendFailed(VeilleError):
    def __init__(self, decision: RetryDecision) -> None:
        super().__init__(decision.reason)
        self.decision = decision


class Sender(Protocol):
    """The Telegram edge. Returns the sent message's id or raises `SendFailed`."""

    async def send(self, message: OutgoingMessage) -> int: ...


@dataclass(slots=True)
class _Unit:
    """One message to send: one or several outbox rows of the same chat and topic."""

    rows: list[Delivery]
    message: RenderedMessage
    thread_id: int | None
    subscription_ids: tuple[int, ...]


@dataclass(slots=True)
class DeliveryStats:
    sent: int = 0
    rows_sent: int = 0
    retried: int = 0
    failed: int = 0
    blocked_chats: int = 0


@dataclass
class Deliverer:
    session_factory: async_sessionmaker[AsyncSession]
    sender: Sender
    limiter: RateLimiter
    clock: Callable[[], datetime]
    owner: str = "sender"
    batch_size: int = 500
    lease: timedelta = timedelta(minutes=2)
    max_concurrent_chats: int = 200
    monotonic: Callable[[], float] = time.monotonic
    stats: DeliveryStats = field(default_factory=DeliveryStats)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _stopping: bool = False

    def stop(self) -> None:
        """No new sends; a chat's remaining rows are released back to the outbox."""
        self._stopping = True

    async def drain_lock_released(self) -> None:
        """Returns once no drain is in progress (used at shutdown)."""
        async with self._lock:
            return

    async def drain_once(self) -> int:
        """Claims one batch and sends it; returns how many rows it handled. Safe to call concurrently
        (calls are serialised: one drain at a time per process)."""
        if self._lock.locked():
            return 0
        async with self._lock:
            async with self.session_factory() as session, session.begin():
                rows = await repo.claim_due_deliveries(
                    session, now=self.clock(), owner=self.owner, lease=self.lease, limit=self.batch_size
                )
                if not rows:
                    return 0
                units_by_chat = await self._build_units(session, rows)
            semaphore = asyncio.Semaphore(self.max_concurrent_chats)

            async def run_chat(chat: Chat, units: list[_Unit]) -> None:
                async with semaphore:
                    await self._deliver_chat(chat, units)

            await asyncio.gather(*(run_chat(chat, units) for chat, units in units_by_chat.values()))
            return len(rows)

    async def drain_all(self, max_rounds: int = 1000) -> int:
        handled = 0
        for _ in range(max_rounds):
            count = await self.drain_once()
            if count == 0:
                break
            handled += count
        return handled

    # --- building messages ---------------------------------------------------------------------

    async def _build_units(self, session: AsyncSession, rows: Sequence[Delivery]) -> dict[int, tuple[Chat, list[_Unit]]]:
        chats = {chat_id: await repo.get_chat(session, chat_id) for chat_id in {r.chat_id for r in rows}}
        known_chats = {chat_id: chat for chat_id, chat in chats.items() if chat is not None}
        views = await load_alert_views(session, rows, known_chats)
        result: dict[int, tuple[Chat, list[_Unit]]] = {cid: (chat, []) for cid, chat in known_chats.items()}
        pending_alerts: dict[int, list[tuple[Delivery, AlertView]]] = {}

        def flush_alerts(chat: Chat) -> None:
            batch = pending_alerts.pop(chat.id, [])
            # Coalesce only rows of the same topic; split where the topic changes, to keep order.
            groups: list[list[tuple[Delivery, AlertView]]] = []
            for item in batch:
                if groups and groups[-1][0][0].message_thread_id == item[0].message_thread_id:
                    groups[-1].append(item)
                else:
                    groups.append([item])
            for group in groups:
                for chunk, message in _bundle(group):
                    result[chat.id][1].append(
                        _Unit(
                            rows=[r for r, _ in chunk],
                            message=message,
                            thread_id=chunk[0][0].message_thread_id,
                            subscription_ids=tuple(
                                dict.fromkeys(r.subscription_id for r, _ in chunk if r.subscription_id)
                            ),
                        )
                    )

        for row in rows:
            chat = known_chats.get(row.chat_id)
            if chat is None:
                continue
            if row.id in views:
                pending_alerts.setdefault(chat.id, []).append((row, views[row.id]))
                continue
            flush_alerts(chat)
            # Notices carry their text; an alert whose article is gone has nothing left to say.
            text = row.payload or ""
            result[chat.id][1].append(
                _Unit(rows=[row], message=RenderedMessage(text=text), thread_id=row.message_thread_id,
                      subscription_ids=())
            )
        for chat in known_chats.values():
            flush_alerts(chat)
        return result

    # --- sending -------------------------------------------------------------------------------

    async def _deliver_chat(self, chat: Chat, units: list[_Unit]) -> None:
        kind = chat.type if chat.type in ("private", "group", "supergroup", "channel") else "private"
        for position, unit in enumerate(units):
            if self._stopping:
                await self._release(units[position:])
                return
            if not unit.message.text:
                async with self.session_factory() as session, session.begin():
                    for row in unit.rows:
                        await repo.fail_delivery(session, row.id, error="nothing to send (article removed)")
                continue
            await self._wait_for_slot(chat.id, kind)
            message = OutgoingMessage(
                chat_id=chat.id,
                text=unit.message.text,
                message_thread_id=unit.thread_id,
                disable_link_preview=unit.message.disable_link_preview or not chat.link_preview,
                subscription_ids=unit.subscription_ids,
            )
            try:
                message_id = await self.sender.send(message)
            except SendFailed as exc:
                await self._handle_failure(chat, unit, units[position + 1 :], exc.decision)
                return
            async with self.session_factory() as session, session.begin():
                for row in unit.rows:
                    await repo.mark_delivery_sent(session, row.id, message_id=message_id, now=self.clock())
            self.stats.sent += 1
            self.stats.rows_sent += len(unit.rows)
            log.info("sent", extra={"chat": chat.id, "rows": len(unit.rows), "message_id": message_id})

    async def _wait_for_slot(self, chat_id: int, kind: str) -> None:
        # Bounded: each wait is what the limiter says, and a reservation always succeeds eventually.
        for _ in range(100_000):
            wait = self.limiter.reserve(chat_id, kind, self.monotonic())
            if wait <= 0:
                return
            await asyncio.sleep(wait)
        raise RuntimeError("rate limiter never granted a slot")

    async def _handle_failure(
        self, chat: Chat, unit: _Unit, rest: Sequence[_Unit], decision: RetryDecision
    ) -> None:
        now = self.clock()
        error = f"{decision.kind}: {decision.reason}"
        log.warning("send failed", extra={"chat": chat.id, "kind": str(decision.kind), "reason": decision.reason})
        async with self.session_factory() as session, session.begin():
            if decision.kind == RetryKind.BLOCKED:
                cancelled = await repo.deactivate_chat(session, chat.id, decision.reason, now)
                self.stats.blocked_chats += 1
                log.info("chat deactivated", extra={"chat": chat.id, "cancelled": cancelled})
                return
            if decision.kind == RetryKind.MIGRATE and decision.migrate_to is not None:
                await repo.move_chat(session, chat.id, decision.migrate_to, now)
                return
            if decision.kind == RetryKind.RETRY_AFTER:
                wait = decision.retry_after if decision.retry_after is not None else 5.0
                self.limiter.hold_chat(chat.id, self.monotonic() + wait)
                next_at = now + timedelta(seconds=wait)
                for row in unit.rows:
                    await repo.reschedule_delivery(
                        session, row.id, error=error, next_attempt_at=next_at, count_attempt=False
                    )
                self.stats.retried += 1
            elif decision.kind == RetryKind.TRANSIENT and max(r.attempts for r in unit.rows) < MAX_ATTEMPTS:
                attempt = max(r.attempts for r in unit.rows)
                next_at = now + timedelta(seconds=retry_delay(attempt, jitter_seed=unit.rows[0].id))
                for row in unit.rows:
                    await repo.reschedule_delivery(session, row.id, error=error, next_attempt_at=next_at)
                self.stats.retried += 1
            else:
                for row in unit.rows:
                    await repo.fail_delivery(session, row.id, error=error)
                self.stats.failed += len(unit.rows)
                next_at = now
            # Later rows of this chat wait behind the one that failed, so the chat's order holds.
            for later in rest:
                for row in later.rows:
                    await repo.reschedule_delivery(
                        session, row.id, error="waiting behind an earlier message",
                        next_attempt_at=max(next_at, now), count_attempt=False,
                    )

    async def _release(self, units: Sequence[_Unit]) -> None:
        async with self.session_factory() as session, session.begin():
            for unit in units:
                for row in unit.rows:
                    await repo.reschedule_delivery(
                        session, row.id, error="released at shutdown", next_attempt_at=self.clock(),
                        count_attempt=False,
                    )


def _bundle(group: Sequence[tuple[Delivery, AlertView]]) -> list[tuple[list[tuple[Delivery, AlertView]], RenderedMessage]]:
    """Packs a chat's alerts, in order, into as few messages as fit; each message with its rows."""
    out = []
    index = 0
    for count, message in pack_alerts([view for _, view in group]):
        out.append((list(group[index : index + count]), message))
        index += count
    return out

"""Delivery: claim due outbox rows → route (now or digest) → render → pace → send → mark sent.

Rules:
- Nothing is sent that is not first a row in the outbox (`deliveries`); a row is marked sent, with
  Telegram's message_id, in a transaction committed right after Telegram answers.
- Routing (at claim time, in the claim's transaction): an alert of a daily/weekly subscription, of a
  throttled one (noise guard) or arriving in the chat's quiet hours is `held` until its release time
  (`bot.core.schedule.hold_until`); the digest tick (`bot.services.digests`) bundles it later. The
  noise guard: a chat that got `alerts_per_hour` instant alerts in the last hour has the alert that
  would exceed it switched to hourly digests for 24 h, and is told once (a notice with an undo
  button); if the chat undid it, the guard leaves that alert alone for the rest of the day.
- Per chat, rows go out in id order: a chat's claimed rows are sent one after the other by one task,
  and the claim skips a chat whose older row waits for a retry or is in flight elsewhere.
- Several alerts waiting for the same chat (and topic) are coalesced into as few messages as fit.
- Pacing: one `RateLimiter` per process (global bucket + per-chat buckets). Waiters for the global
  bucket queue behind one FIFO gate, so a thousand chats waiting for a slot cost one timer, not a
  thousand wake-ups per slot.
- Errors follow `classify_send_error`: a 429 holds the chat exactly as long as told and keeps the
  row (when two different chats get a 429 within a second, the whole bot is held); 5xx/network:
  capped exponential backoff with jitter; 403 and "chat not found": the chat is deactivated and its
  pending rows cancelled with the reason; a migrated group moves its rows to the new id; other 400s
  fail the row (recorded, not retried forever). An edit that changes nothing counts as done.

Crash safety — the bound, and why it holds:
- Every state change is a committed row update; a `kill -9` loses only what is in memory.
- A claimed row is `sending` under a lease. If the process dies, the row is claimed again once the
  lease expires, and is sent again. It was already sent only if Telegram accepted it in the window
  between the HTTP request and the commit of "sent" that follows it immediately. So a kill duplicates
  at most the messages in flight at that instant: at most `max_in_flight` (a semaphore around the
  HTTP call). With ``max_in_flight=1``, at most one duplicate per kill; tests/test_delivery_crash.py
  kills a delivering process with SIGKILL repeatedly and checks exactly this bound.
- A chat's rows still queued behind its in-flight message are only leased, never sent, so they are
  never duplicated; a worker whose claim grows old (half the lease spent) hands its unsent rows back
  rather than risk a second worker claiming them while it still sends.
- What avoids even the one duplicate where it can: edits are idempotent (re-sending the same edit
  answers "message is not modified", treated as done); digests and notices are rows like the rest, so
  a restart never re-creates them; the dedup keys make re-enqueueing a no-op. A plain send cannot be
  made idempotent: the Bot API has no idempotency key and a bot cannot read its chat history.
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

from bot.core import schedule
from bot.core.backoff import RetryDecision, RetryKind, retry_delay
from bot.core.ratelimit import RateLimiter
from bot.core.render import AlertView, RenderedMessage, escape, pack_alerts
from bot.db import outbox, repo
from bot.db.models import Chat, Delivery, Subscription
from bot.errors import VeilleError
from bot.i18n import translator
from bot.services.alert_views import load_alert_views

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 12
# Two 429s for different chats this close together mean the bot as a whole is over the limit.
_GLOBAL_FLOOD_WINDOW = 1.0


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    chat_id: int
    text: str  # HTML; for a photo or document, its caption
    message_thread_id: int | None = None
    disable_link_preview: bool = False
    subscription_ids: tuple[int, ...] = ()  # alerts: lets the sender attach per-alert buttons
    reply_markup: dict | None = None  # inline keyboard JSON, sent as is (notices, digests, broadcasts)
    photo: str | None = None  # file_id or URL: send as a photo with `text` as caption
    document: str | None = None  # file_id or URL: send as a document with `text` as caption


class SendFailed(VeilleError):
    def __init__(self, decision: RetryDecision) -> None:
        super().__init__(decision.reason)
        self.decision = decision


class Sender(Protocol):
    """The Telegram edge. `send` returns the sent message's id; both raise `SendFailed`."""

    async def send(self, message: OutgoingMessage) -> int: ...

    async def edit(
        self, chat_id: int, message_id: int, text: str, disable_link_preview: bool,
        subscription_ids: tuple[int, ...],
    ) -> None: ...


class Buttons(Protocol):
    """Inline keyboards whose callback data the Telegram layer owns (typed CallbackData there)."""

    def undo_throttle(self, subscription_id: int, label: str) -> dict: ...

    def digest_more(self, bundle: int, part: int, label: str) -> dict: ...


@dataclass(slots=True)
class _Unit:
    """One message to send (or edit): one or several outbox rows of the same chat and topic."""

    rows: list[Delivery]
    message: RenderedMessage
    thread_id: int | None
    subscription_ids: tuple[int, ...] = ()
    reply_markup: dict | None = None
    photo: str | None = None
    document: str | None = None
    edit_message_id: int | None = None


@dataclass(slots=True)
class DeliveryStats:
    sent: int = 0
    rows_sent: int = 0
    edits: int = 0
    retried: int = 0
    failed: int = 0
    blocked_chats: int = 0
    held: int = 0
    throttled: int = 0
    flood_waits: int = 0


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
    max_in_flight: int = 16
    alerts_per_hour: int = 30
    retry_base: float = 2.0
    retry_cap: float = 600.0
    buttons: Buttons | None = None
    monotonic: Callable[[], float] = time.monotonic
    stats: DeliveryStats = field(default_factory=DeliveryStats)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _gate: asyncio.Lock = field(default_factory=asyncio.Lock)
    # One write at a time from this process: SQLite has a single writer, and two hundred chat tasks
    # committing at once would only queue in its busy handler (which sleeps up to 100 ms per retry).
    _writes: asyncio.Lock = field(default_factory=asyncio.Lock)
    _in_flight: asyncio.Semaphore | None = None
    _chat_slots: asyncio.Semaphore | None = None
    _chat_tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _marks: list[tuple[list[int], int, asyncio.Future[None]]] = field(default_factory=list)
    _committer: asyncio.Task[None] | None = None
    _last_flood: tuple[int, float] | None = None
    _stopping: bool = False

    def stop(self) -> None:
        """No new sends; a chat's remaining rows are released back to the outbox."""
        self._stopping = True

    async def drain_lock_released(self) -> None:
        """Returns once no drain and no chat's sending is in progress (used at shutdown)."""
        async with self._lock:
            await self.wait_idle()

    async def drain_once(self) -> int:
        """Claims one batch and sends it; returns how many rows it handled. Safe to call concurrently
        (calls are serialised: one drain at a time per process)."""
        if self._lock.locked():
            return 0
        async with self._lock:
            if self._in_flight is None:
                self._in_flight = asyncio.Semaphore(self.max_in_flight)
            claimed_at = self.monotonic()
            async with self.session_factory() as session, session.begin():
                rows = await outbox.claim_due_deliveries(
                    session, now=self.clock(), owner=self.owner, lease=self.lease, limit=self.batch_size
                )
                if not rows:
                    return 0
                to_send = await self._route(session, rows)
                units_by_chat = await self._build_units(session, to_send)
            if self._chat_slots is None:
                self._chat_slots = asyncio.Semaphore(self.max_concurrent_chats)
            slots = self._chat_slots

            async def run_chat(chat: Chat, units: list[_Unit]) -> None:
                async with slots:
                    try:
                        await self._deliver_chat(chat, units, claimed_at)
                    except Exception:
                        # A bug, not a Telegram answer: say so loudly. The chat's rows stay leased and
                        # are retried when the lease expires, so nothing is lost.
                        log.exception("delivery to a chat crashed", extra={"chat": chat.id})

            pending = {asyncio.create_task(run_chat(chat, units)) for chat, units in units_by_chat.values()}
            self._chat_tasks |= pending
            for task in pending:
                task.add_done_callback(self._chat_tasks.discard)
            # Return when about a second of work is left, so the next claim overlaps this one's tail
            # and the global rate never idles between batches (the claim skips chats in flight).
            tail = max(1, int(self.limiter.global_per_second))
            while len(pending) > tail:
                _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            return len(rows)

    async def wait_idle(self) -> None:
        """Returns once every chat task of earlier drains has finished."""
        while self._chat_tasks:
            await asyncio.gather(*list(self._chat_tasks), return_exceptions=True)

    async def drain_all(self, max_rounds: int = 1000) -> int:
        handled = 0
        for _ in range(max_rounds):
            count = await self.drain_once()
            if count == 0:
                await self.wait_idle()
                count = await self.drain_once()  # rows released by the tail just awaited
                if count == 0:
                    break
            handled += count
        await self.wait_idle()
        return handled

    # --- routing: now, or held for a digest ----------------------------------------------------

    async def _route(self, session: AsyncSession, rows: Sequence[Delivery]) -> list[Delivery]:
        alerts = [r for r in rows if r.kind == "alert"]
        if not alerts:
            return list(rows)
        now = self.clock()
        chats = await outbox.get_chats(session, [r.chat_id for r in alerts])
        subscriptions = await outbox.get_subscriptions(session, [r.subscription_id for r in alerts if r.subscription_id])
        recent: dict[int, int] = {}
        held: dict[datetime, list[int]] = {}
        send_now: list[Delivery] = []
        for row in rows:
            chat = chats.get(row.chat_id)
            if row.kind != "alert" or chat is None:
                send_now.append(row)
                continue
            subscription = subscriptions.get(row.subscription_id or -1)
            until = schedule.hold_until(now, _timing(chat, subscription))
            if until is None and subscription is not None and self.alerts_per_hour > 0:
                if chat.id not in recent:
                    recent[chat.id] = await outbox.count_sent_alerts(session, chat.id, since=now - timedelta(hours=1))
                if schedule.over_noise_limit(recent[chat.id], self.alerts_per_hour) and await self._throttle(
                    session, chat, subscription, now
                ):
                    until = schedule.hold_until(now, _timing(chat, subscription))
            if until is None:
                recent[chat.id] = recent.get(chat.id, 0) + 1
                send_now.append(row)
            else:
                held.setdefault(until, []).append(row.id)
        for until, ids in held.items():
            await outbox.hold_deliveries(session, ids, until=until)
            self.stats.held += len(ids)
        return send_now

    async def _throttle(self, session: AsyncSession, chat: Chat, subscription: Subscription, now: datetime) -> bool:
        """Switches the alert to hourly digests and tells the chat once a day; False if the chat undid
        it today (the guard then leaves this alert alone until tomorrow)."""
        day = now.astimezone(schedule.zone(chat.timezone)).date().isoformat()
        key = f"noise:{subscription.id}:{day}"
        if await outbox.delivery_exists(session, chat.id, "notice", key):
            return False
        subscription.throttled_until = now + schedule.NOISE_GUARD_DURATION
        _ = translator(chat.language)
        name = escape(subscription.name or subscription.query)
        text = _(
            "🔕 Alert <b>{name}</b> brought more than {limit} articles in an hour, so for the next 24 hours "
            "they come together once an hour.",
            name=name, limit=self.alerts_per_hour,
        )
        markup = (
            self.buttons.undo_throttle(subscription.id, _("Send them instantly again"))
            if self.buttons is not None else None
        )
        await outbox.enqueue_deliveries(
            session,
            [outbox.NewDelivery(chat_id=chat.id, kind="notice", dedup_key=key, payload=text, reply_markup=markup,
                                subscription_id=subscription.id,
                                message_thread_id=subscription.message_thread_id)],
            now=now,
        )
        self.stats.throttled += 1
        log.info("noise guard", extra={"chat": chat.id, "subscription": subscription.id, "limit": self.alerts_per_hour})
        return True

    # --- building messages ---------------------------------------------------------------------

    async def _build_units(self, session: AsyncSession, rows: Sequence[Delivery]) -> dict[int, tuple[Chat, list[_Unit]]]:
        known_chats = await outbox.get_chats(session, [r.chat_id for r in rows])
        views = await load_alert_views(session, rows, known_chats)
        broadcasts = await outbox.get_broadcasts(session, [r.broadcast_id for r in rows if r.broadcast_id])
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
            unit = _Unit(rows=[row], message=RenderedMessage(text=row.payload or ""), thread_id=row.message_thread_id,
                         reply_markup=row.reply_markup)
            if row.kind == "edit":
                unit.edit_message_id = row.edit_message_id
                unit.subscription_ids = (row.subscription_id,) if row.subscription_id else ()
            elif row.kind == "broadcast" and row.broadcast_id in broadcasts:
                broadcast = broadcasts[row.broadcast_id]
                unit.message = RenderedMessage(text=row.payload or broadcast.text)
                unit.photo, unit.document = broadcast.photo_file_id, broadcast.document_file_id
            # An alert whose article is gone has nothing left to say (empty text: failed below).
            result[chat.id][1].append(unit)
        for chat in known_chats.values():
            flush_alerts(chat)
        return result

    # --- sending -------------------------------------------------------------------------------

    async def _deliver_chat(self, chat: Chat, units: list[_Unit], claimed_at: float) -> None:
        kind = chat.type if chat.type in ("private", "group", "supergroup", "channel") else "private"
        for position, unit in enumerate(units):
            if self._stopping or self.monotonic() - claimed_at > self.lease.total_seconds() / 2:
                await self._release(units[position:], "released untried (shutdown or lease half spent)")
                return
            if not unit.message.text and unit.photo is None and unit.document is None:
                async with self._writes, self.session_factory() as session, session.begin():
                    for row in unit.rows:
                        await outbox.fail_delivery(session, row.id, error="nothing to send (article removed)")
                continue
            await self._wait_for_slot(chat.id, kind)
            assert self._in_flight is not None
            try:
                async with self._in_flight:
                    message_id = await self._send(chat, unit)
                    # Still inside the in-flight slot: a message counts as in flight until its row is
                    # committed as sent (the crash bound in the module docstring).
                    await self._mark_sent([r.id for r in unit.rows], message_id)
            except SendFailed as exc:
                if unit.edit_message_id is not None and "message is not modified" in exc.decision.reason:
                    message_id = unit.edit_message_id
                    await self._mark_sent([r.id for r in unit.rows], message_id)
                else:
                    await self._handle_failure(chat, unit, units[position + 1 :], exc.decision)
                    return
            self.stats.sent += 1
            self.stats.rows_sent += len(unit.rows)
            log.debug("sent", extra={"chat": chat.id, "rows": len(unit.rows), "message_id": message_id})

    async def _mark_sent(self, row_ids: list[int], message_id: int) -> None:
        """Group commit: marks queued while a commit runs go together in the next one."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._marks.append((row_ids, message_id, future))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_marks())
        await future

    async def _commit_marks(self) -> None:
        for _ in range(1_000_000):  # bounded: each round commits what was queued
            if not self._marks:
                return
            batch, self._marks = self._marks, []
            try:
                async with self._writes, self.session_factory() as session, session.begin():
                    await outbox.mark_many_sent(session, [(ids, mid) for ids, mid, _ in batch], now=self.clock())
            except Exception as exc:  # noqa: BLE001 - re-raised in every waiting chat task
                for _, _, future in batch:
                    future.set_exception(exc)
                continue
            for _, _, future in batch:
                future.set_result(None)

    async def _send(self, chat: Chat, unit: _Unit) -> int:
        disable_preview = unit.message.disable_link_preview or not chat.link_preview
        if unit.edit_message_id is not None:
            await self.sender.edit(chat.id, unit.edit_message_id, unit.message.text, disable_preview,
                                   unit.subscription_ids)
            self.stats.edits += 1
            return unit.edit_message_id
        return await self.sender.send(
            OutgoingMessage(
                chat_id=chat.id,
                text=unit.message.text,
                message_thread_id=unit.thread_id,
                disable_link_preview=disable_preview,
                subscription_ids=unit.subscription_ids,
                reply_markup=unit.reply_markup,
                photo=unit.photo,
                document=unit.document,
            )
        )

    async def _wait_for_slot(self, chat_id: int, kind: str) -> None:
        """Waits for this chat's bucket alone, then queues (FIFO) for the global bucket."""
        # Bounded: each wait is what the limiter says, and a reservation always succeeds eventually.
        for _ in range(100_000):
            chat_wait = self.limiter.pacer.delay_for(chat_id, kind, self.monotonic())
            if chat_wait > 0:
                await asyncio.sleep(chat_wait)
                continue
            async with self._gate:
                for _ in range(1_000):
                    wait = self.limiter.reserve(chat_id, kind, self.monotonic())
                    if wait <= 0:
                        return
                    if self.limiter.pacer.delay_for(chat_id, kind, self.monotonic()) > 0:
                        break  # this chat was held meanwhile (a 429): wait outside the gate
                    await asyncio.sleep(wait)
        raise RuntimeError("rate limiter never granted a slot")

    async def _handle_failure(
        self, chat: Chat, unit: _Unit, rest: Sequence[_Unit], decision: RetryDecision
    ) -> None:
        now = self.clock()
        error = f"{decision.kind}: {decision.reason}"
        log.warning("send failed", extra={"chat": chat.id, "kind": str(decision.kind), "reason": decision.reason})
        async with self._writes, self.session_factory() as session, session.begin():
            if decision.kind == RetryKind.BLOCKED:
                cancelled = await repo.deactivate_chat(session, chat.id, decision.reason, now)
                self.stats.blocked_chats += 1
                log.info("chat deactivated", extra={"chat": chat.id, "cancelled": cancelled})
                return
            if decision.kind == RetryKind.MIGRATE and decision.migrate_to is not None:
                await outbox.move_chat(session, chat.id, decision.migrate_to, now)
                return
            if decision.kind == RetryKind.RETRY_AFTER:
                wait = decision.retry_after if decision.retry_after is not None else 5.0
                self._note_flood(chat.id, wait)
                next_at = now + timedelta(seconds=wait)
                for row in unit.rows:
                    await outbox.reschedule_delivery(
                        session, row.id, error=error, next_attempt_at=next_at, count_attempt=False
                    )
                self.stats.retried += 1
                self.stats.flood_waits += 1
            elif decision.kind == RetryKind.TRANSIENT and max(r.attempts for r in unit.rows) < MAX_ATTEMPTS:
                attempt = max(1, max(r.attempts for r in unit.rows))
                delay = retry_delay(attempt, base=self.retry_base, cap=self.retry_cap, jitter_seed=unit.rows[0].id)
                next_at = now + timedelta(seconds=delay)
                for row in unit.rows:
                    await outbox.reschedule_delivery(session, row.id, error=error, next_attempt_at=next_at)
                self.stats.retried += 1
            else:
                for row in unit.rows:
                    await outbox.fail_delivery(session, row.id, error=error)
                self.stats.failed += len(unit.rows)
                next_at = now
            # Later rows of this chat wait behind the one that failed, so the chat's order holds.
            later_ids = [row.id for later in rest for row in later.rows]
            if later_ids:
                await outbox.release_deliveries(session, later_ids, now=next_at, note="waiting behind an earlier message")

    def _note_flood(self, chat_id: int, wait: float) -> None:
        now = self.monotonic()
        self.limiter.hold_chat(chat_id, now + wait)
        if self._last_flood is not None and self._last_flood[0] != chat_id and now - self._last_flood[1] < _GLOBAL_FLOOD_WINDOW:
            self.limiter.hold_all(now + wait)
            log.warning("flood control for the whole bot", extra={"retry_after": wait})
        self._last_flood = (chat_id, now)

    async def _release(self, units: Sequence[_Unit], note: str) -> None:
        async with self._writes, self.session_factory() as session, session.begin():
            await outbox.release_deliveries(session, [row.id for unit in units for row in unit.rows],
                                            now=self.clock(), note=note)


def _timing(chat: Chat, subscription: Subscription | None) -> schedule.AlertTiming:
    if subscription is None:
        return schedule.AlertTiming(timezone=chat.timezone, quiet_start=chat.quiet_start, quiet_end=chat.quiet_end)
    return schedule.AlertTiming(
        mode=subscription.mode or schedule.INSTANT,
        digest_time=subscription.digest_time,
        digest_weekday=subscription.digest_weekday,
        throttled_until=subscription.throttled_until,
        timezone=chat.timezone,
        quiet_start=chat.quiet_start,
        quiet_end=chat.quiet_end,
    )


def _bundle(group: Sequence[tuple[Delivery, AlertView]]) -> list[tuple[list[tuple[Delivery, AlertView]], RenderedMessage]]:
    """Packs a chat's alerts, in order, into as few messages as fit; each message with its rows."""
    out = []
    index = 0
    for count, message in pack_alerts([view for _, view in group]):
        out.append((list(group[index : index + count]), message))
        index += count
    return out


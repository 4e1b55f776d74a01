"""How long to wait before retrying, and whether to retry at all, after a Bot API send fails.

Rules:

* `retry_delay(attempt)` is capped exponential backoff with **equal jitter**: the ceiling for retry
  number `attempt` (1 = first retry) is ``min(cap, base * 2 ** (attempt - 1))`` and the delay is drawn
  in ``[ceiling / 2, ceiling]``. Equal jitter rather than full jitter because full jitter can draw a
  delay near zero, which hammers a server that just failed; half the ceiling is always waited, the
  other half spreads retries so that thousands of chats failing together do not retry together.
  The jitter is deterministic: it is a hash of ``(jitter_seed, attempt)`` (pass the outbox row id or
  the chat id), so the same inputs always give the same delay and tests need no clock or RNG.
* `classify_send_error` turns what the Bot API answered into one `RetryDecision`:

  ========================  =============================================================
  kind                      when
  ========================  =============================================================
  ``retry_after``           429, or any answer carrying ``parameters.retry_after``: wait
                            exactly that many seconds (Telegram's flood control), then retry.
  ``migrate``               ``parameters.migrate_to_chat_id``: the group became a supergroup;
                            resend to the new id and remember it.
  ``blocked``               403 (blocked by the user, kicked, user deactivated), or a 400 that
                            says the chat is gone or unwritable ("chat not found", ...): stop
                            sending to this chat; retrying cannot help.
  ``transient``             5xx, status 0 (no HTTP answer: network error, timeout), 401/404/409
                            (wrong token or API URL: a deployment problem, so nothing is
                            dropped; the loop retries with `retry_delay` and logs loudly).
  ``permanent``             any other 400 ("can't parse entities", "message is too long"):
                            our message is wrong; retrying the same bytes cannot help, the chat
                            is fine.
  ========================  =============================================================

Telegram's error catalogue: https://core.telegram.org/bots/api#making-requests and
https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from enum import StrEnum

# 2**64 times any sane base already exceeds any sane cap; stops float overflow for absurd attempts.
_MAX_DOUBLINGS = 64

# A 400 with one of these fragments means the chat cannot receive messages from us any more.
_CHAT_GONE_FRAGMENTS = (
    "chat not found",
    "user not found",
    "user is deactivated",
    "bot was blocked",
    "bot was kicked",
    "bot is not a member",
    "group chat was deactivated",
    "not enough rights to send",
    "have no rights to send",
    "chat_write_forbidden",
    "peer_id_invalid",
    "chat_restricted",
)

_RETRY_AFTER_IN_TEXT = re.compile(r"retry after (\d+(?:\.\d+)?)", re.IGNORECASE)


def retry_delay(attempt: int, *, base: float = 2.0, cap: float = 600.0, jitter_seed: int) -> float:
    """Seconds to wait before retry number `attempt` (1-based); always within [ceiling/2, ceiling]."""
    if attempt < 1:
        raise ValueError(f"attempt counts retries from 1, got {attempt}")
    if base <= 0 or cap <= 0:
        raise ValueError(f"base and cap must be positive, got base={base} cap={cap}")
    ceiling = min(cap, base * 2.0 ** min(attempt - 1, _MAX_DOUBLINGS))
    return ceiling / 2.0 + (ceiling / 2.0) * _unit_interval(jitter_seed, attempt)


def _unit_interval(seed: int, attempt: int) -> float:
    """A stable pseudo-random number in [0, 1) derived from the inputs only (not Python's hash())."""
    digest = hashlib.blake2b(f"{seed}:{attempt}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


class RetryKind(StrEnum):
    RETRY_AFTER = "retry_after"
    TRANSIENT = "transient"
    BLOCKED = "blocked"
    MIGRATE = "migrate"
    PERMANENT = "permanent"


@dataclass(frozen=True, slots=True)
class RetryDecision:
    """What to do with a message whose send failed.

    `retry_after` is set only for kind ``retry_after`` (seconds, exactly as Telegram asked; ``None``
    if a 429 came without a figure, then fall back to `retry_delay`). `migrate_to` is set only for
    kind ``migrate``. `reason` is the Bot API description, for logs.
    """

    kind: RetryKind
    reason: str
    retry_after: float | None = None
    migrate_to: int | None = None

    @property
    def should_retry(self) -> bool:
        """True when sending again later (or to the migrated chat) can succeed."""
        return self.kind in (RetryKind.RETRY_AFTER, RetryKind.TRANSIENT, RetryKind.MIGRATE)


def classify_send_error(
    status: int, description: str, retry_after: float | None, migrate_to: int | None
) -> RetryDecision:
    """Decide from the HTTP status and Bot API fields; `status` 0 means no HTTP answer at all."""
    if retry_after is not None or status == 429:
        if retry_after is None:
            found = _RETRY_AFTER_IN_TEXT.search(description)
            retry_after = float(found.group(1)) if found else None
        return RetryDecision(RetryKind.RETRY_AFTER, description, retry_after=retry_after)
    if migrate_to is not None:
        return RetryDecision(RetryKind.MIGRATE, description, migrate_to=migrate_to)
    if status == 403:
        return RetryDecision(RetryKind.BLOCKED, description)
    if status == 0 or status >= 500 or status in (401, 404, 409):
        return RetryDecision(RetryKind.TRANSIENT, description)
    lowered = description.lower()
    if any(fragment in lowered for fragment in _CHAT_GONE_FRAGMENTS):
        return RetryDecision(RetryKind.BLOCKED, description)
    return RetryDecision(RetryKind.PERMANENT, description)

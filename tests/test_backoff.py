"""Retry delays (capped exponential, equal jitter) and the classification of Bot API send errors."""

import pytest

from bot.core.backoff import RetryDecision, RetryKind, classify_send_error, retry_delay


@pytest.mark.parametrize(
    ("attempt", "base", "cap", "ceiling"),
    [
        (1, 2.0, 600.0, 2.0),
        (2, 2.0, 600.0, 4.0),
        (3, 2.0, 600.0, 8.0),
        (9, 2.0, 600.0, 512.0),
        (10, 2.0, 600.0, 600.0),
        (50, 2.0, 600.0, 600.0),
        (10_000, 2.0, 600.0, 600.0),
        (1, 0.5, 10.0, 0.5),
        (5, 0.5, 10.0, 8.0),
        (6, 0.5, 10.0, 10.0),
    ],
)
def test_delay_lies_between_half_the_ceiling_and_the_ceiling(attempt, base, cap, ceiling):
    for seed in range(200):
        delay = retry_delay(attempt, base=base, cap=cap, jitter_seed=seed)
        assert ceiling / 2 <= delay <= ceiling


def test_same_inputs_give_the_same_delay():
    assert retry_delay(4, jitter_seed=12345) == retry_delay(4, jitter_seed=12345)


def test_jitter_spreads_chats_that_fail_together():
    delays = {retry_delay(3, jitter_seed=chat_id) for chat_id in range(1000)}
    assert len(delays) > 990
    assert min(delays) < 4.0 + 0.2 and max(delays) > 8.0 - 0.2


def test_jitter_differs_between_attempts_of_one_chat():
    fractions = {retry_delay(a, base=1.0, cap=1.0, jitter_seed=7) for a in range(1, 50)}
    assert len(fractions) > 45


def test_delays_grow_until_the_cap():
    ceilings = [2 * retry_delay(a, jitter_seed=1) >= 2.0 ** a for a in range(1, 9)]
    assert all(ceilings)


@pytest.mark.parametrize("attempt", [0, -1])
def test_attempts_count_from_one(attempt):
    with pytest.raises(ValueError):
        retry_delay(attempt, jitter_seed=1)


R, T, B, M, P = (RetryKind.RETRY_AFTER, RetryKind.TRANSIENT, RetryKind.BLOCKED, RetryKind.MIGRATE,
                 RetryKind.PERMANENT)


@pytest.mark.parametrize(
    ("status", "description", "retry_after", "migrate_to", "kind", "expected_after", "expected_migrate"),
    [
        (429, "Too Many Requests: retry after 5", 5, None, R, 5, None),
        (429, "Too Many Requests: retry after 7", None, None, R, 7.0, None),
        (429, "Too Many Requests", None, None, R, None, None),
        (400, "Bad Request: group chat was upgraded to a supergroup chat", None, -1001234, M, None, -1001234),
        (403, "Forbidden: bot was blocked by the user", None, None, B, None, None),
        (403, "Forbidden: user is deactivated", None, None, B, None, None),
        (403, "Forbidden: bot was kicked from the group chat", None, None, B, None, None),
        (403, "Forbidden: bot can't initiate conversation with a user", None, None, B, None, None),
        (400, "Bad Request: chat not found", None, None, B, None, None),
        (400, "Bad Request: not enough rights to send text messages to the chat", None, None, B, None, None),
        (400, "Bad Request: CHAT_WRITE_FORBIDDEN", None, None, B, None, None),
        (400, "Bad Request: can't parse entities: Unsupported start tag \"div\" at byte offset 0",
         None, None, P, None, None),
        (400, "Bad Request: message is too long", None, None, P, None, None),
        (400, "Bad Request: message text is empty", None, None, P, None, None),
        (413, "Request Entity Too Large", None, None, P, None, None),
        (500, "Internal Server Error", None, None, T, None, None),
        (502, "Bad Gateway", None, None, T, None, None),
        (0, "ClientConnectorError: connection refused", None, None, T, None, None),
        (401, "Unauthorized", None, None, T, None, None),
        (404, "Not Found", None, None, T, None, None),
    ],
)
def test_send_errors_are_classified_as_telegram_means_them(
    status, description, retry_after, migrate_to, kind, expected_after, expected_migrate
):
    decision = classify_send_error(status, description, retry_after, migrate_to)
    assert decision == RetryDecision(kind, description, retry_after=expected_after, migrate_to=expected_migrate)


@pytest.mark.parametrize(("kind", "should_retry"), [(R, True), (T, True), (M, True), (B, False), (P, False)])
def test_only_retry_after_transient_and_migrate_are_worth_retrying(kind, should_retry):
    assert RetryDecision(kind, "x").should_retry is should_retry

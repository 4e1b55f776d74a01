"""WebSub's pure decisions: discovery, signatures, verification answers, leases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.core.websub import (
    MAX_LEASE,
    MIN_LEASE,
    REQUESTED_LEASE,
    WebSubLinks,
    callback_url,
    check_verification,
    discover_websub,
    lease_expiry,
    needs_renewal,
    parse_link_header,
    sign,
    signature_valid,
    subscription_form,
)

FEED = "https://news.example/feed.xml"
NOW = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('<https://hub.example/>; rel="hub"', [("https://hub.example/", {"hub"})]),
        ("<https://hub.example/>; rel=hub, <https://news.example/feed>; rel=self",
         [("https://hub.example/", {"hub"}), ("https://news.example/feed", {"self"})]),
        ('<https://a/>; rel="hub self"', [("https://a/", {"hub", "self"})]),
        ('<https://a/>; title="x; y, <z>"; REL="Hub"', [("https://a/", {"hub"})]),
        ("<https://a/>", [("https://a/", set())]),
        ("garbage", []),
        ("<unterminated", []),
        ("", []),
    ],
)
def test_link_header_is_parsed_into_targets_and_rels(header: str, expected: list) -> None:
    assert [(t, set(r)) for t, r in parse_link_header(header)] == expected


@pytest.mark.parametrize(
    ("hub", "self_url", "headers", "expected"),
    [
        (None, None, (), None),
        ("https://hub.example/", None, (), WebSubLinks("https://hub.example/", FEED)),
        ("https://hub.example/", "https://news.example/rss", (),
         WebSubLinks("https://hub.example/", "https://news.example/rss")),
        # Link headers win over the document
        ("https://doc-hub.example/", "https://news.example/doc-self",
         ('<https://header-hub.example/>; rel="hub"', '<https://news.example/header-self>; rel="self"'),
         WebSubLinks("https://header-hub.example/", "https://news.example/header-self")),
        (None, None, ('</hub>; rel="hub"',), WebSubLinks("https://news.example/hub", FEED)),
        ("ftp://hub.example/", None, (), None),
        ("javascript:alert(1)", None, (), None),
        ("   ", None, (), None),
    ],
)
def test_hub_and_topic_are_discovered_headers_first(hub, self_url, headers, expected) -> None:  # noqa: ANN001
    assert discover_websub(feed_url=FEED, hub_url=hub, self_url=self_url, link_headers=headers) == expected


BODY = "<feed>Arménie, l’OTAN</feed>".encode()


@pytest.mark.parametrize("method", ["sha1", "sha256", "sha384", "sha512"])
def test_signature_of_each_method_is_accepted(method: str) -> None:
    assert signature_valid("s3cret", BODY, sign("s3cret", BODY, method))
    assert signature_valid(b"s3cret", BODY, sign("s3cret", BODY, method).upper().replace("SHA", "sha"))


@pytest.mark.parametrize(
    ("secret", "header"),
    [
        ("s3cret", None),
        ("s3cret", ""),
        (None, sign("s3cret", BODY)),
        ("", "sha1=00"),
        ("other", sign("s3cret", BODY)),
        ("s3cret", sign("s3cret", BODY + b" ")),
        ("s3cret", sign("s3cret", BODY).replace("sha256", "md5")),
        ("s3cret", sign("s3cret", BODY).replace("sha256=", "sha256")),
        ("s3cret", "sha256=" + "é" * 64),
        ("s3cret", sign("s3cret", BODY)[:-2]),
    ],
)
def test_bad_or_missing_signature_is_refused(secret, header) -> None:  # noqa: ANN001
    assert not signature_valid(secret, BODY, header)


TOPIC = "https://news.example/feed.xml"


@pytest.mark.parametrize(
    ("params", "expected_mode", "status", "body", "mode"),
    [
        ({"hub.mode": "subscribe", "hub.topic": TOPIC, "hub.challenge": "abc", "hub.lease_seconds": "3600"},
         "subscribe", 200, "abc", "subscribe"),
        ({"hub.mode": "unsubscribe", "hub.topic": TOPIC, "hub.challenge": "xyz"}, "unsubscribe", 200, "xyz",
         "unsubscribe"),
        ({"hub.mode": "subscribe", "hub.topic": TOPIC + "?x", "hub.challenge": "abc"}, "subscribe", 404, "", None),
        ({"hub.mode": "unsubscribe", "hub.topic": TOPIC, "hub.challenge": "abc"}, "subscribe", 404, "", None),
        ({"hub.mode": "subscribe", "hub.topic": TOPIC, "hub.challenge": "abc"}, "unsubscribe", 404, "", None),
        ({"hub.mode": "subscribe", "hub.topic": TOPIC}, "subscribe", 404, "", None),
        ({"hub.mode": "denied", "hub.topic": TOPIC, "hub.reason": "no"}, "subscribe", 200, "", "denied"),
        ({}, "subscribe", 404, "", None),
    ],
)
def test_verification_echoes_the_challenge_only_for_what_was_asked(params, expected_mode, status, body, mode) -> None:  # noqa: ANN001, E501
    answer = check_verification(params, topic=TOPIC, expected_mode=expected_mode)
    assert (answer.status, answer.body, answer.mode) == (status, body, mode)


def test_verification_reads_the_granted_lease() -> None:
    answer = check_verification({"hub.mode": "subscribe", "hub.topic": TOPIC, "hub.challenge": "c",
                                 "hub.lease_seconds": "86400"}, topic=TOPIC, expected_mode="subscribe")
    assert answer.lease_seconds == 86400
    bad = check_verification({"hub.mode": "subscribe", "hub.topic": TOPIC, "hub.challenge": "c",
                              "hub.lease_seconds": "soon"}, topic=TOPIC, expected_mode="subscribe")
    assert bad.lease_seconds is None


@pytest.mark.parametrize(
    ("lease_seconds", "expected"),
    [(3600, timedelta(hours=1)), (None, REQUESTED_LEASE), (1, MIN_LEASE), (-5, MIN_LEASE),
     (10**9, MAX_LEASE)],
)
def test_lease_expiry_is_bounded(lease_seconds, expected) -> None:  # noqa: ANN001
    assert lease_expiry(NOW, lease_seconds) == NOW + expected


@pytest.mark.parametrize(
    ("expires_at", "renew"),
    [
        (None, True),
        (NOW - timedelta(seconds=1), True),
        (NOW + timedelta(minutes=59), True),
        (NOW + timedelta(hours=1), True),
        (NOW + timedelta(hours=1, seconds=1), False),
        (NOW + timedelta(days=9), False),
    ],
)
def test_renewal_is_due_within_an_hour_of_expiry(expires_at, renew) -> None:  # noqa: ANN001
    assert needs_renewal(NOW, expires_at) is renew


def test_renewal_margin_is_a_parameter() -> None:
    assert needs_renewal(NOW, NOW + timedelta(days=2), margin=timedelta(days=3))
    assert not needs_renewal(NOW, NOW + timedelta(days=2), margin=timedelta(days=1))


def test_callback_is_on_the_public_origin() -> None:
    assert callback_url("https://bot.example:8443/telegram/webhook?x=1", 42) == "https://bot.example:8443/websub/42"


def test_subscription_form_carries_lease_and_secret_only_when_subscribing() -> None:
    form = subscription_form(mode="subscribe", topic=TOPIC, callback="https://b/websub/1", secret="s",
                             lease=timedelta(days=2))
    assert form == {"hub.callback": "https://b/websub/1", "hub.mode": "subscribe", "hub.topic": TOPIC,
                    "hub.lease_seconds": "172800", "hub.secret": "s"}
    assert subscription_form(mode="unsubscribe", topic=TOPIC, callback="c", secret="s") == {
        "hub.callback": "c", "hub.mode": "unsubscribe", "hub.topic": TOPIC}


def test_hub_of_fetch_reads_every_link_header_of_a_multidict() -> None:
    from multidict import CIMultiDict, CIMultiDictProxy

    from bot.core.websub import hub_of_fetch

    headers = CIMultiDictProxy(CIMultiDict([("Link", '<https://n/feed>; rel="self"'),
                                            ("link", '<https://hub.example/>; rel="hub"')]))
    assert hub_of_fetch(fetched_url=FEED, hub_url=None, self_url=None, headers=headers) == "https://hub.example/"
    assert hub_of_fetch(fetched_url=FEED, hub_url="/h", self_url=None, headers={}) == "https://news.example/h"
    assert hub_of_fetch(fetched_url=FEED, hub_url=None, self_url=None, headers=None) is None

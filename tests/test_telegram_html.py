"""The strict Telegram-HTML checker accepts what Telegram accepts and refuses the rest, with a reason."""

from __future__ import annotations

import pytest

from tests.telegram_html import check_telegram_html, visible_length, visible_text

VALID = [
    "plain text",
    "<b>bold</b> <strong>strong</strong> <i>i</i> <em>em</em> <u>u</u> <ins>ins</ins>",
    "<s>s</s> <strike>strike</strike> <del>del</del> <tg-spoiler>x</tg-spoiler>",
    '<span class="tg-spoiler">hidden</span>',
    '<a href="https://example.org/?a=1&amp;b=2">link</a>',
    "<a href='https://example.org/'>single quotes</a>",
    '<b><a href="http://example.org">bold link</a></b>',
    '<a href="tg://user?id=1">user</a>',
    '<tg-emoji emoji-id="5368324170671202286">👍</tg-emoji>',
    "<code>x &lt; y</code>",
    "<pre>block</pre>",
    '<pre><code class="language-python">print(1)</code></pre>',
    "<blockquote>quote</blockquote>",
    "<blockquote expandable>long quote</blockquote>",
    'AT&amp;T &lt;script&gt; &quot;quoted&quot; &#38; &#x26; "raw quotes are fine"',
    "<b>bold <i>and italic <u>and underlined</u></i></b>",
    "emoji 🔎 and RTL مرحبا and accents é",
]

INVALID = [
    ("", "empty"),
    ("   \n ", "empty"),
    ("<b></b>", "empty"),
    ("<br>", "not allowed"),
    ("<p>para</p>", "not allowed"),
    ("<script>alert(1)</script>", "not allowed"),
    ("<B>upper</B>", "lower case"),
    ("<b>unclosed", "left open"),
    ("closed</b>", "closes nothing"),
    ("<b><i>crossed</b></i>", "closes nothing"),
    ("<b/>", "self-closing"),
    ("<b class='x'>attr</b>", "takes no attributes"),
    ("<a>no href</a>", "href"),
    ('<a href="">empty</a>', "href"),
    ('<a href="javascript:alert(1)">js</a>', "Telegram accepts"),
    ("<a href=https://example.org>unquoted</a>", "cannot read attributes"),
    ('<a href="https://e.org" title="t">extra</a>', "exactly one"),
    ('<a href="https://e.org/?a=1&b=2">raw amp</a>', "starts no allowed entity"),
    ('<a href="https://e.org"><a href="https://f.org">x</a></a>', "inside another link"),
    ('<span class="bold">x</span>', "tg-spoiler"),
    ("<tg-emoji>👍</tg-emoji>", "emoji-id"),
    ('<code class="language-python">x</code>', "directly inside pre"),
    ("<pre><b>x</b></pre>", "inside code/pre"),
    ("<code><i>x</i></code>", "inside code/pre"),
    ("<blockquote><blockquote>x</blockquote></blockquote>", "inside another blockquote"),
    ('<blockquote expandable="yes">x</blockquote>', "bare attribute"),
    ("AT&T", "starts no allowed entity"),
    ("&nbsp;", "starts no allowed entity"),
    ("&amp", "starts no allowed entity"),
    ("&#0;", "not a valid character"),
    ("&#xD800;", "not a valid character"),
    ("1 < 2", "is not a tag"),
    ("2 > 1", "must be &gt;"),
    ("x" * 4097, "more than 4096"),
    ("🔎" * 2049, "more than 4096"),
]


@pytest.mark.parametrize("text", VALID)
def test_valid_messages_pass(text: str) -> None:
    check_telegram_html(text)


@pytest.mark.parametrize(("text", "reason"), INVALID)
def test_invalid_messages_are_refused_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(AssertionError, match=reason):
        check_telegram_html(text)


@pytest.mark.parametrize(
    ("text", "length"),
    [
        ("abc", 3),
        ("<b>abc</b>", 3),
        ("&lt;&amp;&gt;&quot;", 4),
        ('<a href="https://example.org/very/long/url">x</a>', 1),
        ("🔎", 2),  # outside the BMP: a surrogate pair
        ("é", 1),
        ("👨‍👩‍👧", 8),  # three emoji joined by two zero-width joiners
        ("x" * 4096, 4096),
    ],
)
def test_visible_length_counts_utf16_units_after_parsing(text: str, length: int) -> None:
    assert visible_length(text) == length


def test_visible_text_decodes_entities_and_drops_tags() -> None:
    assert visible_text('<b>AT&amp;T</b> <a href="https://e.org/?a&amp;b">&#x1F50E;</a>') == "AT&T 🔎"


def test_max_length_can_be_lowered() -> None:
    check_telegram_html("x" * 10, max_length=10)
    with pytest.raises(AssertionError, match="more than 9"):
        check_telegram_html("x" * 10, max_length=9)

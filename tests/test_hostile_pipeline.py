"""Hostile feed items end to end (issue #10, "Hostile input"): through the real poller (HTTP fetch, parse,
store, match, outbox) and the real deliverer to the fake Bot API, whose strict Telegram HTML check
answers 400 to any message Telegram itself would refuse.

Every hostile item that carries the subscribed word arrives as an alert Telegram accepts; markup in it
is removed or escaped, never passed on as markup; no `javascript:` link; a 1 MB title is cut to fit one message;
invisible (zero-width, bidi) characters are removed; invalid UTF-8 does not stop the feed. XML bombs
(billion laughs, external entities) are refused without expansion and without fetching anything.
"""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import select

from bot.app import App
from bot.db.models import Source
from bot.settings import Settings
from tests.fakes.feed_server import FeedServer
from tests.fakes.telegram_api import MAX_TEXT, FakeTelegram
from tests.telegram_html import check_telegram_html

CHAT = 9301
EMPTY = b"<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>t</title></channel></rss>"


def rss(items: str, encoding: str = "utf-8") -> bytes:
    head = f"<?xml version='1.0' encoding='{encoding}'?><rss version='2.0'><channel><title>Hostile</title>"
    return head.encode() + items.encode("utf-8", "surrogateescape") + b"</channel></rss>"


def item(token: str, title: str, description: str = "", link: str | None = None) -> str:
    link = link if link is not None else f"https://news.example.org/{token}"
    return (f"<item><title>{title}</title><link>{link}</link><guid isPermaLink='false'>{token}</guid>"
            f"<description>{description}</description></item>")


MEGABYTE = "Ô" * (1024 * 1024)
HOSTILE_ITEMS = {
    "hx01": item("hx01", "Zorglub hx01 &lt;script&gt;alert(1)&lt;/script&gt;",
                 "&lt;script src=//evil.example/x.js&gt;&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"),
    "hx02": item("hx02", "Zorglub hx02 AT&amp;T &amp;amp; &amp;lt;b&amp;gt; &amp;#0; &amp;#xD800; &amp;nbsp;",
                 "&amp;copy; &amp;eacute; &amp;bogus; &amp;#x110000; &amp;"),
    "hx03": item("hx03", "Zorglub hx03 " + MEGABYTE, MEGABYTE),
    "hx04": item("hx04", "Zorglub hx04 \u200b\u200c\u200d\u2060\ufeff \u202eevil\u202c \u2066iso\u2069 \u061c",
                 "bidi \u202d\u202a\u202b text"),
    "hx05": item("hx05", "Zorglub hx05 &lt;/a&gt;&lt;a href='https://evil.example'&gt;click&lt;/a&gt;",
                 "&lt;b&gt;unclosed &lt;i&gt;tags &lt;pre&gt;&lt;code class=x&gt;", link="javascript:alert(1)"),
    "hx06": item("hx06", "<![CDATA[Zorglub hx06 <b>bold</b> <tg-spoiler>x</tg-spoiler> ]]>",
                 "<![CDATA[<blockquote expandable>quote</blockquote> <span class='x'>y</span>]]>"),
    "hx07": item("hx07", "Zorglub hx07 " + "👨\u200d👩\u200d👧 e\u0301\u0301\u0301 " * 300,
                 "\U0001f1eb\U0001f1f7" * 2000),
    "hx08": item("hx08", "Zorglub hx08 \x1b[31mred\x1b[0m tab\there", "control \x7f\x85 chars"),
    "hx09": item("hx09", "Zorglub hx09 data link", link="data:text/html,<script>alert(1)</script>"),
}
# Invalid UTF-8 in the middle of a feed that declares UTF-8.
BROKEN_UTF8 = rss(item("hx10", "Zorglub hx10 caf\udce9 \udcff\udcfe fin"))
BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'.encode()
               for i in range(1, 10))
    + b']><rss version="2.0"><channel><title>t</title><item><title>Zorglub hx11 &lol9;</title>'
    b"<guid>hx11</guid></item></channel></rss>"
)


def external_entity(url: str) -> bytes:
    return (f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY xxe SYSTEM "{url}">'
            f'<!ENTITY file SYSTEM "file:///etc/passwd">]><rss version="2.0"><channel><title>t</title>'
            f"<item><title>Zorglub hx12 &xxe; &file;</title><guid>hx12</guid></item></channel></rss>").encode()


def parameter_entity(url: str) -> bytes:
    return (f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY % remote SYSTEM "{url}"> %remote;]>'
            "<rss version='2.0'><channel><title>t</title><item><title>Zorglub hx13</title><guid>hx13</guid>"
            "</item></channel></rss>").encode()


async def test_hostile_items_become_alerts_telegram_accepts_and_bombs_never_expand(
    tmp_path: Path, database_url: str
) -> None:
    paths = ("/hostile.xml", "/utf8.xml", "/laughs.xml", "/xxe.xml", "/param.xml")
    async with FakeTelegram() as fake, FeedServer() as feeds:
        for path in paths:
            feeds.set(path, EMPTY)
        feeds.set("/secret", b"TOP-SECRET-hx99", content_type="text/plain")
        sources = tmp_path / "sources.toml"
        sources.write_text("".join(f'[[source]]\nname = "Src {p[1:-4]}"\nurl = "{feeds.url(p)}"\nlanguage = "fr"\n'
                                   for p in paths), encoding="utf-8")
        app = App.build(Settings(
            bot_token=fake.token, telegram_api_url=fake.base_url, database_url=database_url,
            sources_file=sources, poll_interval=1, poll_max_interval=2, poll_tick=0.2, delivery_tick=0.2,
            allow_private_networks=True, fetch_full_text=False, alerts_per_hour=0, private_chat_rate=20,
        ))
        await app.start()
        try:
            fake.push_message(CHAT, "/subscribe Zorglub", language_code="fr")
            await fake.wait_for_messages(1, chat_id=CHAT, timeout=20)
            await fake.wait_until(lambda: all(feeds.hits(p) >= 2 for p in paths), timeout=30, what="first polls")

            feeds.set("/hostile.xml", rss("".join(HOSTILE_ITEMS.values())))
            feeds.set("/utf8.xml", BROKEN_UTF8)
            feeds.set("/laughs.xml", BILLION_LAUGHS)
            feeds.set("/xxe.xml", external_entity(feeds.url("/secret")))
            feeds.set("/param.xml", parameter_entity(feeds.url("/secret")))
            wanted = [*HOSTILE_ITEMS, "hx10"]

            def arrived() -> set[str]:
                return {t for m in fake.sent(CHAT) for t in wanted if t in (m.text or "")}

            await fake.wait_until(lambda: arrived() == set(wanted), timeout=60,
                                  what=f"alerts for every hostile item (got {sorted(arrived())})")
            bombs_polled = {p: feeds.hits(p) for p in ("/laughs.xml", "/xxe.xml", "/param.xml")}
            await fake.wait_until(lambda: all(feeds.hits(p) >= n + 2 for p, n in bombs_polled.items()),
                                  timeout=30, what="two more polls of each bomb")
            await app.deliverer.drain_all()
            async with app.core.session_factory() as session:
                rows = (await session.execute(select(Source.url, Source.last_error_kind, Source.error_streak)
                                              .where(Source.url.in_([feeds.url(p) for p in bombs_polled])))).all()
        finally:
            await app.stop()

    alerts = [m for m in fake.sent(CHAT) if "hx" in (m.text or "")]
    assert [e for e in fake.errors if e.status == 400] == [], "Telegram refused a message"
    for message in alerts:
        check_telegram_html(message.text)  # what the fake already enforced, asserted here too
        assert len(message.visible_text) <= MAX_TEXT
        hrefs = re.findall(r'href="([^"]*)"', message.text)
        assert all(h.startswith(("https://", "http://")) for h in hrefs), hrefs
        for forbidden in ("<script", "<img", "onerror=", "javascript:", "data:text", "evil.example'>",
                          "\u200b", "\u202e", "\u2066", "\x1b", "\ufeff", "TOP-SECRET", "root:x:0", "lollol"):
            assert forbidden not in message.text, (forbidden, message.text[:300])
    text = {t: next(m.visible_text for m in alerts if t in m.text) for t in wanted}
    assert "Zorglub hx01" in text["hx01"]  # a title's markup is removed (RSS titles are HTML), never passed on
    assert "AT&T" in text["hx02"]
    assert "Ô" * 50 in text["hx03"]
    assert "evil" in text["hx04"] and "caf" in text["hx10"]
    assert not any(t in m.text for m in fake.sent() for t in ("hx11", "hx12", "hx13")), "a bomb produced an alert"
    assert feeds.hits("/secret") == 0, "an external entity was fetched"
    assert {kind for _, kind, _ in rows} == {"parse"} and all(streak >= 1 for *_, streak in rows), rows

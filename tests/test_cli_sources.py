"""`veille sources …` against a real feed server: add (with discovery), list, disable/enable, remove,
OPML export and import; private addresses refused unless allowed."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from tests.fakes.feed_server import FeedServer

FEED = """<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Le Fil Info</title>
<link>https://fil.example/</link><description>x</description><language>fr-FR</language>
<item><title>Un</title><link>https://fil.example/1</link><guid>1</guid></item></channel></rss>"""

PAGE = """<!doctype html><html><head><title>Le Fil</title>
<link rel="alternate" type="application/rss+xml" title="Le Fil" href="/rss.xml"></head><body>Accueil</body></html>"""


async def veille(tmp_path: Path, database_url: str, *args: str, allow_private: bool = True) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VEILLE_")}
    env.update(VEILLE_DATABASE_URL=database_url, VEILLE_CONFIG_FILE=str(tmp_path / "none.toml"),
               VEILLE_SOURCES_FILE=str(tmp_path / "no-sources.toml"),
               VEILLE_ALLOW_PRIVATE_NETWORKS="true" if allow_private else "false", VEILLE_LOG_LEVEL="WARNING")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args, cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    return process.returncode, out.decode(), err.decode()


@pytest.fixture
async def feeds():
    async with FeedServer() as server:
        server.set("/rss.xml", FEED)
        server.set("/", PAGE, content_type="text/html; charset=utf-8")
        yield server


async def test_sources_lifecycle_from_the_command_line(tmp_path: Path, database_url: str, feeds: FeedServer) -> None:
    code, out, err = await veille(tmp_path, database_url, "sources", "add", feeds.url("/rss.xml"))
    assert code == 0, err
    assert "added: Le Fil Info" in out and "1 items" in out

    code, out, _ = await veille(tmp_path, database_url, "sources", "list")
    assert code == 0 and "Le Fil Info" in out and "[fr]" in out and "enabled" in out

    code, out, _ = await veille(tmp_path, database_url, "sources", "disable", "1")
    assert code == 0 and "disabled source 1" in out
    code, out, _ = await veille(tmp_path, database_url, "sources", "list")
    assert "DISABLED" in out
    code, out, _ = await veille(tmp_path, database_url, "sources", "enable", "1")
    assert code == 0 and "enabled source 1" in out

    opml = tmp_path / "sources.opml"
    code, out, _ = await veille(tmp_path, database_url, "sources", "export", str(opml))
    assert code == 0 and "exported 1 sources" in out
    assert b'xmlUrl="' + feeds.url("/rss.xml").encode() in opml.read_bytes()

    code, out, _ = await veille(tmp_path, database_url, "sources", "remove", "1")
    assert code == 0 and "removed source 1" in out
    code, out, _ = await veille(tmp_path, database_url, "sources", "list")
    assert "no sources" in out

    code, out, err = await veille(tmp_path, database_url, "sources", "import", str(opml))
    assert code == 0, err
    assert "1 added" in out
    code, out, _ = await veille(tmp_path, database_url, "sources", "list")
    assert "Le Fil Info" in out


async def test_adding_a_web_page_explains_and_offers_the_feeds_found(
    tmp_path: Path, database_url: str, feeds: FeedServer
) -> None:
    code, _, err = await veille(tmp_path, database_url, "sources", "add", feeds.url("/"))
    assert code == 1
    assert "web page, not a feed" in err
    assert feeds.url("/rss.xml") in err


async def test_a_private_address_is_refused_without_the_setting(
    tmp_path: Path, database_url: str, feeds: FeedServer
) -> None:
    code, _, err = await veille(tmp_path, database_url, "sources", "add", feeds.url("/rss.xml"), allow_private=False)
    assert code == 1
    assert feeds.hits("/rss.xml") == 0
    assert "Traceback" not in err and err.strip()


async def test_unknown_source_id_is_a_clear_error(tmp_path: Path, database_url: str) -> None:
    code, _, err = await veille(tmp_path, database_url, "sources", "remove", "42")
    assert code == 1 and "no source '42'" in err

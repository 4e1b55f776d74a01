"""Test doubles at Veille's network edge: real HTTP servers on 127.0.0.1 that real clients talk to."""

from tests.fakes.feed_server import FeedServer
from tests.fakes.telegram_api import FakeTelegram, SentMessage, check_telegram_html

__all__ = ["FakeTelegram", "FeedServer", "SentMessage", "check_telegram_html"]

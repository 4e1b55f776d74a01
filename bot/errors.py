"""One root exception for everything Veille raises on purpose.

Library errors (aiohttp, aiogram, SQLAlchemy, lxml) are translated into these at the edge that
talks to the library, so the rest of the code catches `VeilleError` and nothing broader.
"""


class VeilleError(Exception):
    """Base of every error Veille raises deliberately; its message is meant for people."""


class ConfigError(VeilleError):
    """A setting is missing or wrong; the message names it and says how to fix it."""

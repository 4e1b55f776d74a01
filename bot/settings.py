"""Veille's settings: one typed object, read once by the composition root.

Sources, highest priority first: environment variables (`VEILLE_*`), a `.env` file in the working
directory, the TOML file `config/veille.toml` (or the path in `VEILLE_CONFIG_FILE`), then defaults.
The names are a contract with deployments and outside test harnesses (issue #2): never rename one.

A wrong setting is a `ConfigError` whose one-line message names the setting and the fix; unknown keys
in the TOML file are errors (a typo there is silent otherwise), while unknown `VEILLE_*` environment
variables only warn, so a newer deployment script never breaks an older build.
"""

from __future__ import annotations

import logging
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from bot.errors import ConfigError

ENV_PREFIX = "VEILLE_"
CONFIG_FILE_ENV = "VEILLE_CONFIG_FILE"
DEFAULT_CONFIG_FILE = "config/veille.toml"

log = logging.getLogger(__name__)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        validate_default=True,
    )

    # --- core (issue #2) -------------------------------------------------------------------
    bot_token: SecretStr | None = Field(None, description="Bot token from @BotFather (required for `run`).")
    telegram_api_url: str = Field("https://api.telegram.org", description="Bot API base URL.")
    database_url: str = Field("sqlite+aiosqlite:///veille.db", description="SQLAlchemy async URL.")
    admin_ids: Annotated[frozenset[int], NoDecode] = Field(
        frozenset(), description="Comma-separated Telegram user ids of the admins."
    )
    sources_file: Path = Field(Path("config/sources.toml"), description="Sources loaded at start.")
    poll_interval: float = Field(300, ge=1, description="A new source's starting poll interval, seconds.")
    allow_private_networks: bool = Field(False, description="Allow fetching loopback/private addresses.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"

    # --- sources (issue #3) ----------------------------------------------------------------
    poll_min_interval: float = Field(60, ge=1, description="Lower bound of any computed poll interval.")
    poll_max_interval: float = Field(6 * 3600, ge=1, description="Upper bound of any computed interval.")
    poll_tick: float = Field(1.0, gt=0, le=60, description="Seconds between scheduler looks for due sources.")
    contact_url: str | None = Field(None, description="URL named in the User-Agent so sites can reach you.")
    fetch_concurrency: int = Field(50, ge=1, le=2000, description="Fetches in flight at once.")
    fetch_per_host: int = Field(4, ge=1, le=100, description="Fetches in flight per host.")
    fetch_timeout: float = Field(30, gt=0, description="Total seconds for one fetch.")
    fetch_connect_timeout: float = Field(10, gt=0, description="Seconds to connect.")
    fetch_max_bytes: int = Field(10 * 1024 * 1024, ge=1024, description="Body size cap, bytes.")
    fetch_full_text: bool = Field(True, description="Fetch the article page when an item is only a teaser.")
    source_error_limit: int = Field(10, ge=1, description="Consecutive failures before a source is disabled.")

    # --- matching, chat (issues #4, #6) ----------------------------------------------------
    max_query_length: int = Field(500, ge=10, le=4000)
    max_query_terms: int = Field(30, ge=1, le=200)
    max_alerts_per_chat: int = Field(50, ge=1)
    commands_per_minute: int = Field(20, ge=1)
    sources_proposed_per_day: int = Field(5, ge=0, description="Feeds one user may propose per day.")
    default_language: Literal["fr", "en"] = "fr"
    default_timezone: str = "Europe/Paris"

    # --- summaries, stories (issue #5) -----------------------------------------------------
    summary_max_chars: int = Field(400, ge=80, le=3000)
    link_preview: bool = Field(True, description="Show a link preview under alerts.")

    # --- delivery (issue #7) ---------------------------------------------------------------
    send_rate: float = Field(30, gt=0, description="Messages per second for the whole bot.")
    private_chat_rate: float = Field(1, gt=0, description="Messages per second to one private chat.")
    group_chat_per_minute: float = Field(20, gt=0, description="Messages per minute to one group/channel.")
    alerts_per_hour: int = Field(30, ge=0, description="Instant alerts per chat and hour before digest; 0=off.")
    delivery_tick: float = Field(1.0, gt=0, le=60, description="Seconds between outbox drains.")
    delivery_max_in_flight: int = Field(
        16, ge=1, le=64,
        description="Sends in flight at once per process; also the most messages a crash (kill -9) can "
        "duplicate. 1 means at most one duplicate per kill, at the cost of throughput (one send at a time).",
    )

    # --- admins (issue #8) -----------------------------------------------------------------
    admin_digest_schedule: str | None = Field(None, description='Daily admin digest time, "08:00 Europe/Paris".')
    admin_digest_chat: str | None = Field(None, description="Where the scheduled admin digest goes: @channel or id.")

    # --- scale-out (issue #9) --------------------------------------------------------------
    redis_url: str | None = None
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    http_port: int | None = Field(None, ge=0, le=65535)
    poll_lease: float = Field(300, gt=0, description="Seconds a poller holds a source before others may take it.")
    delivery_lease: float = Field(120, gt=0, description="Seconds a sender holds claimed outbox rows.")

    @field_validator("admin_digest_schedule")
    @classmethod
    def _digest_schedule(cls, value: str | None) -> str | None:
        if value:
            from bot.services.admin import parse_schedule

            parse_schedule(value)  # ValueError names the problem
        return value or None

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: Any) -> Any:
        if isinstance(value, str):
            parts = [p.strip() for p in value.replace(";", ",").split(",")]
            try:
                return frozenset(int(p) for p in parts if p)
            except ValueError:
                raise ValueError("expected comma-separated numeric Telegram user ids, e.g. 12345,67890") from None
        if isinstance(value, int):
            return frozenset({value})
        return value

    @field_validator("telegram_api_url", "contact_url", "webhook_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"{value!r} is not an http(s) URL, e.g. https://api.telegram.org")
        return value.rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError(
                f"{value!r} is not a database URL; use sqlite+aiosqlite:///veille.db "
                "or postgresql+asyncpg://user@host/db"
            ) from None
        if url.drivername not in ("sqlite+aiosqlite", "postgresql+asyncpg"):
            raise ValueError(
                f"driver {url.drivername!r} is not supported; use sqlite+aiosqlite:// or postgresql+asyncpg://"
            )
        return value

    @field_validator("default_timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone, e.g. Europe/Paris") from None
        return value

    @model_validator(mode="after")
    def _interval_bounds(self) -> Settings:
        if self.effective_min_interval > self.poll_max_interval:
            raise ValueError("poll_min_interval (or a lower poll_interval) must not exceed poll_max_interval")
        return self

    @property
    def effective_min_interval(self) -> float:
        """A poll interval set below the minimum (tests use 1 s) lowers the minimum with it."""
        return min(self.poll_min_interval, self.poll_interval)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        config_file = Path(os.environ.get(CONFIG_FILE_ENV, DEFAULT_CONFIG_FILE))
        return init_settings, env_settings, dotenv_settings, _TomlSource(settings_cls, config_file)


class _TomlSource(PydanticBaseSettingsSource):
    """Reads `config/veille.toml`; keys are the setting names without the prefix (`poll_interval = 60`)."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path) -> None:
        super().__init__(settings_cls)
        self.path = path
        self.values: dict[str, Any] = {}
        if not path.is_file():
            return
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc}); fix the file or remove it") from None
        known = set(settings_cls.model_fields)
        for key, value in data.items():
            if key.lower() not in known:
                raise ConfigError(
                    f"{path}: unknown setting {key!r}; see config/veille.example.toml for the valid names"
                )
            self.values[key.lower()] = value

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self.values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self.values)


def unknown_environment_keys(environ: Mapping[str, str]) -> list[str]:
    known = {ENV_PREFIX + name.upper() for name in Settings.model_fields} | {CONFIG_FILE_ENV}
    # Test-harness variables share the prefix on purpose and are not settings.
    ignored_prefixes = ("VEILLE_TEST_",)
    return sorted(
        key
        for key in environ
        if key.upper().startswith(ENV_PREFIX)
        and key.upper() not in known
        and not key.upper().startswith(ignored_prefixes)
    )


def load_settings(**overrides: Any) -> Settings:
    """Build the settings or raise `ConfigError` with a one-line message naming the culprit."""
    for key in unknown_environment_keys(os.environ):
        log.warning("ignoring unknown environment variable %s (not a Veille setting in this version)", key)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(p) for p in error["loc"]) or "settings"
        message = error["msg"].removeprefix("Value error, ")
        name = ENV_PREFIX + field.upper() if field in Settings.model_fields else field
        raise ConfigError(f"{name}: {message}") from None


def require_token(settings: Settings) -> str:
    if settings.bot_token is None or not settings.bot_token.get_secret_value().strip():
        raise ConfigError(
            "VEILLE_BOT_TOKEN is not set: get a token from @BotFather and run "
            "`VEILLE_BOT_TOKEN=123456:ABC... veille run` (or put it in .env)"
        )
    token = settings.bot_token.get_secret_value().strip()
    if ":" not in token:
        raise ConfigError("VEILLE_BOT_TOKEN does not look like a bot token (expected 123456:ABC...)")
    return token

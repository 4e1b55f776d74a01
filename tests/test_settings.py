"""Settings: names are a contract; wrong values give one line that names the setting; env wins."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.settings import load_settings, require_token, unknown_environment_keys


def test_defaults_match_the_documented_contract() -> None:
    settings = load_settings()
    assert settings.telegram_api_url == "https://api.telegram.org"
    assert settings.database_url == "sqlite+aiosqlite:///veille.db"
    assert settings.admin_ids == frozenset()
    assert settings.sources_file == Path("config/sources.toml")
    assert settings.poll_interval == 300
    assert settings.allow_private_networks is False
    assert (settings.log_level, settings.log_format) == ("INFO", "text")
    assert (settings.poll_min_interval, settings.poll_max_interval) == (60, 6 * 3600)
    assert settings.alerts_per_hour == 30


def test_environment_values_are_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VEILLE_ADMIN_IDS", "12345, 67890")
    monkeypatch.setenv("VEILLE_POLL_INTERVAL", "1")
    monkeypatch.setenv("VEILLE_ALLOW_PRIVATE_NETWORKS", "true")
    monkeypatch.setenv("VEILLE_LOG_FORMAT", "json")
    settings = load_settings()
    assert settings.admin_ids == frozenset({12345, 67890})
    assert settings.poll_interval == 1
    assert settings.effective_min_interval == 1  # a 1 s test interval lowers the minimum with it
    assert settings.allow_private_networks is True
    assert settings.log_format == "json"


def test_environment_wins_over_the_toml_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "veille.toml"
    config.write_text('poll_interval = 120\nlog_level = "DEBUG"\n', encoding="utf-8")
    monkeypatch.setenv("VEILLE_CONFIG_FILE", str(config))
    monkeypatch.setenv("VEILLE_POLL_INTERVAL", "30")
    settings = load_settings()
    assert settings.poll_interval == 30
    assert settings.log_level == "DEBUG"


def test_dotenv_file_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("VEILLE_ADMIN_IDS=42\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert load_settings().admin_ids == frozenset({42})


@pytest.mark.parametrize(
    ("env", "value", "expected"),
    [
        ("VEILLE_DATABASE_URL", "not a url", "VEILLE_DATABASE_URL"),
        ("VEILLE_DATABASE_URL", "mysql://root@localhost/veille", "not supported"),
        ("VEILLE_TELEGRAM_API_URL", "ftp://example.org", "VEILLE_TELEGRAM_API_URL"),
        ("VEILLE_ADMIN_IDS", "alice,bob", "numeric Telegram user ids"),
        ("VEILLE_POLL_INTERVAL", "0", "VEILLE_POLL_INTERVAL"),
        ("VEILLE_LOG_FORMAT", "xml", "VEILLE_LOG_FORMAT"),
    ],
)
def test_a_wrong_value_names_the_setting(monkeypatch: pytest.MonkeyPatch, env: str, value: str, expected: str) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)


def test_unknown_toml_key_is_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "veille.toml"
    config.write_text("pol_interval = 60\n", encoding="utf-8")
    monkeypatch.setenv("VEILLE_CONFIG_FILE", str(config))
    with pytest.raises(ConfigError, match="unknown setting 'pol_interval'"):
        load_settings()


def test_unknown_environment_variables_only_warn(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VEILLE_FUTURE_SETTING", "1")
    assert unknown_environment_keys({"VEILLE_FUTURE_SETTING": "1", "VEILLE_POLL_INTERVAL": "5",
                                     "VEILLE_TEST_DATABASE_URL": "x"}) == ["VEILLE_FUTURE_SETTING"]
    load_settings()
    assert "VEILLE_FUTURE_SETTING" in caplog.text


def test_missing_token_is_explained() -> None:
    with pytest.raises(ConfigError, match="VEILLE_BOT_TOKEN is not set"):
        require_token(load_settings())


def _veille(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=60
    )


def _clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("VEILLE_")}
    env["VEILLE_CONFIG_FILE"] = str(tmp_path / "none.toml")
    env.update(extra)
    return env


def test_run_without_token_exits_2_with_one_line(tmp_path: Path) -> None:
    result = _veille("run", env=_clean_env(tmp_path), cwd=tmp_path)
    assert result.returncode == 2
    assert "VEILLE_BOT_TOKEN" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_malformed_database_url_exits_2(tmp_path: Path) -> None:
    result = _veille("run", env=_clean_env(tmp_path, VEILLE_BOT_TOKEN="1:a", VEILLE_DATABASE_URL="nope"),
                     cwd=tmp_path)
    assert result.returncode == 2
    assert "VEILLE_DATABASE_URL" in result.stderr and "Traceback" not in result.stderr


def test_unknown_toml_key_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "veille.toml"
    config.write_text("bot_tokn = 'x'\n", encoding="utf-8")
    result = _veille("db", "current", env=_clean_env(tmp_path, VEILLE_CONFIG_FILE=str(config)), cwd=tmp_path)
    assert result.returncode == 2
    assert "bot_tokn" in result.stderr and "Traceback" not in result.stderr


def test_help_lists_the_commands(tmp_path: Path) -> None:
    result = _veille("--help", env=_clean_env(tmp_path), cwd=tmp_path)
    assert result.returncode == 0
    for command in ("run", "db", "sources", "preview"):
        assert command in result.stdout

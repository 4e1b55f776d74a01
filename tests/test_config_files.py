"""The shipped configuration files: every setting documented, the sources file valid."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from bot.core.catalogue import parse_catalogue
from bot.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_is_documented_in_the_example_file() -> None:
    example = (ROOT / "config" / "veille.example.toml").read_text(encoding="utf-8")
    documented = set(re.findall(r"^# ([a-z_]+) = ", example, flags=re.MULTILINE))
    assert documented == set(Settings.model_fields)


def test_the_example_file_with_every_line_uncommented_is_valid(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    example = (ROOT / "config" / "veille.example.toml").read_text(encoding="utf-8")
    active = "\n".join(line[2:] for line in example.splitlines() if re.match(r"^# [a-z_]+ = ", line))
    tomllib.loads(active)
    config = tmp_path / "veille.toml"
    config.write_text(active, encoding="utf-8")
    monkeypatch.setenv("VEILLE_CONFIG_FILE", str(config))
    settings = Settings()
    assert settings.admin_ids == frozenset({12345, 67890})


def test_the_core_settings_are_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in ("BOT_TOKEN", "TELEGRAM_API_URL", "DATABASE_URL", "ADMIN_IDS", "SOURCES_FILE", "POLL_INTERVAL",
                 "ALLOW_PRIVATE_NETWORKS", "LOG_LEVEL", "LOG_FORMAT"):
        assert f"VEILLE_{name}" in readme


def test_the_default_sources_are_real_french_and_english_feeds() -> None:
    specs = parse_catalogue((ROOT / "config" / "sources.toml").read_text(encoding="utf-8"))
    assert len(specs) >= 15
    assert {s.language for s in specs} == {"fr", "en"}
    assert all(s.url.startswith("https://") and s.name for s in specs)
    names = " ".join(s.name for s in specs)
    for outlet in ("Le Monde", "France 24", "RFI", "franceinfo", "Euronews", "EU Reporter", "BBC", "Guardian"):
        assert outlet in names

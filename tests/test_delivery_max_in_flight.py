"""`VEILLE_DELIVERY_MAX_IN_FLIGHT`: the sends in flight per process, hence the most messages a kill can
duplicate (docs/delivery.md, "Crash safety"). It reaches the App's deliverer; values outside 1..64 are
one line naming the setting. The bound itself is proved by tests/test_reliability_kill.py (the whole
`veille run` SIGKILLed, the setting at 1) and tests/test_delivery_crash.py (a deliverer alone)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.app import App
from bot.errors import ConfigError
from bot.settings import load_settings


async def deliverer_bound(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, value: str | None) -> int:
    monkeypatch.setenv("VEILLE_BOT_TOKEN", "123456:unused-token")
    monkeypatch.setenv("VEILLE_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'veille.db'}")
    if value is not None:
        monkeypatch.setenv("VEILLE_DELIVERY_MAX_IN_FLIGHT", value)
    app = App.build(load_settings())
    try:
        return app.deliverer.max_in_flight
    finally:
        await app.bot.session.close()
        await app.core.close()


@pytest.mark.parametrize(("value", "expected"), [(None, 16), ("1", 1), ("64", 64)])
async def test_the_setting_reaches_the_deliverer(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, value: str | None, expected: int
) -> None:
    assert await deliverer_bound(monkeypatch, tmp_path, value) == expected


@pytest.mark.parametrize("value", ["0", "65", "many"])
def test_a_value_outside_one_to_sixty_four_names_the_setting(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("VEILLE_DELIVERY_MAX_IN_FLIGHT", value)
    with pytest.raises(ConfigError, match="^VEILLE_DELIVERY_MAX_IN_FLIGHT: "):
        load_settings()

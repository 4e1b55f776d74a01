"""The deployment examples (deploy/): no Docker engine or systemd runs here, so these checks read the
files: the compose file parses and names the right services, roles and settings; the Dockerfile copies
paths that exist; the systemd unit runs a valid role."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.app import role_parts
from bot.settings import unknown_environment_keys

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


@pytest.fixture
def compose() -> dict:
    yaml = pytest.importorskip("yaml", reason="PyYAML is needed to parse docker-compose.yml")
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text(encoding="utf-8"))


def test_compose_runs_postgres_redis_one_bot_and_two_workers(compose: dict) -> None:
    services = compose["services"]
    assert {"postgres", "redis", "bot", "worker-1", "worker-2"} <= set(services)
    roles = {name: s["command"][s["command"].index("--role") + 1] for name, s in services.items()
             if "command" in s and "--role" in s["command"]}
    assert roles == {"bot": "bot", "worker-1": "poller,sender", "worker-2": "poller,sender"}
    for role in roles.values():
        role_parts(role)  # a role `veille run` accepts
    for name in roles:
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_compose_names_only_real_settings_and_the_scaleout_ones(compose: dict) -> None:
    for name in ("bot", "worker-1", "worker-2"):
        environment = compose["services"][name]["environment"]
        assert unknown_environment_keys(environment) == [], name
        assert environment["VEILLE_DATABASE_URL"].startswith("postgresql+asyncpg://")
        assert environment["VEILLE_REDIS_URL"].startswith("redis://")
        assert "VEILLE_HTTP_PORT" in environment
    bot = compose["services"]["bot"]["environment"]
    assert "VEILLE_WEBHOOK_URL" in bot and "VEILLE_WEBHOOK_SECRET" in bot


def test_dockerfile_copies_existing_paths_and_checks_health() -> None:
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    root = DEPLOY.parent
    for line in re.findall(r"^COPY (.+)$", text, flags=re.M):
        for source in line.split()[:-1]:
            assert (root / source).exists(), source
    assert "/healthz" in text and 'ENTRYPOINT ["veille"]' in text


def test_systemd_unit_runs_the_instance_role() -> None:
    text = (DEPLOY / "veille.service").read_text(encoding="utf-8")
    assert re.search(r"^ExecStart=.*veille run --role %i$", text, flags=re.M)
    assert "KillSignal=SIGTERM" in text
    for instance in re.findall(r"veille@([a-z]+)", text):
        role_parts(instance)

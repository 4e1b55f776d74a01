"""The HTTP server for operations (issue #9), on `VEILLE_HTTP_PORT`:

- `GET /healthz`: liveness; 200 as long as the event loop answers.
- `GET /readyz`: readiness; 200 when every check (database, Redis if configured, Telegram) answers
  within `check_timeout` seconds, else 503; the body names each check's result.
- `GET /metrics`: Prometheus text format.
- the Telegram webhook route, when webhook mode is on (added by `bot.telegram.webhook`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

from bot.metrics import Metrics

log = logging.getLogger(__name__)

Check = Callable[[], Awaitable[object]]


class OpsServer:
    def __init__(
        self,
        *,
        metrics: Metrics,
        checks: Mapping[str, Check],
        host: str = "0.0.0.0",  # noqa: S104 — a container's port must be reachable from outside it
        port: int = 8080,
        check_timeout: float = 3.0,
    ) -> None:
        self.metrics = metrics
        self.checks = dict(checks)
        self.host = host
        self.requested_port = port
        self.check_timeout = check_timeout
        self.app = web.Application()
        self.app.router.add_get("/healthz", self._healthz)
        self.app.router.add_get("/readyz", self._readyz)
        self.app.router.add_get("/metrics", self._metrics)
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.requested_port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        log.info("http server started", extra={"host": self.host, "port": self.port})

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def _run_check(self, check: Check) -> str:
        try:
            await asyncio.wait_for(check(), self.check_timeout)
        except TimeoutError:
            return f"timeout after {self.check_timeout}s"
        except Exception as exc:  # noqa: BLE001 — a failing dependency is the answer, not a crash
            return f"error: {type(exc).__name__}: {exc}"[:300]
        return "ok"

    async def readiness(self) -> dict[str, str]:
        names = list(self.checks)
        results = await asyncio.gather(*(self._run_check(self.checks[n]) for n in names))
        return dict(zip(names, results, strict=True))

    async def _readyz(self, request: web.Request) -> web.Response:
        results = await self.readiness()
        ready = all(r == "ok" for r in results.values())
        if not ready:
            log.warning("not ready", extra={k: v for k, v in results.items() if v != "ok"})
        return web.Response(
            text=json.dumps({"ready": ready, "checks": results}) + "\n",
            status=200 if ready else 503,
            content_type="application/json",
        )

    async def _metrics(self, request: web.Request) -> web.Response:
        body, content_type = self.metrics.render()
        response = web.Response(body=body)
        response.headers["Content-Type"] = content_type
        return response

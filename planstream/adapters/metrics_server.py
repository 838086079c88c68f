"""The metrics endpoint of every planstream process: ``GET /metrics`` and ``GET /healthz``.

A small aiohttp server on ``metrics_host:metrics_port`` (off when the port is 0), in the
process's own event loop: if that loop is wedged, the probe gets no answer at all, which a
liveness probe counts as a failure too. ``/metrics`` is the Prometheus text format of the
default registry (``planstream.services.metrics`` and the client's process collectors; a
replay process's every series labelled ``mode="replay"``);
``/healthz`` is 200 while the process's ``Liveness`` saw progress within ``liveness_s``, 503
after; a process that has none to give (the ingress) is live while its loop answers. Outside
the API: no authentication, no ``/v1``, not on the ingress's port.
"""

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from planstream.services import metrics
from planstream.settings import Settings

__all__ = ["Liveness", "serving_metrics", "start_metrics_server"]

log = logging.getLogger(__name__)


class Liveness:
    """When the process last made progress (a consumer's fetch, a handled event, a sweep).

    Progress counts from creation, so a process is live for its first ``period_s`` while it
    starts. ``clock`` is monotonic seconds (a test passes its own).
    """

    def __init__(self, period_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.period_s = period_s
        self._clock = clock
        self._last = clock()

    def beat(self) -> None:
        """Record progress now."""
        self._last = self._clock()

    def age_s(self) -> float:
        """Seconds since the last progress."""
        return max(0.0, self._clock() - self._last)

    def alive(self) -> bool:
        """Whether the last progress is within the period."""
        return self.age_s() <= self.period_s


_LIVENESS = web.AppKey("liveness", Liveness)


async def _metrics(request: web.Request) -> web.Response:
    return web.Response(
        body=generate_latest(metrics.exposed()), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )


async def _healthz(request: web.Request) -> web.Response:
    liveness = request.app.get(_LIVENESS)
    if liveness is None:
        # A process with no loop of its own to watch (the ingress): its event loop answering
        # this request is the liveness there is; an idle server is a live one.
        return web.json_response({"status": "ok", "progress": "event loop answering"})
    age = round(liveness.age_s(), 3)
    if liveness.alive():
        return web.json_response({"status": "ok", "last_progress_s": age})
    body = {"status": "stalled", "last_progress_s": age, "liveness_s": liveness.period_s}
    return web.json_response(body, status=503)


async def start_metrics_server(
    settings: Settings, service: str, liveness: Liveness | None = None
) -> web.AppRunner | None:
    """Serve the endpoint for ``service``; None when ``metrics_port`` is 0. The caller stops it
    with ``runner.cleanup()``. Marks the process as started either way (build info)."""
    metrics.mark_started(service)
    if settings.metrics_port == 0:
        return None
    app = web.Application()
    if liveness is not None:
        app[_LIVENESS] = liveness
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/healthz", _healthz)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, settings.metrics_host, settings.metrics_port)
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        raise
    log.info(
        "%s: metrics on http://%s:%d/metrics",
        service,
        settings.metrics_host,
        settings.metrics_port,
    )
    return runner


@asynccontextmanager
async def serving_metrics(
    settings: Settings, service: str, liveness: Liveness | None = None
) -> AsyncIterator[None]:
    """The endpoint for ``service`` inside the block (none when ``metrics_port`` is 0)."""
    runner = await start_metrics_server(settings, service, liveness)
    try:
        yield
    finally:
        if runner is not None:
            await runner.cleanup()

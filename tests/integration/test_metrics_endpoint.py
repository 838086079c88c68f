"""The metrics endpoint on a real loopback port: /metrics in Prometheus text, /healthz 200 while
the process makes progress and 503 once it stalls; and the ingress's request middleware counting
by route template, never by path. No stack needed."""

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from planstream.adapters.http.request_metrics import request_metrics
from planstream.adapters.metrics_server import Liveness, start_metrics_server
from planstream.dev.isolation import free_port
from planstream.services import metrics
from planstream.settings import Settings


class StepClock:
    """Monotonic seconds that move only when the test moves them."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def endpoint() -> AsyncIterator[tuple[str, Liveness, StepClock]]:
    settings = Settings(metrics_port=free_port(), liveness_s=30)
    clock = StepClock()
    liveness = Liveness(settings.liveness_s, clock)
    runner = await start_metrics_server(settings, "image_io", liveness)
    assert runner is not None
    yield f"http://127.0.0.1:{settings.metrics_port}", liveness, clock
    await runner.cleanup()


async def _get(url: str) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, response.headers["Content-Type"], await response.text()


async def test_metrics_are_served_in_the_prometheus_text_format(endpoint) -> None:
    base, _, _ = endpoint
    status, content_type, body = await _get(f"{base}/metrics")

    assert status == 200 and content_type.startswith("text/plain")
    assert 'planstream_build_info{service="image_io",version="0.1.0"} 1.0' in body
    assert "# TYPE planstream_step_seconds histogram" in body


async def test_healthz_turns_503_when_progress_stops_and_200_when_it_resumes(endpoint) -> None:
    base, liveness, clock = endpoint
    assert (await _get(f"{base}/healthz"))[0] == 200

    clock.now += 31  # no fetch, no handled event for longer than liveness_s
    status, _, body = await _get(f"{base}/healthz")
    assert status == 503 and '"stalled"' in body

    liveness.beat()
    assert (await _get(f"{base}/healthz"))[0] == 200


async def test_a_process_without_a_progress_signal_is_live_while_it_answers() -> None:
    """The ingress: an idle server is a live one, however long nobody calls it."""
    settings = Settings(metrics_port=free_port(), liveness_s=30)
    runner = await start_metrics_server(settings, "ingress")
    assert runner is not None
    try:
        status, _, body = await _get(f"http://127.0.0.1:{settings.metrics_port}/healthz")
    finally:
        await runner.cleanup()
    assert status == 200 and '"event loop answering"' in body


async def test_a_zero_port_serves_nothing() -> None:
    assert await start_metrics_server(Settings(metrics_port=0), "sweeper") is None


async def test_requests_are_counted_by_route_template_and_status() -> None:
    async def show(request: web.Request) -> web.Response:
        if request.match_info["run_id"] == "run_missing":
            raise web.HTTPNotFound()
        return web.json_response({})

    app = web.Application(middlewares=[request_metrics])
    app.router.add_get("/v1/runs/{run_id}", show)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    route = "/v1/runs/{run_id}"

    def count(route: str, status: str) -> float:
        labels = {"route": route, "status": status}
        return metrics.REGISTRY.get_sample_value("planstream_http_requests_total", labels) or 0.0

    before = (count(route, "200"), count(route, "404"), count("unmatched", "404"))
    try:
        for path in ("/v1/runs/run_a", "/v1/runs/run_b", "/v1/runs/run_missing", "/nowhere"):
            await _get(f"http://127.0.0.1:{port}{path}")
    finally:
        await runner.cleanup()
    after = (count(route, "200"), count(route, "404"), count("unmatched", "404"))

    assert [b - a for a, b in zip(before, after, strict=True)] == [2, 1, 1]
    paths = [
        sample.labels["route"]
        for family in metrics.REGISTRY.collect()
        if family.name == "planstream_http_requests"
        for sample in family.samples
    ]
    assert not [p for p in paths if "run_a" in p or "nowhere" in p]  # never a path

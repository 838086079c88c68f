"""A Faust worker's liveness is its consumer's: FlowSafeConsumer's fetch loop beats while it goes
round (idle included), and stops beating when a stuck agent holds it up, so /healthz says 503.

In-process Faust apps on the real broker (the probe app of ``test_consumer``), a liveness whose
clock the test moves: "no progress for longer than liveness_s" is made by moving the clock, and
only a beat of the fetch loop can make the process live again.
"""

import asyncio
import uuid

import aiohttp
import pytest

from planstream.adapters.metrics_server import Liveness, start_metrics_server
from planstream.dev.isolation import free_port
from planstream.settings import Settings
from tests.integration.test_consumer import _app, _ProbeApp, _produce, _topic
from tests.stackkit import wait_for

LIVENESS_S = 60.0


class StepClock:
    """Monotonic seconds that move only when the test moves them."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def _stuck_app(
    settings: Settings, topic: str, seen: list[int], release: asyncio.Event
) -> _ProbeApp:
    """A probe app (stream buffer of 1) whose agent holds its first message until ``release``."""
    datadir = settings.work_dir / "faust"
    datadir.mkdir(parents=True, exist_ok=True)
    app = _ProbeApp(
        f"planstream-liveness-probe-{uuid.uuid4().hex[:8]}",
        settings=settings,
        datadir=str(datadir / "{conf.name}-data"),
        broker=f"kafka://{settings.kafka_bootstrap}",
        store="memory://",
        stream_buffer_maxsize=1,
        web_enabled=False,
        autodiscover=False,
        topic_disable_leader=True,
    )

    @app.agent(app.topic(topic, key_serializer="raw", value_serializer="raw"))
    async def probe(stream):  # type: ignore[no-untyped-def]
        async for value in stream:
            seen.append(int(value))
            await release.wait()

    app.finalize()
    return app


@pytest.mark.timeout(120)
async def test_an_idle_consumer_stays_live_by_its_fetch_loop(settings: Settings) -> None:
    topic = await _topic(settings)
    app = _app(settings, topic, [], pause_s=0.0)
    clock = StepClock()
    app.liveness = Liveness(LIVENESS_S, clock)  # type: ignore[attr-defined]
    await app.start()
    try:
        clock.now += 10 * LIVENESS_S  # nothing beat for ten periods: stalled...
        assert not app.liveness.alive()  # type: ignore[attr-defined]

        async def live_again() -> bool:  # ...until the idle fetch loop goes round once more
            return bool(app.liveness.alive())  # type: ignore[attr-defined]

        await wait_for(live_again, timeout_s=30)
    finally:
        await app.stop()


@pytest.mark.timeout(120)
async def test_healthz_is_503_while_a_stuck_agent_holds_the_consumer_up(
    settings: Settings,
) -> None:
    topic = await _topic(settings)
    seen: list[int] = []
    release = asyncio.Event()
    app = _stuck_app(settings, topic, seen, release)
    clock = StepClock()
    liveness = Liveness(LIVENESS_S, clock)
    app.liveness = liveness  # type: ignore[attr-defined]
    endpoint = settings.with_overrides(metrics_port=free_port())
    runner = await start_metrics_server(endpoint, "probe", liveness)
    assert runner is not None
    url = f"http://127.0.0.1:{endpoint.metrics_port}/healthz"
    await app.start()
    try:
        await _produce(settings, topic, messages=10)  # the buffer holds 1: the fetch loop blocks

        async def stuck() -> bool:  # the agent holds message 0, the buffer holds message 1
            tp = next(iter(app.consumer.assignment()), None)
            return seen == [0] and tp is not None and (app.consumer._read_offset[tp] or 0) >= 1

        await wait_for(stuck, timeout_s=30)
        clock.now += 10 * LIVENESS_S
        await asyncio.sleep(3)  # three idle fetch periods: a running loop would have beaten
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            assert response.status == 503, await response.text()
    finally:
        release.set()
        await runner.cleanup()
        await app.stop()

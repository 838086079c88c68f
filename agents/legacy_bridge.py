"""Legacy bridge agent: step attempts routed to the old run-pipeline-step function in; its
decision and the run's next step out (docs/migration.md)."""

from functools import partial

from planstream.adapters.composition import open_legacy_function
from planstream.adapters.faust.app import PlanstreamApp
from planstream.domain.service_names import LEGACY_BRIDGE
from planstream.services.legacy_bridge import LegacyBridge
from topics import LEGACY_REQUESTED

__all__ = ["build"]


def build(app: PlanstreamApp) -> None:
    @app.agent(app.event_topic(LEGACY_REQUESTED), name=LEGACY_BRIDGE, concurrency=1)
    async def bridge(stream):  # type: ignore[no-untyped-def]
        function, close = await open_legacy_function(app.settings)
        app.on_close(close)
        service = LegacyBridge(await app.runtime(), function, app.settings.policy())
        async for event in stream.events():
            await app.submit(event, partial(service.handle, event.value))

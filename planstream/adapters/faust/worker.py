"""The Faust worker of a planstream service: logging is the entry point's, readiness its own.

Faust's worker would replace the root logger's handlers with its own coloured ones, draw a
progress spinner and log "Ready" under Faust's logger, which runs at the libraries' level
(WARNING): so this worker leaves logging alone, has no spinner, and says itself that the
service is ready (the launcher and the fault suite wait for that word).
"""

import asyncio
import logging

import faust

from planstream.adapters.faust.app import PlanstreamApp

__all__ = ["ServiceWorker"]

log = logging.getLogger(__name__)


class ServiceWorker(faust.Worker):
    """Runs one service's app until SIGTERM, with the logging the entry point installed."""

    logger = logging.getLogger("faust.worker.planstream")  # Faust's lines, at Faust's level

    def __init__(self, app: PlanstreamApp, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(app, loop=loop, quiet=True, override_logging=False, redirect_stdouts=False)
        self.spinner = None
        self._service = app.service_name

    async def on_startup_finished(self) -> None:
        await super().on_startup_finished()
        log.info("%s: Ready", self._service)

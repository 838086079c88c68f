"""How a process routes the step attempts it requests: the flags through a short cache, each
step attempt's route recorded the first time it is requested, and the request each path takes.

A flag change reaches every process within ``route_cache_s`` (5 s) without a restart. The
in-flight policy (docs/migration.md): a step attempt already requested finishes on the path
that took it; each new step attempt (the next step, a retry, a reviewer's retry) follows the
flags as read when it is requested; a repeated request (a replay, a double click) finds the
attempt's recorded route and goes the same way, so no step attempt runs on both paths. Both
paths use the same idempotency key, ``<run_id>:s<step>:a<attempt>``.
"""

import asyncio
from datetime import datetime, timedelta
from typing import Final, Literal

from planstream.domain.events import (
    LegacyStepRequested,
    Quality,
    RenderRequested,
    StepEvent,
    StepRequested,
    Versions,
    step_key,
)
from planstream.domain.routing import Flags, Route, route_of
from planstream.domain.service_names import IMAGE_IO, LEGACY
from planstream.ports import Clock, Routes
from topics import LEGACY_REQUESTED, RENDER_REQUESTED, STEP_REQUESTED, TopicSpec

__all__ = ["RequestedBy", "Routing", "entry_service", "path_of", "step_request"]

RequestedBy = Literal["client", "supervisor", "legacy", "operator"]
_RENDER_WORKER: Final = "render_worker"


class Routing:
    """The flags this process reads (cached ``cache_s`` seconds) and the route of each step
    attempt it requests."""

    def __init__(self, routes: Routes, cache_s: float, clock: Clock) -> None:
        self._routes = routes
        self._ttl = timedelta(seconds=cache_s)
        self._clock = clock
        self._cached: tuple[Flags, datetime] | None = None
        self._lock = asyncio.Lock()

    async def flags(self) -> Flags:
        """The flags as read at most ``cache_s`` ago (one read at a time refreshes them)."""
        async with self._lock:
            now = self._clock()
            if self._cached is None or now - self._cached[1] >= self._ttl:
                self._cached = (await self._routes.flags(), now)
            return self._cached[0]

    async def route(self, run_id: str, step_id: int, attempt: int) -> Route:
        """The path of this step attempt: the one recorded when it was first requested, else
        the flags' now (and recorded)."""
        wanted = route_of(await self.flags(), step_id)
        return await self._routes.claim(run_id, step_id, attempt, wanted)


def path_of(spec: TopicSpec) -> Route:
    """Which path a step request on ``spec`` runs on."""
    return "legacy" if spec.name == LEGACY_REQUESTED.name else "new"


def entry_service(route: Route, step_id: int) -> str:
    """The service whose job a step request on ``route`` makes first."""
    if route == "legacy":
        return LEGACY
    return IMAGE_IO if step_id == 0 else _RENDER_WORKER


def step_request(
    route: Route,
    *,
    event_id: str,
    run_id: str,
    occurred_at: datetime,
    step_id: int,
    attempt: int,
    input_artifact_id: str,
    quality: Quality,
    requested_by: RequestedBy,
    versions: Versions | None = None,
) -> tuple[TopicSpec, StepEvent]:
    """The request of one step attempt on ``route``, from the step's input image (the upload
    for step 0, the previous step's image after): the old function's request, step 0's image
    check, or the render of a later step."""
    common = {
        "event_id": event_id,
        "run_id": run_id,
        "occurred_at": occurred_at,
        "step_id": step_id,
        "attempt": attempt,
        "idempotency_key": step_key(run_id, step_id, attempt),
        "versions": versions,
    }
    if route == "legacy":
        legacy = LegacyStepRequested(
            **common,
            input_artifact_ids=[input_artifact_id],
            quality=quality,
            requested_by=requested_by,
        )
        return LEGACY_REQUESTED, legacy
    if step_id == 0:
        new_by = "supervisor" if requested_by == "legacy" else requested_by
        return STEP_REQUESTED, StepRequested(
            **common, input_artifact_ids=[input_artifact_id], requested_by=new_by
        )
    render = RenderRequested(**common, source_artifact_id=input_artifact_id, quality=quality)
    return RENDER_REQUESTED, render

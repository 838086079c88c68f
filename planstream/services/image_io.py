"""Image I/O: check a step's images (exist, decode, fit the quality tier), then hand them on.

For each step request it leases the step's job, reads every input image from storage, records
its real pixel size, digest and format, checks the quality band, caches a short-lived signed GET
URL, and publishes ``ImageReady`` with artifact ids only. Bad input becomes a ``StepFailed``
upstream failure for the Supervisor, never a crash.
"""

import asyncio
import logging
import traceback
from typing import Final, Literal

from planstream.crashpoints import crashpoint
from planstream.domain.errors import PermanentError
from planstream.domain.events import Failure, ImageReady, Quality, StepRequested
from planstream.domain.ids import new_id
from planstream.domain.policy import BANDS, check_dimensions, quality_for_step
from planstream.domain.records import Artifact
from planstream.domain.rules import ARTIFACT_MISSING, IMAGE_DIMENSIONS_INVALID, IMAGE_UNREADABLE
from planstream.ports import ImageUnreadable, ObjectMissing, ObjectTooLarge
from planstream.services.jobs import StepWork
from planstream.services.runtime import Runtime
from planstream.services.step_attempt import hold_step
from planstream.services.upstream import report_failure
from topics import IMAGE_READY, STEP_REQUESTED

__all__ = ["SERVICE", "ImageIO", "Outcome"]

log = logging.getLogger(__name__)

SERVICE: Final = "image_io"
Outcome = Literal["ready", "failed", "skipped"]


class _Upstream(PermanentError):
    """One input failed a check: carries the failure the Supervisor will see (caught within
    the step: it becomes a ``StepFailed``, never a dead letter)."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.detail)
        self.failure = failure


class ImageIO:
    """The Image I/O service's logic; the Faust agent only feeds it events."""

    def __init__(self, runtime: Runtime) -> None:
        self._rt = runtime

    async def handle(self, request: StepRequested) -> Outcome:
        """Process one step request at most once per step attempt; returns what happened."""
        held = await hold_step(self._rt, request, STEP_REQUESTED)
        if held is None:
            return "skipped"
        async with held.work:
            return await self._inspect(request, held.run.quality_post_step4, held.work)

    async def _inspect(self, request: StepRequested, tier: Quality, work: StepWork) -> Outcome:
        """Check every input image, then hand them on or report the first failure."""
        rt = self._rt
        quality = quality_for_step(request.step_id, tier)
        try:
            for artifact in await self._artifacts(request):
                await self._check(artifact, quality)
        except _Upstream as upstream:
            stack = "".join(traceback.format_exception(upstream))
            await report_failure(rt, request, work, SERVICE, upstream.failure, stack)
            log.info(
                "step failed upstream: %s",
                upstream.failure.rule,
                extra={"run_id": request.run_id, "step_id": request.step_id},
            )
            return "failed"
        ready = ImageReady(
            **request.same_step(new_id("evt"), rt.clock()),
            job_id=work.lease.job_id,
            artifact_ids=request.input_artifact_ids,
            quality=quality,
            versions=request.versions,
        )
        await rt.publisher.publish(IMAGE_READY, ready)
        crashpoint("image_io.after_emit")
        await rt.jobs.finish(work, "completed", {"event_id": ready.event_id, "quality": quality})
        return "ready"

    async def _artifacts(self, request: StepRequested) -> list[Artifact]:
        found = await self._rt.repo.artifacts(request.input_artifact_ids)
        for artifact_id in request.input_artifact_ids:
            artifact = found.get(artifact_id)
            if artifact is None or artifact.run_id != request.run_id:
                raise _Upstream(
                    ARTIFACT_MISSING.failure(
                        f"artifact {artifact_id} is not an input of run {request.run_id}"
                    )
                )
        return [found[artifact_id] for artifact_id in request.input_artifact_ids]

    async def _check(self, artifact: Artifact, quality: Quality) -> None:
        """Read, measure and band-check one image, record the facts, then mint its URL."""
        rt = self._rt
        try:
            data = await rt.storage.read(
                artifact.storage_bucket, artifact.storage_path, rt.settings.max_image_bytes
            )
        except ObjectMissing:
            detail = f"artifact {artifact.artifact_id} has no object in storage"
            raise _Upstream(ARTIFACT_MISSING.failure(detail)) from None
        except ObjectTooLarge as exc:
            raise _Upstream(IMAGE_UNREADABLE.failure(str(exc))) from None
        try:
            facts = await asyncio.to_thread(rt.imaging.inspect, data, rt.settings.max_image_pixels)
        except ImageUnreadable as exc:
            raise _Upstream(IMAGE_UNREADABLE.failure(str(exc))) from None
        band = BANDS[quality]
        problem = check_dimensions(facts.width_px, facts.height_px, quality)
        await rt.repo.merge_artifact_metadata(
            artifact.artifact_id,
            {
                **facts.as_metadata(),
                "quality": quality,
                "band_px": [band.min_long_edge, band.max_long_edge],
                "within_band": problem is None,
            },
        )
        if problem is not None:
            raise _Upstream(IMAGE_DIMENSIONS_INVALID.failure(problem))
        await rt.signed_urls.for_artifact(artifact)

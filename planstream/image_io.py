"""Image I/O: check a step's images (exist, decode, fit the quality tier), then hand them on.

For each step request it leases the step's job, reads every input image from storage, records
its real pixel size, digest and format, checks the quality band, caches a short-lived signed GET
URL, and publishes ``ImageReady`` with artifact ids only. Bad input becomes a ``StepFailed``
upstream failure for the Supervisor, never a crash.
"""

import asyncio
import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from planstream.adapters.repository import Repository
from planstream.adapters.storage import ObjectMissing, ObjectTooLarge, Storage
from planstream.errors import PermanentError
from planstream.events import Failure, ImageReady, Quality, StepFailed, StepRequested
from planstream.ids import new_id
from planstream.imaging import ImageUnreadable, inspect_image
from planstream.policy import BANDS, check_dimensions, quality_for_step
from planstream.ports import Publisher
from planstream.records import Artifact, Lease
from planstream.settings import Settings
from topics import IMAGE_READY, STEP_FAILED

__all__ = ["SERVICE", "ImageIO", "Outcome", "UnknownRun"]

log = logging.getLogger(__name__)

SERVICE = "image_io"
Outcome = Literal["ready", "failed", "skipped"]


class UnknownRun(PermanentError):
    """The step request names a run that does not exist."""


class _Upstream(Exception):
    """One input failed a check: carries the failure the Supervisor will see."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.detail)
        self.failure = failure


def _failure(rule: str, detail: str, fix: str) -> _Upstream:
    return _Upstream(Failure(rule=rule, severity="critical", detail=detail, suggested_fix=fix))


@dataclass
class ImageIO:
    """The Image I/O service's logic; the Faust agent only feeds it events."""

    repo: Repository
    storage: Storage
    publisher: Publisher
    settings: Settings
    worker_id: str
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    async def handle(self, request: StepRequested) -> Outcome:
        """Process one step request at most once per step attempt; returns what happened."""
        started = time.monotonic()
        run = await self.repo.get_run(request.run_id)
        if run is None:
            raise UnknownRun(f"run {request.run_id} does not exist")
        lease = await self.repo.acquire_job(
            job_id=new_id("job"),
            run_id=request.run_id,
            step_id=request.step_id,
            attempt=request.attempt,
            service=SERVICE,
            idempotency_key=f"{SERVICE}:{request.idempotency_key}",
            payload_ref={"artifact_ids": request.input_artifact_ids},
            max_attempts=self.settings.max_attempts,
            worker_id=self.worker_id,
            lease_s=self.settings.lease_s,
        )
        if not isinstance(lease, Lease):
            log.info("step request skipped: job is %s", lease, extra=_fields(request))
            return "skipped"
        quality = quality_for_step(request.step_id, run.quality_post_step4)
        try:
            for artifact in await self._artifacts(request):
                await self._check(artifact, quality)
        except _Upstream as upstream:
            await self._fail(request, lease, upstream, started)
            return "failed"
        ready = ImageReady(
            event_id=new_id("evt"),
            run_id=request.run_id,
            occurred_at=self.clock(),
            step_id=request.step_id,
            attempt=request.attempt,
            idempotency_key=request.idempotency_key,
            job_id=lease.job_id,
            artifact_ids=request.input_artifact_ids,
            quality=quality,
        )
        await self.publisher.publish(IMAGE_READY, ready)
        await self._finish(
            lease, "completed", {"event_id": ready.event_id, "quality": quality}, started
        )
        return "ready"

    async def _artifacts(self, request: StepRequested) -> list[Artifact]:
        found = await self.repo.artifacts(request.input_artifact_ids)
        for artifact_id in request.input_artifact_ids:
            artifact = found.get(artifact_id)
            if artifact is None or artifact.run_id != request.run_id:
                raise _failure(
                    "ARTIFACT_MISSING",
                    f"artifact {artifact_id} is not an input of run {request.run_id}",
                    "Upload the image again and start a new run.",
                )
        return [found[artifact_id] for artifact_id in request.input_artifact_ids]

    async def _check(self, artifact: Artifact, quality: Quality) -> None:
        """Read, measure and band-check one image, record the facts, then mint its URL."""
        try:
            data = await self.storage.read(
                artifact.storage_bucket, artifact.storage_path, self.settings.max_image_bytes
            )
        except ObjectMissing:
            raise _failure(
                "ARTIFACT_MISSING",
                f"artifact {artifact.artifact_id} has no object in storage",
                "Upload the image again; the upload may not have finished.",
            ) from None
        except ObjectTooLarge as exc:
            raise _failure("IMAGE_UNREADABLE", str(exc), "Upload a smaller image.") from None
        try:
            facts = await asyncio.to_thread(inspect_image, data, self.settings.max_image_pixels)
        except ImageUnreadable as exc:
            raise _failure(
                "IMAGE_UNREADABLE", str(exc), "Upload a PNG, JPEG or WebP floor plan."
            ) from None
        band = BANDS[quality]
        problem = check_dimensions(facts.width_px, facts.height_px, quality)
        await self.repo.merge_artifact_metadata(
            artifact.artifact_id,
            {
                **facts.as_metadata(),
                "quality": quality,
                "band_px": [band.min_long_edge, band.max_long_edge],
                "within_band": problem is None,
            },
        )
        if problem is not None:
            raise _failure(
                "IMAGE_DIMENSIONS_INVALID",
                problem,
                f"Use an image whose long edge is {band.min_long_edge}-{band.max_long_edge}px.",
            )
        await self._ensure_signed_url(artifact)

    async def _ensure_signed_url(self, artifact: Artifact) -> None:
        """Mint a signed GET URL unless the cached one outlives the refresh margin."""
        now = self.clock()
        margin = timedelta(seconds=self.settings.signed_url_refresh_margin_s)
        expires = artifact.signed_url_expires_at
        if artifact.signed_url_cached and expires is not None and expires - margin > now:
            return
        ttl = self.settings.signed_url_ttl_s
        url = await self.storage.presign_get(artifact.storage_bucket, artifact.storage_path, ttl)
        await self.repo.cache_signed_url(artifact.artifact_id, url, now + timedelta(seconds=ttl))

    async def _fail(
        self, request: StepRequested, lease: Lease, upstream: _Upstream, started: float
    ) -> None:
        failed = StepFailed(
            event_id=new_id("evt"),
            run_id=request.run_id,
            occurred_at=self.clock(),
            step_id=request.step_id,
            attempt=request.attempt,
            idempotency_key=request.idempotency_key,
            service=SERVICE,
            job_id=lease.job_id,
            failure=upstream.failure,
        )
        await self.publisher.publish(STEP_FAILED, failed)
        stack = "".join(traceback.format_exception(upstream))
        await self._finish(
            lease,
            "failed",
            {"event_id": failed.event_id, "rule": upstream.failure.rule},
            started,
            error=f"{upstream.failure.rule}: {upstream.failure.detail}",
            stack=stack,
        )
        log.info("step failed upstream: %s", upstream.failure.rule, extra=_fields(request))

    async def _finish(
        self,
        lease: Lease,
        status: str,
        result_ref: dict[str, str],
        started: float,
        *,
        error: str | None = None,
        stack: str | None = None,
    ) -> None:
        elapsed_ms = int((time.monotonic() - started) * 1000)
        accepted = await self.repo.finish_job(
            lease,
            status=status,
            result_ref=result_ref,
            processing_time_ms=elapsed_ms,
            error=error,
            stack=stack,
        )
        if not accepted:
            log.warning(
                "stale lease: the job's result was refused",
                extra={"job_id": lease.job_id, "epoch": lease.epoch},
            )


def _fields(request: StepRequested) -> dict[str, object]:
    return {"run_id": request.run_id, "step_id": request.step_id, "attempt": request.attempt}

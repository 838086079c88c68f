"""Image I/O: check a step's images (exist, decode, fit the quality tier), then hand them on.

For each step request it leases the step's job, reads every input image from storage (its size
checked from the GET's length before the body is read, and again while it streams), checks its
header before any pixel is decoded (format, frames, pixels, sides, aspect ratio, the quality
band), checks the whole stream once (a PNG's structure, CRCs and inflated data; a JPEG or WebP
decoded), records its real pixel size, digest and format, and caches a short-lived signed GET
URL. An upload's checked bytes are first copied to an immutable key named by their digest, which the
artifact then points at: the model and the render worker read what was checked, never what a
client may have put on the upload key since. Then it publishes ``ImageReady`` with artifact ids
only. Bad input becomes a ``StepFailed`` upstream failure for the Supervisor, never a crash.
"""

import asyncio
import logging
import traceback
from dataclasses import replace
from typing import Final, Literal

from planstream.crashpoints import crashpoint
from planstream.domain.errors import PermanentError
from planstream.domain.events import Failure, ImageReady, Quality, StepRequested
from planstream.domain.ids import new_id
from planstream.domain.policy import BANDS, check_dimensions, quality_for_step
from planstream.domain.records import Artifact
from planstream.domain.rules import (
    ARTIFACT_MISSING,
    IMAGE_ANIMATED,
    IMAGE_DIMENSIONS_INVALID,
    IMAGE_FORMAT_UNSUPPORTED,
    IMAGE_TOO_LARGE,
    IMAGE_UNREADABLE,
)
from planstream.ports import (
    ImageAnimated,
    ImageDimensionsRefused,
    ImageFacts,
    ImageFormatUnsupported,
    ImageLimits,
    ImageUnreadable,
    ObjectMissing,
    ObjectTooLarge,
)
from planstream.services.jobs import StepWork
from planstream.services.runtime import Runtime
from planstream.services.step_attempt import hold_step
from planstream.services.upstream import report_failure
from topics import IMAGE_READY, STEP_REQUESTED

__all__ = ["SERVICE", "ImageIO", "Outcome"]

log = logging.getLogger(__name__)

SERVICE: Final = "image_io"
Outcome = Literal["ready", "failed", "skipped"]
# The checked copy's name ending and content type, by the format the header gave.
_STORED_AS: Final = {
    "PNG": (".png", "image/png"),
    "JPEG": (".jpg", "image/jpeg"),
    "WEBP": (".webp", "image/webp"),
}


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
        """Read, measure and band-check one image, record the facts, keep the checked bytes
        where nobody else writes, then mint its URL."""
        rt, s = self._rt, self._rt.settings
        data = await self._read(artifact)
        band = BANDS[quality]
        limits = ImageLimits(
            s.max_image_pixels,
            s.max_image_side,
            s.max_image_aspect_ratio,
            (band.min_long_edge, band.max_long_edge),
        )
        try:
            facts = await asyncio.to_thread(rt.imaging.inspect, data, limits)
        except ImageDimensionsRefused as exc:
            if exc.facts is not None:
                await self._record(artifact, exc.facts, quality, within_band=False)
            detail = _dimension_problem(exc, limits, quality)
            raise _Upstream(IMAGE_DIMENSIONS_INVALID.failure(detail)) from None
        except ImageAnimated as exc:
            raise _Upstream(IMAGE_ANIMATED.failure(str(exc))) from None
        except ImageFormatUnsupported as exc:
            raise _Upstream(IMAGE_FORMAT_UNSUPPORTED.failure(str(exc))) from None
        except ImageUnreadable as exc:
            raise _Upstream(IMAGE_UNREADABLE.failure(str(exc))) from None
        problem = check_dimensions(facts.width_px, facts.height_px, quality)
        if problem is not None:
            await self._record(artifact, facts, quality, within_band=False)
            raise _Upstream(IMAGE_DIMENSIONS_INVALID.failure(problem))
        checked = await self._keep_checked(artifact, data, facts, quality)
        await rt.signed_urls.for_artifact(checked)

    async def _read(self, artifact: Artifact) -> bytes:
        """The image's bytes; an upload is capped at ``max_upload_bytes`` (its presigned POST's
        limit, enforced here too: not every S3-compatible store checks a POST policy)."""
        s = self._rt.settings
        cap = s.max_upload_bytes if artifact.kind == "source_image" else s.max_image_bytes
        try:
            return await self._rt.storage.read(artifact.storage_bucket, artifact.storage_path, cap)
        except ObjectMissing:
            detail = f"artifact {artifact.artifact_id} has no object in storage"
            raise _Upstream(ARTIFACT_MISSING.failure(detail)) from None
        except ObjectTooLarge as exc:
            raise _Upstream(IMAGE_TOO_LARGE.failure(str(exc))) from None

    async def _record(
        self, artifact: Artifact, facts: ImageFacts, quality: Quality, *, within_band: bool
    ) -> None:
        """Merge the facts into the artifact's metadata, also when a check fails (so an
        operator sees why)."""
        await self._rt.repo.merge_artifact_metadata(
            artifact.artifact_id, _metadata(facts, quality, within_band=within_band)
        )

    async def _keep_checked(
        self, artifact: Artifact, data: bytes, facts: ImageFacts, quality: Quality
    ) -> Artifact:
        """An upload's checked bytes, copied to ``runs/<run>/source-<sha256>.<ext>`` (a key no
        client can write) and made the artifact's object, its facts recorded in the same write;
        a render is kept where it is (the render worker wrote it, by digest), its facts merged.
        A repeat finds the copy in place."""
        rt = self._rt
        suffix, content_type = _STORED_AS.get(facts.format, (".bin", "application/octet-stream"))
        path = f"runs/{artifact.run_id}/source-{facts.sha256}{suffix}"
        copied = artifact.kind == "source_image" and artifact.run_id is not None
        if not copied or (artifact.storage_bucket, artifact.storage_path) == (
            rt.storage.bucket,
            path,
        ):
            await self._record(artifact, facts, quality, within_band=True)
            return artifact
        await rt.storage.write(path, data, content_type)
        metadata = _metadata(facts, quality, within_band=True)
        await rt.repo.use_checked_copy(artifact.artifact_id, rt.storage.bucket, path, metadata)
        log.info("upload checked and copied to its digest's key", extra={"run_id": artifact.run_id})
        return replace(
            artifact,
            storage_bucket=rt.storage.bucket,
            storage_path=path,
            signed_url_cached=None,
            signed_url_expires_at=None,
        )


def _metadata(facts: ImageFacts, quality: Quality, *, within_band: bool) -> dict[str, object]:
    """What Image I/O records on an image's artifact: its facts, the tier and its band."""
    band = BANDS[quality]
    return {
        **facts.as_metadata(),
        "quality": quality,
        "band_px": [band.min_long_edge, band.max_long_edge],
        "within_band": within_band,
    }


def _dimension_problem(exc: ImageDimensionsRefused, limits: ImageLimits, quality: Quality) -> str:
    """Why the size was refused: the band's wording when only the band refused it."""
    facts = exc.facts
    if facts is None:
        return str(exc)
    unbanded = replace(limits, long_edge=None)
    if unbanded.problem(facts.stored_width_px, facts.stored_height_px) is not None:
        return str(exc)
    return check_dimensions(facts.width_px, facts.height_px, quality) or str(exc)

"""Render worker: the next step's image, made by the image model from the previous step's.

The render is asked for at the size the quality policy gives (2K for steps 1-3, the run's tier
from step 4), its real pixel size is checked before it is stored, and it then goes through
Image I/O, Info, Comparison and the Supervisor like step 0's upload.
"""

import asyncio
import logging
from typing import Any, Final

from planstream.crashpoints import crashpoint
from planstream.domain.errors import RecordMissing
from planstream.domain.events import Failure, RenderRequested, StepRequested
from planstream.domain.ids import new_id
from planstream.domain.policy import model_size, render_size
from planstream.domain.rules import IMAGE_DIMENSIONS_INVALID, IMAGE_UNREADABLE
from planstream.domain.steps import step_spec
from planstream.ports import ImageAnswer, ImageLimits, ImageUnreadable
from planstream.services.model_budget import BudgetedCaller, CallSpec, Usage
from planstream.services.rate_limits import prompt_tokens
from planstream.services.runtime import Runtime
from planstream.services.step_attempt import step_versions, store_by_digest
from planstream.services.upstream import report_failure
from topics import RENDER_REQUESTED, STEP_REQUESTED

__all__ = ["SERVICE", "RenderWorker"]

log = logging.getLogger(__name__)

SERVICE: Final = "render_worker"


def _usage(answer: ImageAnswer) -> Usage:
    return Usage(answer.input_tokens, answer.output_tokens, "stop")


class RenderWorker:
    """The render worker's logic for one step attempt."""

    def __init__(self, runtime: Runtime) -> None:
        self._rt = runtime
        self._caller = BudgetedCaller.of(runtime, SERVICE)

    async def handle(self, request: RenderRequested) -> None:
        rt = self._rt
        work = await rt.jobs.begin(request, RENDER_REQUESTED)
        if work is None:
            return
        async with work:
            source = await rt.repo.artifact(request.source_artifact_id)
            if source is None:
                raise RecordMissing(f"source artifact {request.source_artifact_id} vanished")
            data = await rt.storage.read(
                source.storage_bucket, source.storage_path, rt.settings.max_image_bytes
            )
            width, height = await self._source_size(source.metadata, data)
            size = render_size(width, height, request.quality)
            asked = model_size(size, rt.settings.model_image_sizes)
            png = await asyncio.to_thread(rt.imaging.as_png, data)
            spec = step_spec(rt.settings.step_catalogue, request.step_id)
            model = rt.settings.model_image
            estimate = prompt_tokens(spec.prompt, {}, 0) + rt.settings.model_image_prompt_tokens
            job_id, version = work.lease.job_id, spec.prompt_version
            answered = await self._caller.call(
                CallSpec(request, job_id, "render", model, version, estimate),
                lambda: rt.model.edit_image(
                    model=model, image_png=png, prompt=spec.prompt, width=asked[0], height=asked[1]
                ),
                _usage,
            )
            if answered.answer is None:
                assert answered.failure is not None
                await report_failure(self._rt, request, work, SERVICE, answered.failure)
                return
            problem = await self._check(answered.answer.png, asked)
            if problem is not None:
                await report_failure(self._rt, request, work, SERVICE, problem)
                return
            render = await asyncio.to_thread(rt.imaging.resized, answered.answer.png, size)
            artifact_id = await self._store(request, render)
            crashpoint("render_worker.after_store")
            follow = StepRequested(
                **request.same_step(new_id("evt"), rt.clock()),
                input_artifact_ids=[artifact_id],
                requested_by="supervisor",
                versions=step_versions(spec.prompt_version, model),
            )
            await rt.publisher.publish(STEP_REQUESTED, follow)
            await rt.jobs.finish(work, "completed", {"artifact_id": artifact_id})

    async def _source_size(self, metadata: dict[str, Any], data: bytes) -> tuple[int, int]:
        """The source's size as Image I/O measured it, or measured now: a source no Image I/O
        checked (the upload of a run whose step 0 ran on the old function) has none."""
        width, height = int(metadata.get("width_px", 0)), int(metadata.get("height_px", 0))
        if width > 0 and height > 0:
            return width, height
        facts = await asyncio.to_thread(self._rt.imaging.inspect, data, self._limits())
        return facts.width_px, facts.height_px

    def _limits(self) -> ImageLimits:
        s = self._rt.settings
        return ImageLimits(s.max_image_pixels, s.max_image_side, s.max_image_aspect_ratio)

    async def _check(self, png: bytes, size: tuple[int, int]) -> Failure | None:
        """Whether the render decodes and has exactly the size asked for."""
        rt = self._rt
        try:
            facts = await asyncio.to_thread(rt.imaging.inspect, png, self._limits())
        except ImageUnreadable as exc:
            return IMAGE_UNREADABLE.failure(f"the render is not an image: {exc}")
        if (facts.width_px, facts.height_px) != size:
            return IMAGE_DIMENSIONS_INVALID.failure(
                f"the render is {facts.width_px}x{facts.height_px}px, "
                f"{size[0]}x{size[1]}px was asked for"
            )
        return None

    async def _store(self, request: RenderRequested, png: bytes) -> str:
        return await store_by_digest(
            self._rt,
            request,
            "render_image",
            png,
            name="render",
            suffix=".png",
            content_type="image/png",
        )

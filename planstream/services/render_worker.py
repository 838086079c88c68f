"""Render worker: the next step's image, made by the image model from the previous step's.

The render is asked for at the size the quality policy gives (2K for steps 1-3, the run's tier
from step 4), its real pixel size is checked before it is stored, and it then goes through
Image I/O, Info, Comparison and the Supervisor like step 0's upload.
"""

import asyncio
import hashlib
import io
import logging
from typing import Final

from PIL import Image

from planstream.adapters.imaging import ImageUnreadable, inspect_image
from planstream.adapters.model import ImageAnswer
from planstream.crashpoints import crashpoint
from planstream.domain.events import Failure, RenderRequested, StepRequested, Versions
from planstream.domain.ids import new_id
from planstream.domain.policy import model_size, render_size
from planstream.domain.records import Artifact
from planstream.domain.rules import IMAGE_DIMENSIONS_INVALID, IMAGE_UNREADABLE, RULES_VERSION
from planstream.domain.spaces import SPACES_VERSION
from planstream.domain.steps import step_spec
from planstream.services.model_budget import BudgetedCaller, CallSpec, Usage
from planstream.services.runtime import Runtime
from planstream.services.upstream import report_failure
from topics import RENDER_REQUESTED, STEP_REQUESTED

__all__ = ["SERVICE", "RenderWorker"]

log = logging.getLogger(__name__)

SERVICE: Final = "render_worker"


def _as_png(data: bytes) -> bytes:
    """The image as PNG (the edit endpoint takes PNG), EXIF orientation applied."""
    with Image.open(io.BytesIO(data)) as image:
        if image.format == "PNG":
            return data
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, "PNG")
        return buffer.getvalue()


def _resized(png: bytes, size: tuple[int, int]) -> bytes:
    """The render scaled to the tier's size (when the model only makes fixed sizes)."""
    with Image.open(io.BytesIO(png)) as image:
        if image.size == size:
            return png
        buffer = io.BytesIO()
        image.resize(size, Image.Resampling.LANCZOS).save(buffer, "PNG")
        return buffer.getvalue()


def _usage(answer: ImageAnswer) -> Usage:
    return Usage(answer.input_tokens, answer.output_tokens, "stop")


class RenderWorker:
    """The render worker's logic for one step attempt."""

    def __init__(self, runtime: Runtime) -> None:
        self._rt = runtime
        self._caller = BudgetedCaller(runtime.settings, runtime.model_calls, SERVICE)

    async def handle(self, request: RenderRequested) -> None:
        rt = self._rt
        work = await rt.jobs.begin(request, RENDER_REQUESTED)
        if work is None:
            return
        async with work:
            source = await rt.repo.artifact(request.source_artifact_id)
            if source is None:
                raise LookupError(f"source artifact {request.source_artifact_id} vanished")
            data = await rt.storage.read(
                source.storage_bucket, source.storage_path, rt.settings.max_image_bytes
            )
            width = int(source.metadata.get("width_px", 0))
            height = int(source.metadata.get("height_px", 0))
            size = render_size(width, height, request.quality)
            asked = model_size(size, rt.settings.model_image_sizes)
            png = await asyncio.to_thread(_as_png, data)
            spec = step_spec(rt.settings.step_catalogue, request.step_id)
            model = rt.settings.model_image
            answered = await self._caller.call(
                CallSpec(request, work.lease.job_id, "render", model, spec.prompt_version),
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
            render = await asyncio.to_thread(_resized, answered.answer.png, size)
            artifact_id = await self._store(request, render)
            crashpoint("render_worker.after_store")
            follow = StepRequested(
                **request.same_step(new_id("evt"), rt.clock()),
                input_artifact_ids=[artifact_id],
                requested_by="supervisor",
                versions=Versions(
                    spaces_schema=SPACES_VERSION,
                    prompt=spec.prompt_version,
                    model=model,
                    rules=RULES_VERSION,
                ),
            )
            await rt.publisher.publish(STEP_REQUESTED, follow)
            await rt.jobs.finish(work, "completed", {"artifact_id": artifact_id})

    async def _check(self, png: bytes, size: tuple[int, int]) -> Failure | None:
        """Whether the render decodes and has exactly the size asked for."""
        try:
            facts = await asyncio.to_thread(inspect_image, png, self._rt.settings.max_image_pixels)
        except ImageUnreadable as exc:
            return IMAGE_UNREADABLE.failure(f"the render is not an image: {exc}")
        if (facts.width_px, facts.height_px) != size:
            return IMAGE_DIMENSIONS_INVALID.failure(
                f"the render is {facts.width_px}x{facts.height_px}px, "
                f"{size[0]}x{size[1]}px was asked for"
            )
        return None

    async def _store(self, request: RenderRequested, png: bytes) -> str:
        rt = self._rt
        digest = hashlib.sha256(png).hexdigest()
        path = f"runs/{request.run_id}/step-{request.step_id}/render-{digest}.png"
        await rt.storage.write(path, png, "image/png")
        return await rt.repo.store_artifact(
            Artifact(
                artifact_id=new_id("art"),
                run_id=request.run_id,
                step_id=request.step_id,
                kind="render_image",
                storage_bucket=rt.storage.bucket,
                storage_path=path,
                metadata={"sha256": digest, "byte_size": len(png)},
            )
        )

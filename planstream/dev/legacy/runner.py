"""The scripted old function's work on one step: what ``run-pipeline-step`` did with the ids.

It looks the inputs up in the project's records (404 when an id is not an image of the run),
reads the image from storage, and checks the worker's budget: the input and the output held
decoded (RGBA) must fit ``legacy_server_memory_mb``, or the call ends 546 WORKER_LIMIT, as the
serverless function did on large renders. Step 0 is checked and answered as it is; a render
step asks the image model (the stack's scripted model server) for the step's render at the
tier's size, stores it in the run's bucket and records it as the step's ``render_image``.
Nothing here is idempotent: two calls run twice (a double click did).
"""

import asyncio
import hashlib
import io
from typing import Final

from PIL import Image, UnidentifiedImageError

from planstream.adapters.imaging import PillowImaging
from planstream.adapters.model import ModelClient
from planstream.adapters.postgres.repository import Repository
from planstream.dev.legacy.contract import LegacyError, StepCall, worker_limit
from planstream.dev.legacy.projects import Projects
from planstream.domain.ids import new_id
from planstream.domain.policy import model_size, render_size
from planstream.domain.records import Artifact
from planstream.domain.steps import step_spec
from planstream.ports import ModelRefused, ModelUnavailable, ObjectMissing, ObjectTooLarge
from planstream.settings import Settings

__all__ = ["StepRunner", "memory_bytes"]

_RGBA: Final = 4
_MB: Final = 1024 * 1024


def memory_bytes(source: tuple[int, int], output: tuple[int, int] | None) -> int:
    """What a call holds decoded: the input, and the output when it renders one (RGBA)."""
    held = source[0] * source[1]
    if output is not None:
        held += output[0] * output[1]
    return held * _RGBA


def _size(data: bytes) -> tuple[int, int]:
    """The image's pixel size from its header (no pixel decoded)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except (UnidentifiedImageError, OSError):
        raise LegacyError(400, "BAD_REQUEST", "the input is not an image") from None


class StepRunner:
    """Runs one step call against a project's records and storage and the image model."""

    def __init__(self, settings: Settings, projects: Projects, model: ModelClient) -> None:
        self._settings = settings
        self._projects = projects
        self._model = model
        self._imaging = PillowImaging()

    async def run(self, project: str | None, call: StepCall) -> str:
        """The step's image: the input for step 0, the new render after."""
        repo = await self._projects.repository(project)
        found = await repo.artifacts(list(call.input_artifact_ids))
        source = found.get(call.input_artifact_ids[0])
        if source is None or any(a.run_id != call.run_id for a in found.values()):
            raise LegacyError(404, "NOT_FOUND", "an input artifact is not an image of the run")
        storage = await self._projects.storage(source.storage_bucket)
        try:
            data = await storage.read(
                source.storage_bucket, source.storage_path, self._settings.max_image_bytes
            )
        except ObjectMissing:
            raise LegacyError(404, "NOT_FOUND", "the input image is not in storage") from None
        except ObjectTooLarge:
            raise worker_limit("the input image is too large to load") from None
        width, height = _size(data)
        budget = self._settings.legacy_server_memory_mb * _MB
        if call.step_id == 0:
            if memory_bytes((width, height), None) > budget:
                raise worker_limit("the plan is too large to check")
            return source.artifact_id
        size = render_size(width, height, call.quality)
        needed = memory_bytes((width, height), size)
        if needed > budget:
            raise worker_limit(
                f"the render needs {needed // _MB} MB decoded, over the worker's "
                f"{self._settings.legacy_server_memory_mb} MB"
            )
        png = await self._render(call, data, size)
        return await self._store(repo, source.storage_bucket, call, png, size)

    async def _render(self, call: StepCall, data: bytes, size: tuple[int, int]) -> bytes:
        settings = self._settings
        spec = step_spec(settings.step_catalogue, call.step_id)
        asked = model_size(size, settings.model_image_sizes)
        png = await asyncio.to_thread(self._imaging.as_png, data)
        try:
            answer = await self._model.edit_image(
                model=settings.model_image,
                image_png=png,
                prompt=spec.prompt,
                width=asked[0],
                height=asked[1],
            )
        except ModelUnavailable as exc:
            raise LegacyError(503, "SERVER_ERROR", f"the image model failed: {exc}") from None
        except ModelRefused as exc:
            raise LegacyError(500, "SERVER_ERROR", f"the image model refused: {exc}") from None
        if asked == size:
            return answer.png
        return await asyncio.to_thread(self._imaging.resized, answer.png, size)

    async def _store(
        self, repo: Repository, bucket: str, call: StepCall, png: bytes, size: tuple[int, int]
    ) -> str:
        """Store the render under its content hash and record it as the step's image."""
        digest = hashlib.sha256(png).hexdigest()
        path = f"runs/{call.run_id}/step-{call.step_id}/legacy-{digest}.png"
        storage = await self._projects.storage(bucket)
        await storage.write(path, png, "image/png")
        metadata = {
            "width_px": size[0],
            "height_px": size[1],
            "sha256": digest,
            "byte_size": len(png),
            "quality": call.quality,
            "made_by": "run-pipeline-step",
        }
        return await repo.store_artifact(
            Artifact(
                new_id("art"), call.run_id, call.step_id, "render_image", bucket, path, metadata
            )
        )

"""The old run-pipeline-step function in memory: it runs a step the way the local stack's
scripted one does (a render step stores a new image of the run, step 0 answers its input), or
fails as scripted, and keeps every request it was sent."""

from dataclasses import dataclass, field

from planstream.domain.events import Failure, LegacyStepRequested
from planstream.domain.ids import new_id
from planstream.domain.legacy import RETRYABLE, WORKER_LIMIT_STATUS, LegacyCode, code_of
from planstream.domain.records import Artifact
from planstream.ports import (
    LegacyAnswer,
    LegacyCall,
    LegacyRefused,
    LegacyUnavailable,
)
from tests.fakes.imaging import fake_image
from tests.fakes.repository import FakeRepository
from tests.fakes.storage import FakeStorage

__all__ = ["FakeLegacyFunction", "legacy_error"]

_STATUS: dict[LegacyCode, int | None] = {
    "WORKER_LIMIT": WORKER_LIMIT_STATUS,
    "SERVER_ERROR": 503,
    "RATE_LIMITED": 429,
    "BAD_REQUEST": 400,
    "UNAUTHORIZED": 401,
    "NOT_FOUND": 404,
    "TIMEOUT": None,
    "UNREACHABLE": None,
}


def legacy_error(code: LegacyCode, request_bytes: int = 200) -> Exception:
    """The error the port raises for ``code``: LegacyUnavailable when worth calling again."""
    status = _STATUS.get(code)
    call = LegacyCall(code, status, request_bytes, 40 if status else 0, 5)
    if code in RETRYABLE:
        return LegacyUnavailable(f"HTTP {status} {code}", call)
    return LegacyRefused(f"HTTP {status} {code}", call)


@dataclass
class FakeLegacyFunction:
    """``LegacyFunction``: the scripted outcomes first (errors or failure lists), then a clean
    run; ``requests`` holds what it was sent, ``executions`` what it ran."""

    repo: FakeRepository
    storage: FakeStorage
    requests: list[LegacyStepRequested] = field(default_factory=list)
    executions: list[str] = field(default_factory=list)
    _script: list[Exception | list[Failure]] = field(default_factory=list)

    def script(self, *outcomes: Exception | list[Failure]) -> None:
        """The next calls raise these errors, or answer with these failures, in order."""
        self._script.extend(outcomes)

    async def run_step(self, request: LegacyStepRequested) -> LegacyAnswer:
        self.requests.append(request)
        size = len(request.model_dump_json())
        outcome = self._script.pop(0) if self._script else []
        if isinstance(outcome, Exception):
            raise outcome
        found = await self.repo.artifacts(list(request.input_artifact_ids))
        if len(found) != len(set(request.input_artifact_ids)) or any(
            artifact.run_id != request.run_id for artifact in found.values()
        ):
            raise legacy_error("NOT_FOUND", size)
        execution = new_id("evt").replace("evt_", "exe_")
        self.executions.append(request.idempotency_key)
        output = await self._output(request)
        call = LegacyCall(code_of(200), 200, size, 120, 30)
        return LegacyAnswer(execution, output, tuple(outcome), call)

    async def _output(self, request: LegacyStepRequested) -> str:
        """Step 0's answer is its input; a render step stores the step's new image."""
        source = request.input_artifact_ids[0]
        if request.step_id == 0:
            return source
        png = fake_image(2048, 1536)
        path = f"runs/{request.run_id}/step-{request.step_id}/legacy-{len(self.executions)}.png"
        self.storage.put(self.storage.bucket, path, png)
        return await self.repo.store_artifact(
            Artifact(
                new_id("art"),
                request.run_id,
                request.step_id,
                "render_image",
                self.storage.bucket,
                path,
                {"width_px": 2048, "height_px": 1536, "made_by": "run-pipeline-step"},
            )
        )

"""The ingress's request and response bodies: strict pydantic models (no I/O here)."""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from planstream.domain.events import Quality, StepId
from planstream.domain.guards import find_smuggling
from planstream.domain.ids import ArtifactId, EventId, JobId, RunId, UploadId

__all__ = [
    "CreateRun",
    "CreateUpload",
    "Error",
    "Health",
    "ReviewAccepted",
    "ReviewRun",
    "RunCreated",
    "StepAccepted",
    "UploadCreated",
]


def _plain_text(value: str) -> str:
    reason = find_smuggling(value)
    if reason is not None:
        raise ValueError(f"text {reason}")
    return value


class _Body(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CreateUpload(_Body):
    """Ask for a slot to upload one image straight to storage."""

    content_type: Literal["image/png", "image/jpeg", "image/webp"]


class UploadCreated(_Body):
    """Where the image goes: a ``multipart/form-data`` POST to ``upload_url`` of ``fields`` (in
    their order), then the image as the last field, ``file``, before ``expires_at``. The signed
    policy in ``fields`` fixes the key and the content type, and refuses more than ``max_bytes``."""

    upload_id: UploadId
    upload_url: str
    method: Literal["POST"] = "POST"
    fields: dict[str, str]
    max_bytes: int
    expires_at: datetime


class CreateRun(_Body):
    """Start a run on an uploaded image; the request text is data, never instructions."""

    upload_id: UploadId
    ratio: Annotated[str, Field(pattern=r"^[1-9][0-9]?:[1-9][0-9]?$")] = "4:3"
    quality_post_step4: Quality = "2K"
    request_text: Annotated[str, AfterValidator(_plain_text)] | None = None


class RunCreated(_Body):
    run_id: RunId
    source_artifact_id: ArtifactId


class ReviewRun(_Body):
    """A person's decision on a blocked run: go on, analyse the step again, or end the run.
    Who decided is the caller's token subject; a ``reviewer`` field is refused (unknown)."""

    action: Literal["approve", "retry", "reject"]
    reason: Annotated[str, Field(min_length=1, max_length=500), AfterValidator(_plain_text)]


class StepAccepted(_Body):
    run_id: RunId
    step_id: StepId
    job_id: JobId
    status: str
    replayed: bool


class ReviewAccepted(_Body):
    """The review is on its way to the Supervisor, as the event ``event_id``."""

    run_id: RunId
    event_id: EventId


class Error(_Body):
    """Every refusal: what was wrong, and the field, key or header it was in when there is one."""

    error: str
    field: str | None = None


class Health(_Body):
    """The ingress process answers."""

    status: Literal["ok"]

"""Rows of planstream's PostgreSQL tables as frozen values (no I/O here)."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from planstream.domain.events import Quality

__all__ = [
    "Artifact",
    "ArtifactKind",
    "Job",
    "Lease",
    "LeaseRefusal",
    "NewJob",
    "Run",
    "Upload",
]

ArtifactKind = Literal["source_image", "render_image", "spaces_json", "model_response"]
LeaseRefusal = Literal["completed", "failed", "blocked", "leased", "exhausted"]


@dataclass(frozen=True)
class Upload:
    upload_id: str
    storage_bucket: str
    storage_path: str
    content_type: str
    put_expires_at: datetime
    owner: str | None = None  # the token subject that asked for it


@dataclass(frozen=True)
class Run:
    run_id: str
    upload_id: str
    ratio: str
    quality_post_step4: Quality
    request_text: str | None
    status: str
    current_step: int
    owner: str | None = None  # the token subject that created it


@dataclass(frozen=True)
class Job:
    job_id: str
    run_id: str
    step_id: int
    attempt: int
    service: str
    status: str
    idempotency_key: str
    published_at: datetime | None


@dataclass(frozen=True)
class NewJob:
    """A job as a service first records it: one per service and step attempt."""

    job_id: str
    run_id: str
    step_id: int
    attempt: int
    service: str
    idempotency_key: str
    payload_ref: dict[str, Any]  # the event that started it and its topic, to deliver it again
    max_attempts: int

    def row(self) -> tuple[Any, ...]:
        """Its columns, in the order the job statements take them."""
        return (
            self.job_id,
            self.run_id,
            self.step_id,
            self.attempt,
            self.service,
            self.idempotency_key,
            self.payload_ref,
            self.max_attempts,
        )


@dataclass(frozen=True)
class Lease:
    """A worker's hold on a job: every write of the job's result presents ``epoch``.
    ``taken_over``: another worker held the job and its lease had expired."""

    job_id: str
    epoch: int
    deliveries: int
    taken_over: bool = False


@dataclass(frozen=True)
class Artifact:
    artifact_id: str
    run_id: str | None
    step_id: int | None
    kind: ArtifactKind
    storage_bucket: str
    storage_path: str
    metadata: dict[str, Any] = field(default_factory=dict)
    signed_url_cached: str | None = None
    signed_url_expires_at: datetime | None = None

"""The seams between the services and the outside world: Protocols, their values and errors.

The services are typed against these alone; ``planstream.adapters`` implements them (the
composition root, ``planstream.adapters.composition``, wires the real ones in) and
``tests/fakes`` holds an in-memory fake of each.

Two things the services use are deliberately not ports:

- ids: ``planstream.domain.ids.new_id`` does no I/O and keeps no state anyone reads back, and
  no test needs a minted id to be predictable (tests match events by run, step and content).
  An id source would be one more parameter for ``Jobs``, ``BudgetedCaller``, ``RunFlow`` and
  every step service, for nothing a test asks for.
- a PostgreSQL outage: which exceptions mean "the database is down, not the work is bad"
  belongs to the driver, so the composition root hands them to the services as
  ``Runtime.outage_errors`` (a tuple of classes, empty on fakes); translating every asyncpg
  error at each adapter method instead would add a wrapper to every query.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from planstream.domain.errors import PermanentError, RetryableError
from planstream.domain.events import Event
from planstream.domain.records import Artifact, Lease, LeaseRefusal, NewJob, Run
from topics import TopicSpec

__all__ = [
    "ArtifactStore",
    "ChatAnswer",
    "Clock",
    "ImageAnswer",
    "ImageFacts",
    "ImageUnreadable",
    "Imaging",
    "JobLeases",
    "ModelCall",
    "ModelCallLog",
    "ModelClient",
    "ModelRefused",
    "ModelUnavailable",
    "ObjectMissing",
    "ObjectTooLarge",
    "Publisher",
    "Purpose",
    "Repository",
]

Clock = Callable[[], datetime]
"""The time now, timezone-aware (UTC in production, a fixed or stepped one in tests)."""


# --- the model -------------------------------------------------------------------------------


class ModelUnavailable(RetryableError):
    """The model timed out, throttled us or failed on its side; ``retry_after_s`` if it said."""

    def __init__(
        self,
        message: str,
        outcome: Literal["timeout", "unreachable", "throttled", "failed"],
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.retry_after_s = retry_after_s


class ModelRefused(PermanentError):
    """The model (or its server) refused the request; repeating it cannot help."""


@dataclass(frozen=True)
class ChatAnswer:
    """One chat completion: the content, why it ended, what it cost, and its raw body."""

    content: str | None
    refusal: str | None
    finish_reason: str | None
    input_tokens: int
    output_tokens: int
    latency_ms: int
    raw: bytes


@dataclass(frozen=True)
class ImageAnswer:
    """One image edit: the PNG the model returned and what it cost."""

    png: bytes
    input_tokens: int
    output_tokens: int
    latency_ms: int


class ModelClient(Protocol):
    """The model: structured chat answers and image edits, each one call, never retried inside."""

    async def chat(
        self,
        *,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        schema_name: str,
        schema: dict[str, Any],
    ) -> ChatAnswer: ...

    async def edit_image(
        self, *, model: str, image_png: bytes, prompt: str, width: int, height: int
    ) -> ImageAnswer: ...


# --- the model-call log ----------------------------------------------------------------------

Purpose = Literal["extract", "compare", "audit", "render"]


@dataclass(frozen=True)
class ModelCall:
    """One row of the model-call log: which step's call it was, how it ended, what it cost."""

    call_id: str
    run_id: str
    step_id: int
    attempt: int
    job_id: str | None
    service: str
    purpose: Purpose
    model: str
    prompt_version: str
    outcome: str  # started (not yet answered) | answered | timeout | throttled | failed | refused
    input_tokens: int
    output_tokens: int
    cost_usd: float
    latency_ms: int
    finish_reason: str | None
    error: str | None


class ModelCallLog(Protocol):
    """The record of every model call, and a step's count of them against its budget."""

    async def record(self, call: ModelCall) -> None: ...

    async def count(
        self, run_id: str, step_id: int, purpose: Purpose, attempts: tuple[int, int]
    ) -> int: ...


# --- the artifact store ----------------------------------------------------------------------


class ObjectMissing(PermanentError):
    """The object does not exist in storage."""


class ObjectTooLarge(PermanentError):
    """The object is larger than the configured read limit."""


class ArtifactStore(Protocol):
    """Object storage: bounded reads, writes to the configured bucket, signed GET URLs."""

    @property
    def bucket(self) -> str: ...

    async def read(self, bucket: str, key: str, max_bytes: int) -> bytes: ...

    async def write(self, key: str, data: bytes, content_type: str) -> None: ...

    async def presign_get(self, bucket: str, key: str, ttl_s: int) -> str: ...


# --- images ----------------------------------------------------------------------------------


class ImageUnreadable(PermanentError):
    """The bytes are not a decodable image of an accepted format."""


@dataclass(frozen=True)
class ImageFacts:
    """What Image I/O records about an image in ``pipeline_artifacts.metadata_json``."""

    width_px: int
    height_px: int
    stored_width_px: int
    stored_height_px: int
    exif_orientation: int
    format: str
    byte_size: int
    sha256: str

    def as_metadata(self) -> dict[str, Any]:
        return asdict(self)


class Imaging(Protocol):
    """Pillow's work on image bytes: measure, convert to PNG, resize (CPU: run off the loop)."""

    def inspect(self, data: bytes, max_pixels: int) -> ImageFacts: ...

    def as_png(self, data: bytes) -> bytes: ...

    def resized(self, png: bytes, size: tuple[int, int]) -> bytes: ...


# --- the records -----------------------------------------------------------------------------


class Repository(Protocol):
    """The run, artifact and job records the services and the sweeper read and write."""

    async def get_run(self, run_id: str) -> Run | None: ...

    async def fail_run(self, run_id: str, error: str) -> None: ...

    async def blocked_step(self, run_id: str) -> tuple[int, int] | None: ...

    async def step_image(self, run_id: str, step_id: int) -> str | None: ...

    async def job_event(self, job_id: str) -> tuple[str, dict[str, Any]] | None: ...

    async def artifacts(self, artifact_ids: list[str]) -> dict[str, Artifact]: ...

    async def artifact(self, artifact_id: str) -> Artifact | None: ...

    async def store_artifact(self, artifact: Artifact) -> str: ...

    async def merge_artifact_metadata(self, artifact_id: str, metadata: dict[str, Any]) -> None: ...

    async def cache_signed_url(self, artifact_id: str, url: str, expires_at: datetime) -> None: ...


class JobLeases(Protocol):
    """Job leases with fencing: take, renew, finish, and find and fail the ones nobody works on."""

    async def acquire(
        self, job: NewJob, *, worker_id: str, lease_s: float
    ) -> Lease | LeaseRefusal: ...

    async def receive(self, job: NewJob) -> bool: ...

    async def renew(self, lease: Lease, lease_s: float) -> bool: ...

    async def finish(
        self,
        lease: Lease,
        worker_id: str,
        *,
        status: str,
        result_ref: dict[str, Any] | None,
        processing_time_ms: int,
        error: str | None = None,
        stack: str | None = None,
    ) -> bool: ...

    async def expired(self, redrive_after_s: float, limit: int) -> list[dict[str, Any]]: ...

    async def give_up(self, job_id: str, epoch: int, reason: str) -> bool: ...


# --- the publisher ---------------------------------------------------------------------------


class Publisher(Protocol):
    """Sends one event to a catalogue topic, keyed by its run id, and waits for the broker."""

    async def publish(self, spec: TopicSpec, event: Event) -> None: ...

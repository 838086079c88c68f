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
from planstream.domain.events import Event, Failure, LegacyStepRequested
from planstream.domain.rate_buckets import Bucket
from planstream.domain.records import Artifact, Lease, LeaseRefusal, NewJob, Run
from planstream.domain.replay import ReplayMode
from planstream.domain.routing import FlagChange, Flags, Route
from topics import TopicSpec

__all__ = [
    "ArtifactStore",
    "ChatAnswer",
    "Clock",
    "CostCapReached",
    "ImageAnimated",
    "ImageAnswer",
    "ImageDimensionsRefused",
    "ImageFacts",
    "ImageFormatUnsupported",
    "ImageLimits",
    "ImageUnreadable",
    "Imaging",
    "JobLeases",
    "LegacyAnswer",
    "LegacyCall",
    "LegacyFunction",
    "LegacyRefused",
    "LegacyUnavailable",
    "ModelCall",
    "ModelCallLog",
    "ModelClient",
    "ModelRefused",
    "ModelUnavailable",
    "ObjectMissing",
    "ObjectTooLarge",
    "OriginalDecision",
    "Publisher",
    "Purpose",
    "RateLimiter",
    "RecordedAnswers",
    "RecordedCall",
    "ReplayLedger",
    "ReplayTerms",
    "Repository",
    "Routes",
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


class CostCapReached(ModelRefused):
    """A live replay's cost cap refused the call before it was made (``REPLAY_COST_CAP``)."""


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
    transport_attempt: int = 1  # 1: a call of the step's budget; 2..: its retry after a 429/5xx
    waited_ms: int = 0  # how long it waited for the rate limiter before it was made
    answer: str | None = None  # an answered chat call's content, capped (what a replay reuses)


class ModelCallLog(Protocol):
    """The record of every model call, and a step's count of them against its budget.

    ``count`` counts the calls of the step's budget: first tries (``transport_attempt`` 1), not
    the transport retries of a 429 or a 5xx (docs/model-protocol.md).
    """

    async def record(self, call: ModelCall) -> None: ...

    async def count(
        self, run_id: str, step_id: int, purpose: Purpose, attempts: tuple[int, int]
    ) -> int: ...


# --- the rate limiter ------------------------------------------------------------------------


class RateLimiter(Protocol):
    """A provider's limits for a model, shared by every process: a request and its tokens are
    reserved before a call, corrected by the usage the answer reports, and a 429 pauses the
    model's bucket for everyone (``planstream.domain.rate_buckets`` says how)."""

    async def reserve(self, bucket: Bucket, tokens: int, max_wait_s: float) -> float | None:
        """Reserve one request and ``tokens`` tokens; the seconds to wait before calling, or
        None (nothing reserved) when the turn is more than ``max_wait_s`` away."""

    async def settle(self, bucket: Bucket, reserved: int, used: int) -> None:
        """The call reserved ``reserved`` tokens and used ``used``: give back or take the rest."""

    async def throttle(self, bucket: Bucket, retry_after_s: float) -> None:
        """The provider answered 429: nobody calls the model before ``retry_after_s`` from now."""


# --- the artifact store ----------------------------------------------------------------------


class ObjectMissing(PermanentError):
    """The object does not exist in storage."""


class ObjectTooLarge(PermanentError):
    """The object is larger than the configured read limit."""


class ArtifactStore(Protocol):
    """Object storage: bounded reads, writes to the configured bucket, signed GET URLs."""

    @property
    def bucket(self) -> str: ...

    @property
    def prefix(self) -> str:
        """What the keys this store's writers make start with: '' in production,
        ``replays/<replay_id>/`` for a replay's writes (``step_attempt.store_by_digest``)."""
        ...

    async def read(self, bucket: str, key: str, max_bytes: int) -> bytes: ...

    async def write(self, key: str, data: bytes, content_type: str) -> None: ...

    async def presign_get(self, bucket: str, key: str, ttl_s: int) -> str: ...

    def signed_until(self, url: str, bucket: str, key: str) -> datetime | None:
        """When ``url`` stops working, if it is a GET URL of ``bucket``/``key`` that this store
        signed with its current key and nobody altered; None otherwise (another object, a
        rotated key, a changed byte). Local: no request is made."""


# --- images ----------------------------------------------------------------------------------


class ImageUnreadable(PermanentError):
    """The bytes are not a decodable image of an accepted format."""


class ImageFormatUnsupported(ImageUnreadable):
    """The bytes are an image, but not a PNG, JPEG or WebP (a GIF named .png, a BMP, a TIFF)."""


class ImageAnimated(ImageUnreadable):
    """The image holds more than one frame (an animated PNG or WebP): a plan is one still."""


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


class ImageDimensionsRefused(ImageUnreadable):
    """The header's size breaks a limit (pixels, a side, the aspect ratio, the long-edge band);
    nothing was decoded. ``facts`` are what the header says, for the record (None when the
    image was too big for its header to be read)."""

    def __init__(self, message: str, facts: ImageFacts | None) -> None:
        super().__init__(message)
        self.facts = facts


@dataclass(frozen=True)
class ImageLimits:
    """What an image may be, checked from its header before any pixel is decoded: a bomb (a
    20000 x 20000 PNG of a few KB) is refused for the cost of reading its header."""

    max_pixels: int
    max_side: int
    max_aspect_ratio: float
    long_edge: tuple[int, int] | None = None  # the quality band's (min, max), when one applies

    def problem(self, width: int, height: int) -> str | None:
        """Why a ``width`` x ``height`` image breaks these limits, or None when it does not."""
        size, long_side, short_side = f"{width}x{height} px", max(width, height), min(width, height)
        if short_side < 1:
            return f"{size} has no pixels"
        if width * height > self.max_pixels:
            return f"{size} is {width * height} pixels, over the {self.max_pixels}-pixel cap"
        if long_side > self.max_side:
            return f"{size} has a side of {long_side} px, over the {self.max_side} px limit"
        if long_side > self.max_aspect_ratio * short_side:
            return (
                f"{size} has an aspect ratio of {long_side / short_side:.1f}:1, over the "
                f"{self.max_aspect_ratio:g}:1 limit"
            )
        if self.long_edge is not None and not self.long_edge[0] <= long_side <= self.long_edge[1]:
            return f"{size} has a long edge outside {self.long_edge[0]}-{self.long_edge[1]} px"
        return None


class Imaging(Protocol):
    """Pillow's work on image bytes: measure, convert to PNG, resize (CPU: run off the loop).

    ``inspect`` reads the header first and refuses, before any pixel is decoded, a format other
    than PNG, JPEG or WebP (``ImageFormatUnsupported``), more than one frame (``ImageAnimated``)
    and a size that breaks ``limits`` (``ImageDimensionsRefused``); then it decodes the image
    once, so a truncated or corrupt one is ``ImageUnreadable`` too.
    """

    def inspect(self, data: bytes, limits: ImageLimits) -> ImageFacts: ...

    def as_png(self, data: bytes) -> bytes: ...

    def resized(self, png: bytes, size: tuple[int, int]) -> bytes: ...


# --- the records -----------------------------------------------------------------------------


class Repository(Protocol):
    """The run, artifact and job records the services and the sweeper read and write."""

    async def get_run(self, run_id: str) -> Run | None: ...

    async def fail_run(self, run_id: str, error: str) -> None: ...

    async def blocked_step(self, run_id: str) -> tuple[int, int] | None: ...

    async def review_claimed(self, run_id: str, step_id: int, attempt: int, event_id: str) -> bool:
        """Whether the review ``event_id`` holds the claim on the run's block at that step
        attempt (the ingress claims it before publishing): only the claimant is carried out."""
        ...

    async def step_image(self, run_id: str, step_id: int) -> str | None: ...

    async def job_event(self, job_id: str) -> tuple[str, dict[str, Any]] | None: ...

    async def artifacts(self, artifact_ids: list[str]) -> dict[str, Artifact]: ...

    async def artifact(self, artifact_id: str) -> Artifact | None: ...

    async def store_artifact(self, artifact: Artifact) -> str: ...

    async def merge_artifact_metadata(self, artifact_id: str, metadata: dict[str, Any]) -> None: ...

    async def cache_signed_url(self, artifact_id: str, url: str, expires_at: datetime) -> None: ...

    async def use_checked_copy(
        self, artifact_id: str, storage_bucket: str, storage_path: str, metadata: dict[str, Any]
    ) -> None:
        """The artifact's object is now ``storage_path`` in ``storage_bucket``: Image I/O's
        immutable copy of the bytes it checked, which every later reader gets; the cached
        signed URL of the old object is dropped, and ``metadata`` (the checked image's facts)
        merged into the artifact's, as ``merge_artifact_metadata`` would, in the same write."""


class JobLeases(Protocol):
    """Job leases with fencing: take, renew, finish, and find and fail the ones nobody works on."""

    async def acquire(
        self, job: NewJob, *, worker_id: str, lease_s: float
    ) -> Lease | LeaseRefusal: ...

    async def acquire_with_run(
        self, job: NewJob, *, worker_id: str, lease_s: float
    ) -> tuple[Run, Lease | LeaseRefusal] | None:
        """``acquire`` and the job's run in one step (a step service's hold on its attempt);
        None, with no job touched, when the run does not exist."""

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


# --- routing: the flags and each step attempt's path (docs/migration.md) --------------------


class Routes(Protocol):
    """The routing flags with their history, and the path each step attempt was requested on.

    ``claim`` records a step attempt's route the first time it is requested and returns the
    recorded one ever after: a repeated request (a replay after a crash, a double click) goes
    the way the first went, whatever the flags say by then.
    """

    async def flags(self) -> Flags: ...

    async def set_flags(
        self, updates: Mapping[str, str], *, operator: str, reason: str
    ) -> list[FlagChange]:
        """Apply ``updates`` (flag -> value) at once; one history row per flag whose value
        changed, returned in flag order; a bad name or value changes nothing (FlagRefused)."""

    async def history(self, limit: int) -> list[FlagChange]:
        """The latest ``limit`` changes, newest first."""

    async def claim(self, run_id: str, step_id: int, attempt: int, route: Route) -> Route: ...


# --- the old run-pipeline-step function --------------------------------------------------------


@dataclass(frozen=True)
class LegacyCall:
    """One HTTP call of the old function: its outcome code (``OK``, ``WORKER_LIMIT``,
    ``TIMEOUT``, ...; docs/migration.md), HTTP status, sizes and latency."""

    code: str
    status: int | None
    request_bytes: int
    response_bytes: int
    latency_ms: int

    def as_record(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LegacyAnswer:
    """The old function ran the step: its execution, the step's image, what its checks found."""

    execution_id: str
    output_artifact_id: str
    failures: tuple[Failure, ...]
    call: LegacyCall


class LegacyUnavailable(RetryableError):
    """The old function timed out, was unreachable, throttled or failed on its side."""

    def __init__(self, message: str, call: LegacyCall, retry_after_s: float | None = None):
        super().__init__(message)
        self.call = call
        self.retry_after_s = retry_after_s


class LegacyRefused(PermanentError):
    """The old function refused the step (WORKER_LIMIT, a bad request, an unknown artifact) or
    answered something unusable: the same request cannot succeed."""

    def __init__(self, message: str, call: LegacyCall):
        super().__init__(message)
        self.call = call


class LegacyFunction(Protocol):
    """``run-pipeline-step``: one call runs one step attempt, given ids only; never retried
    inside (the bridge spends the step's budget)."""

    async def run_step(self, request: LegacyStepRequested) -> LegacyAnswer: ...


# --- replays: the same services re-deciding recorded step attempts (docs/replay.md) ---------


@dataclass(frozen=True)
class ReplayTerms:
    """What a replay was started with, from its registry row: its mode and its cap in USD
    (None: no cap). Neither changes while it runs."""

    mode: ReplayMode
    max_usd: float | None


class ReplayLedger(Protocol):
    """A replay's records as its workers keep them: its terms and status, its cost, and how
    each selected attempt went (the caller works for ``replay_id``)."""

    async def terms(self, replay_id: str) -> ReplayTerms | None: ...

    async def status(self, replay_id: str) -> str | None:
        """``running``, ``completed``, ``cancelled``, ``failed``, ``purged``; None: unknown."""
        ...

    async def spent(self, replay_id: str) -> float: ...

    async def reserve(self, replay_id: str, usd: float) -> bool:
        """Add ``usd`` to the replay's cost if that stays within its cap, atomically."""
        ...

    async def add_cost(self, replay_id: str, usd: float) -> None:
        """Add ``usd`` to the replay's cost (negative: give back part of a reservation)."""
        ...

    async def mark_attempt(
        self,
        replay_id: str,
        run_id: str,
        step_id: int,
        attempt: int,
        status: str,
        error: str | None = None,
    ) -> None:
        """The attempt is ``decided``, ``failed`` (``error`` says why) or ``cancelled``."""
        ...

    async def note_reconstructed(
        self, replay_id: str, run_id: str, step_id: int, attempt: int
    ) -> None:
        """A frozen answer of the attempt was rebuilt from stored results, not recorded."""
        ...


@dataclass(frozen=True)
class RecordedCall:
    """How production's model call of one step attempt and purpose ended: the last transport
    try that got an answer, else the last one made. ``content`` is None for a call made before
    answers were recorded (or one whose answer had no content)."""

    outcome: str
    content: str | None
    finish_reason: str | None
    error: str | None


@dataclass(frozen=True)
class OriginalDecision:
    """What production's Supervisor recorded for one step attempt: its audit and failures."""

    consistency_score: float | None
    contradictions: tuple[str, ...]
    failures: tuple[Failure, ...]


class RecordedAnswers(Protocol):
    """Production's records of a step attempt, read-only: what a frozen replay answers from."""

    async def call(
        self, run_id: str, step_id: int, attempt: int, purpose: Purpose
    ) -> RecordedCall | None: ...

    async def decision(self, run_id: str, step_id: int, attempt: int) -> OriginalDecision | None:
        """The Supervisor's decision of the step attempt (not a reviewer's), if recorded."""
        ...

    async def spaces_artifact(self, run_id: str, step_id: int, attempt: int) -> Artifact | None:
        """The Spaces document the Info Worker stored for the step attempt, if it did."""
        ...

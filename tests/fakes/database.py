"""The in-memory tables the PostgreSQL fakes share, as one pool shares one database.

Rows mirror the columns of ``planstream/adapters/postgres/sql`` that the adapters read or write.
JSON columns are stored through a JSON round trip, as ``jsonb`` stores them: a value that is not
JSON fails here as it would there, and nobody shares a mutable dict with the table.
"""

import json
from dataclasses import dataclass, field
from datetime import datetime
from itertools import count
from typing import Any

from planstream.domain.events import Quality
from planstream.domain.records import ArtifactKind, Run, Upload
from planstream.ports import ModelCall
from tests.fakes.clock import FakeClock

__all__ = [
    "ArtifactRow",
    "DecisionRow",
    "FakeDatabase",
    "FakeIntegrityError",
    "JobRow",
    "RunRow",
    "StaleWrite",
    "jsonb",
]


class FakeIntegrityError(Exception):
    """A write the real schema refuses (a foreign or unique key): asyncpg raises its own here."""


def jsonb(value: Any) -> Any:
    """``value`` as a ``jsonb`` column gives it back: a fresh copy, JSON values only."""
    return json.loads(json.dumps(value))


@dataclass
class RunRow:
    run_id: str
    upload_id: str
    ratio: str
    quality_post_step4: Quality
    request_text: str | None
    status: str
    payload_size_estimate: int
    current_step: int = 0
    block_reason: str | None = None
    last_error: str | None = None
    updated_at: datetime | None = None


@dataclass
class JobRow:
    job_id: str
    run_id: str
    step_id: int
    attempt: int
    service: str
    idempotency_key: str
    payload_ref: dict[str, Any]
    max_attempts: int
    created_at: datetime
    updated_at: datetime
    status: str = "pending"
    attempts: int = 0
    request_key: str | None = None
    result_ref: dict[str, Any] | None = None
    locked_at: datetime | None = None
    locked_by: str | None = None
    lease_expires_at: datetime | None = None
    lease_epoch: int = 0
    result_epoch: int | None = None
    published_at: datetime | None = None
    last_error: str | None = None
    last_error_stack: str | None = None
    processing_time_ms: int | None = None
    completed_at: datetime | None = None
    redriven_at: datetime | None = None
    redrives: int = 0


@dataclass
class ArtifactRow:
    artifact_id: str
    run_id: str | None
    step_id: int | None
    kind: ArtifactKind
    storage_bucket: str
    storage_path: str
    created: tuple[datetime, int]  # created_at, then insertion order to break ties
    upload_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    signed_url_cached: str | None = None
    signed_url_expires_at: datetime | None = None


@dataclass(frozen=True)
class StaleWrite:
    """A row of ``pipeline_stale_writes``: a write refused because its epoch was stale."""

    job_id: str
    presented_epoch: int
    current_epoch: int
    worker_id: str
    attempted: str
    refused_at: datetime


@dataclass(frozen=True)
class DecisionRow:
    run_id: str
    step_id: int
    attempt: int
    created: tuple[datetime, int]


class FakeDatabase:
    """The tables; ``clock`` is the database's ``now()``."""

    def __init__(self, clock: FakeClock | None = None) -> None:
        self.clock = clock or FakeClock()
        self.uploads: dict[str, Upload] = {}
        self.runs: dict[str, RunRow] = {}
        self.jobs: dict[str, JobRow] = {}
        self.artifacts: dict[str, ArtifactRow] = {}
        self.stale_writes: list[StaleWrite] = []
        self.model_calls: dict[str, ModelCall] = {}
        self.decisions: list[DecisionRow] = []
        # run_reviews: (run_id, step_id, attempt) -> the event id of the review that claimed it
        self.review_claims: dict[tuple[str, int, int], str] = {}
        self._sequence = count()

    def now(self) -> datetime:
        return self.clock()

    def stamp(self) -> tuple[datetime, int]:
        """Now, with a sequence number that orders rows made at the same moment."""
        return self.clock(), next(self._sequence)

    def job_by_key(self, idempotency_key: str) -> JobRow | None:
        return next((j for j in self.jobs.values() if j.idempotency_key == idempotency_key), None)

    def run(self, run_id: str) -> Run | None:
        """The run as ``SELECT … FROM pipeline_runs`` gives it (no owner is kept here)."""
        row = self.runs.get(run_id)
        if row is None:
            return None
        return Run(
            run_id=row.run_id,
            upload_id=row.upload_id,
            ratio=row.ratio,
            quality_post_step4=row.quality_post_step4,
            request_text=row.request_text,
            status=row.status,
            current_step=row.current_step,
        )

    def require_run(self, run_id: str) -> None:
        """The foreign key every run-scoped row has."""
        if run_id not in self.runs:
            raise FakeIntegrityError(f"run {run_id} does not exist (foreign key)")

    def record_decision(self, run_id: str, step_id: int, attempt: int) -> None:
        """A ``pipeline_decisions`` row, as the decisions sink writes it (no port writes it)."""
        self.require_run(run_id)
        self.decisions.append(DecisionRow(run_id, step_id, attempt, self.stamp()))

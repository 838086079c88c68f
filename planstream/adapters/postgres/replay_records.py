"""What a replay selects and records, as read from PostgreSQL (values, no I/O).

A recorded decision keeps its failures and audit in ``pipeline_decisions.rule_checks``
(``{"failure_count": n, "failures": [...]}``) and ``llm_audit`` (``{"consistency_score": s,
"contradictions": [...], ...}``), as ``decision_log.decision_row`` writes them; these types read
them back into the domain's ``Failure`` and ``replay.Side``.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, cast

from pydantic import ValidationError

from planstream.domain.errors import PermanentError
from planstream.domain.events import Decision, Failure
from planstream.domain.ids import is_id
from planstream.domain.replay import Selection, Side

__all__ = [
    "AttemptStatus",
    "RecordedDecision",
    "ReplayRecord",
    "ReplayedAttempt",
    "SelectedAttempt",
    "Selection",  # planstream.domain.replay's, here beside the rows it selects
    "failures_of",
    "score_of",
]

AttemptStatus = Literal["pending", "decided", "failed", "cancelled"]
"""Where one selected attempt is: waiting, re-decided, failed (why in ``error``), cancelled."""


@dataclass(frozen=True)
class RecordedDecision:
    """A decision of one step attempt as stored: production's, or one a replay made."""

    run_id: str
    step_id: int
    attempt: int
    decision_id: str
    decision: Decision
    block_reason: str | None
    failures: tuple[Failure, ...]
    failure_count: int
    consistency_score: float | None
    versions: dict[str, Any]
    decided_at: datetime

    def side(self, cost_usd: float = 0.0) -> Side:
        """This decision as one side of the diff."""
        return Side(
            self.decision, self.block_reason, self.failures, self.consistency_score, cost_usd
        )

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> "RecordedDecision":
        """From a ``pipeline_decisions`` row (decision_id, decision, block_reason, rule_checks,
        llm_audit, versions, created_at and the attempt's run_id, step_id, attempt)."""
        failures, count = failures_of(row["decision_id"], row["rule_checks"])
        return cls(
            run_id=row["run_id"],
            step_id=row["step_id"],
            attempt=row["attempt"],
            decision_id=row["decision_id"],
            decision=cast(Decision, row["decision"]),
            block_reason=row["block_reason"],
            failures=failures,
            failure_count=count,
            consistency_score=score_of(row["llm_audit"]),
            versions=dict(row["versions"] or {}),
            decided_at=row["created_at"],
        )


@dataclass(frozen=True)
class SelectedAttempt:
    """A recorded Supervisor decision a replay re-decides: the attempt, what it was decided on
    (``decided_on``: the event's kind, ``comparison.completed`` or ``step.failed``; its image
    and Spaces artifacts) and the decision as stored."""

    run_id: str
    step_id: int
    attempt: int
    decision_id: str
    decision: Decision
    block_reason: str | None
    image_artifact_id: str | None
    spaces_artifact_id: str | None
    failures: tuple[Failure, ...]
    failure_count: int
    consistency_score: float | None
    decided_at: datetime
    versions: dict[str, Any] = field(default_factory=dict)
    decided_on: str | None = None

    @property
    def key(self) -> tuple[str, int, int]:
        return self.run_id, self.step_id, self.attempt

    def side(self) -> Side:
        """The recorded decision as the original side of the diff."""
        return Side(self.decision, self.block_reason, self.failures, self.consistency_score)

    @classmethod
    def of_decision(cls, row: Mapping[str, Any]) -> "SelectedAttempt":
        """From a selected ``pipeline_decisions`` row with what its Supervisor job kept."""
        failures, count = failures_of(row["decision_id"], row["rule_checks"])
        return cls(
            run_id=row["run_id"],
            step_id=row["step_id"],
            attempt=row["attempt"],
            decision_id=row["decision_id"],
            decision=cast(Decision, row["decision"]),
            block_reason=row["block_reason"],
            image_artifact_id=_artifact_id(row["image_artifact_id"]),
            spaces_artifact_id=_artifact_id(row["spaces_artifact_id"]),
            failures=failures,
            failure_count=count,
            consistency_score=score_of(row["llm_audit"]),
            decided_at=row["created_at"],
            versions=dict(row["versions"] or {}),
            decided_on=row["decided_on"],
        )

    @classmethod
    def of_attempt(cls, row: Mapping[str, Any]) -> "SelectedAttempt":
        """From a ``replay_attempts`` row (what :meth:`row` stored)."""
        failures, _ = failures_of(row["decision_id"], row["failures"])
        return cls(
            run_id=row["run_id"],
            step_id=row["step_id"],
            attempt=row["attempt"],
            decision_id=row["decision_id"],
            decision=cast(Decision, row["decision"]),
            block_reason=row["block_reason"],
            image_artifact_id=row["image_artifact_id"],
            spaces_artifact_id=row["spaces_artifact_id"],
            failures=failures,
            failure_count=row["failure_count"],
            consistency_score=row["consistency_score"],
            decided_at=row["decided_at"],
            versions=dict(row["versions"] or {}),
            decided_on=row["decided_on"],
        )

    def row(self) -> tuple[Any, ...]:
        """The ``replay_attempts`` columns (replay_queries.ATTEMPT_COLUMNS), in order."""
        return (
            self.run_id,
            self.step_id,
            self.attempt,
            self.decision_id,
            self.decision,
            self.block_reason,
            [f.model_dump(mode="json") for f in self.failures],
            self.failure_count,
            self.consistency_score,
            self.decided_at,
            self.versions,
            self.decided_on,
            self.image_artifact_id,
            self.spaces_artifact_id,
        )


@dataclass(frozen=True)
class ReplayedAttempt:
    """One selected attempt in the replay: its state, the decision the replay made (None until
    it made one) and what the replay's model calls for it cost."""

    run_id: str
    step_id: int
    attempt: int
    status: AttemptStatus
    error: str | None
    reconstructed: bool
    replayed_at: datetime | None
    decision: RecordedDecision | None
    cost_usd: float
    model_calls: int

    def side(self) -> Side | None:
        """The replayed side of the diff, or None when there is none (yet)."""
        return None if self.decision is None else self.decision.side(self.cost_usd)


@dataclass(frozen=True)
class ReplayRecord:
    """A replay's registry row: who started it, on what, and how far it got."""

    replay_id: str
    started_by: str
    started_at: datetime
    mode: str
    selection: dict[str, Any]
    versions: dict[str, Any]
    max_usd: float | None
    status: str
    attempts_total: int
    attempts_done: int
    attempts_failed: int
    cost_usd: float
    finished_at: datetime | None
    note: str | None

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> "ReplayRecord":
        values = dict(row)
        values["cost_usd"] = float(values["cost_usd"])
        if values["max_usd"] is not None:
            values["max_usd"] = float(values["max_usd"])
        return cls(**values)


def failures_of(decision_id: str, rule_checks: Any) -> tuple[tuple[Failure, ...], int]:
    """The failures a decision listed and how many it had, from its ``rule_checks``."""
    listed: Any = rule_checks.get("failures", []) if isinstance(rule_checks, dict) else rule_checks
    if not isinstance(listed, list):
        raise PermanentError(f"decision {decision_id}: its rule checks are not a list of failures")
    try:
        failures = tuple(Failure.model_validate(item) for item in listed)
    except ValidationError as exc:
        raise PermanentError(f"decision {decision_id}: a stored failure is unreadable") from exc
    count = rule_checks.get("failure_count") if isinstance(rule_checks, dict) else None
    return failures, count if isinstance(count, int) and count >= 0 else len(failures)


def score_of(llm_audit: Any) -> float | None:
    """The audit's consistency score, when it scored."""
    score = llm_audit.get("consistency_score") if isinstance(llm_audit, dict) else None
    if isinstance(score, bool) or not isinstance(score, int | float):
        return None
    return float(score)


def _artifact_id(value: Any) -> str | None:
    """An artifact id read from a kept event, if it is one (the event is data, not trusted)."""
    return value if isinstance(value, str) and value.startswith("art_") and is_id(value) else None

"""The decision diff of a replay: each recorded step decision beside the one a replay made.

A replay re-decides step attempts the Supervisor already decided, with today's rules, prompts
and models (docs/replay.md). This module compares the two sides of each attempt and sums them
up; it reads nothing and writes nothing, so the CLI, the console and the CI gate all show the
same numbers.
"""

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Literal

from planstream.domain.events import Decision, Failure, Severity
from planstream.domain.ids import is_id

__all__ = [
    "FailureKey",
    "ReplayMode",
    "ReplaySummary",
    "Selection",
    "SeverityChange",
    "Side",
    "StepDiff",
    "flip_gate",
    "summarise",
]

ReplayMode = Literal["frozen", "live"]
"""``frozen`` reuses the recorded model answers (rules and decision code only); ``live`` asks
the model again with today's prompts and models."""

_BLOCK_REASON: Final = re.compile(r"[A-Z][A-Z0-9_]{2,47}|[a-z][a-z_]{2,47}")

FailureKey = tuple[str, str | None]
"""A failure's identity across the two sides: its rule and the space it is about."""


@dataclass(frozen=True)
class Side:
    """One side of a step attempt's decision: what was decided, why, and on what."""

    decision: Decision
    block_reason: str | None
    failures: tuple[Failure, ...]
    consistency_score: float | None
    cost_usd: float = 0.0

    def failures_by_key(self) -> dict[FailureKey, Failure]:
        """The failures by rule and space; the first of a repeated key stands for it."""
        keyed: dict[FailureKey, Failure] = {}
        for failure in self.failures:
            keyed.setdefault((failure.rule, failure.space_id), failure)
        return keyed


@dataclass(frozen=True)
class SeverityChange:
    """A failure both sides found, at a different severity."""

    key: FailureKey
    before: Severity
    after: Severity


@dataclass(frozen=True)
class StepDiff:
    """One recorded step attempt and its replay (``replayed`` None: not replayed, or failed)."""

    run_id: str
    step_id: int
    attempt: int
    original: Side
    replayed: Side | None
    error: str | None = None

    @property
    def flip(self) -> str | None:
        """``"proceed→retry"`` and the like when the decision changed, else None."""
        if self.replayed is None or self.replayed.decision == self.original.decision:
            return None
        return f"{self.original.decision}→{self.replayed.decision}"

    @property
    def reason_changed(self) -> bool:
        """Both sides blocked, for different reasons."""
        return (
            self.replayed is not None
            and self.original.decision == self.replayed.decision == "block"
            and self.original.block_reason != self.replayed.block_reason
        )

    @property
    def failures_added(self) -> tuple[FailureKey, ...]:
        """Failures only the replay found, in the replay's order."""
        if self.replayed is None:
            return ()
        before = self.original.failures_by_key()
        return tuple(key for key in self.replayed.failures_by_key() if key not in before)

    @property
    def failures_removed(self) -> tuple[FailureKey, ...]:
        """Failures only the original found, in the original's order."""
        if self.replayed is None:
            return ()
        after = self.replayed.failures_by_key()
        return tuple(key for key in self.original.failures_by_key() if key not in after)

    @property
    def severity_changes(self) -> tuple[SeverityChange, ...]:
        if self.replayed is None:
            return ()
        after = self.replayed.failures_by_key()
        return tuple(
            SeverityChange(key, failure.severity, after[key].severity)
            for key, failure in self.original.failures_by_key().items()
            if key in after and after[key].severity != failure.severity
        )

    @property
    def score_delta(self) -> float | None:
        """The replay's consistency score minus the original's, when both audits scored."""
        if self.replayed is None:
            return None
        before, after = self.original.consistency_score, self.replayed.consistency_score
        if before is None or after is None:
            return None
        return round(after - before, 6)

    @property
    def changed(self) -> bool:
        """Anything an operator would want to look at: a flip, a new block reason, a failure
        added or removed, or a severity that moved."""
        return bool(
            self.flip
            or self.reason_changed
            or self.failures_added
            or self.failures_removed
            or self.severity_changes
        )


@dataclass(frozen=True)
class ReplaySummary:
    """The whole replay in numbers."""

    attempts: int
    replayed: int
    unchanged: int
    flips: dict[str, int] = field(default_factory=dict)
    reasons_changed: int = 0
    failures_added: int = 0
    failures_removed: int = 0
    severity_changes: int = 0
    errors: int = 0
    replay_cost_usd: float = 0.0

    @property
    def flip_count(self) -> int:
        return sum(self.flips.values())


def summarise(diffs: Iterable[StepDiff]) -> ReplaySummary:
    """Count the flips by kind and every other change over ``diffs``."""
    listed: Sequence[StepDiff] = tuple(diffs)
    done = [d for d in listed if d.replayed is not None]
    flips = Counter(d.flip for d in done if d.flip is not None)
    return ReplaySummary(
        attempts=len(listed),
        replayed=len(done),
        unchanged=sum(1 for d in done if not d.changed),
        flips=dict(sorted(flips.items())),
        reasons_changed=sum(1 for d in done if d.reason_changed),
        failures_added=sum(len(d.failures_added) for d in done),
        failures_removed=sum(len(d.failures_removed) for d in done),
        severity_changes=sum(len(d.severity_changes) for d in done),
        errors=sum(1 for d in listed if d.error is not None),
        replay_cost_usd=round(sum(d.replayed.cost_usd for d in done if d.replayed), 6),
    )


def flip_gate(summary: ReplaySummary, max_flips: int) -> str | None:
    """Why a CI gate on the replay fails (``None``: it passes). A replay with an attempt it
    could not replay fails too: an unknown is not a pass."""
    if summary.errors:
        return f"{summary.errors} of {summary.attempts} attempts could not be replayed"
    if summary.replayed < summary.attempts:
        waiting = summary.attempts - summary.replayed
        return f"{waiting} of {summary.attempts} attempts are not replayed yet"
    if summary.flip_count > max_flips:
        kinds = ", ".join(f"{kind} {count}" for kind, count in summary.flips.items())
        return f"{summary.flip_count} decisions flipped ({kinds}); at most {max_flips} allowed"
    return None


@dataclass(frozen=True)
class Selection:
    """Which recorded decisions a replay re-decides: runs, a time window on the decision, the
    decision, its block reason, and at most ``limit`` attempts (newest runs first)."""

    run_ids: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    decision: Decision | None = None
    block_reason: str | None = None
    limit: int = 100

    def problem(self, max_limit: int) -> str | None:
        """Why the selection is refused, or None."""
        bad = [run for run in self.run_ids if not (is_id(run) and run.startswith("run_"))]
        if bad:
            return f"--run takes run ids (run_ + 32 hex digits); refused: {', '.join(bad[:3])}"
        for name, moment in (("--since", self.since), ("--until", self.until)):
            if moment is not None and moment.tzinfo is None:
                return f"{name} needs a time zone (e.g. 2026-12-01T00:00:00+00:00)"
        if self.since and self.until and self.since >= self.until:
            return "--since must be before --until"
        if self.block_reason is not None and not _BLOCK_REASON.fullmatch(self.block_reason):
            return "--block-reason takes a rule name or an outcome (retry_budget_exhausted, …)"
        if not 1 <= self.limit <= max_limit:
            return f"--limit must be between 1 and {max_limit} (replay_max_attempts)"
        return None

    def as_json(self) -> dict[str, object]:
        """The selection as ``pipeline_replays.selection`` keeps it."""
        return {
            "run_ids": list(self.run_ids),
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "decision": self.decision,
            "block_reason": self.block_reason,
            "limit": self.limit,
        }

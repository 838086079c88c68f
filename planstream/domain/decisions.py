"""The Supervisor's part of RULES.md: the audit rule, the decision and the retry budget.

``decide_case`` composes every rule in RULES.md order; the services call the same pieces:
the Comparison Worker ``rules.evaluate_document`` and ``rules.request_failures``, the Supervisor
``audit_failures`` and ``decide``.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from planstream.domain.events import Decision, Failure
from planstream.domain.rules import (
    AUDIT_INCONSISTENT,
    RETRY_BUDGET_EXHAUSTED,
    TOO_MANY_FAILURES,
    Mismatch,
    Policy,
    evaluate_document,
    request_failures,
)
from planstream.domain.spaces import ImageSize, SchemaViolation, SpacesDocument

__all__ = [
    "Audit",
    "DecisionCase",
    "DecisionResult",
    "RetryBudget",
    "audit_failures",
    "budget_window",
    "case_failures",
    "decide",
    "decide_case",
]


@dataclass(frozen=True)
class Audit:
    """The Supervisor's audit of a document: how consistent it is, and what contradicts what."""

    consistency_score: float
    contradictions: tuple[str, ...] = ()


@dataclass(frozen=True)
class RetryBudget:
    """Which Info Worker attempt of a step this is (1-based) and how many the step may have."""

    attempt: int
    max_attempts: int

    @property
    def exhausted(self) -> bool:
        """Whether a retry would exceed the budget, so that it becomes a block."""
        return self.attempt >= self.max_attempts

    @property
    def remaining(self) -> int:
        """How many more attempts the step may have (``DecisionMade.retry_budget_remaining``)."""
        return max(0, self.max_attempts - self.attempt)


@dataclass(frozen=True)
class DecisionResult:
    """What to do with the step, why it is blocked (if it is), and every failure in order."""

    decision: Decision
    block_reason: str | None
    failures: tuple[Failure, ...]


@dataclass(frozen=True)
class DecisionCase:
    """Everything one decision reads; ``spaces`` is None when no document was produced."""

    spaces: SpacesDocument | SchemaViolation | None
    image: ImageSize | None = None
    mismatches: tuple[Mismatch, ...] = ()
    audit: Audit | None = None
    upstream_failures: tuple[Failure, ...] = ()
    attempt: int = 1
    max_attempts: int | None = None  # None: the policy's max_attempts


def budget_window(attempt: int, max_attempts: int) -> tuple[int, int]:
    """The first and last attempt of the budget ``attempt`` belongs to.

    A step has ``max_attempts`` attempts; a reviewer's retry of a blocked step starts a fresh
    budget at the next window (attempts 4-6 after 1-3, with the default of 3).
    """
    first = (attempt - 1) // max_attempts * max_attempts + 1
    return first, first + max_attempts - 1


def audit_failures(audit: Audit | None, policy: Policy) -> list[Failure]:
    """AUDIT_INCONSISTENT when an audit scored the document below the consistency threshold."""
    if audit is None or audit.consistency_score >= policy.min_consistency_score:
        return []
    return [
        AUDIT_INCONSISTENT.failure(
            f"consistency score {audit.consistency_score:g} is below "
            f"{policy.min_consistency_score:g}; contradictions: {len(audit.contradictions)}"
        )
    ]


def case_failures(case: DecisionCase, policy: Policy) -> list[Failure]:
    """Every failure of the case in RULES.md order: upstream, document, request, audit."""
    failures = list(case.upstream_failures)
    if case.spaces is not None:
        failures += evaluate_document(case.spaces, case.image, policy)
    if isinstance(case.spaces, SchemaViolation):
        return failures  # SCHEMA_INVALID stops the request and audit rules too.
    return failures + request_failures(case.mismatches) + audit_failures(case.audit, policy)


def decide(failures: Sequence[Failure], budget: RetryBudget, policy: Policy) -> DecisionResult:
    """Block, retry or proceed: the first matching rule of RULES.md, then the retry budget."""
    listed = tuple(failures)
    critical = next((f for f in listed if f.severity == "critical"), None)
    if critical is not None:
        return DecisionResult("block", critical.rule, listed)
    if len(listed) > policy.max_failures:
        return DecisionResult("block", TOO_MANY_FAILURES, listed)
    if any(f.severity == "high" for f in listed):
        if budget.exhausted:
            return DecisionResult("block", RETRY_BUDGET_EXHAUSTED, listed)
        return DecisionResult("retry", None, listed)
    return DecisionResult("proceed", None, listed)


def decide_case(case: DecisionCase, policy: Policy) -> DecisionResult:
    """The decision for one case, as ``planstream decide`` prints it."""
    max_attempts = policy.max_attempts if case.max_attempts is None else case.max_attempts
    budget = RetryBudget(case.attempt, max_attempts)
    return decide(case_failures(case, policy), budget, policy)

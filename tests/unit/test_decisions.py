"""The decision, the retry budget, the audit rule and the order of a case's failures."""

import pytest

from planstream.domain.decisions import (
    Audit,
    DecisionCase,
    RetryBudget,
    audit_failures,
    case_failures,
    decide,
    decide_case,
)
from planstream.domain.events import Failure, Severity
from planstream.domain.rules import Mismatch, Policy
from planstream.domain.spaces import ImageSize, SchemaViolation
from tests.factories import make_space, make_spaces

DEFAULTS = Policy()


def make_failure(severity: Severity, rule: str = "SOME_RULE") -> Failure:
    return Failure(rule=rule, severity=severity, detail="")


CLEAN = make_spaces(make_space(1, "kitchen"), make_space(2, "bedroom"), make_space(3, "bathroom"))
UNFURNISHED = make_spaces(
    make_space(1, "kitchen", furnishings=()),
    make_space(2, "bedroom"),
    make_space(3, "bathroom"),
)


@pytest.mark.parametrize(
    ("severities", "attempt", "max_attempts", "decision", "block_reason"),
    [
        ([], 1, 3, "proceed", None),
        (["low"], 3, 3, "proceed", None),
        (["low", "medium"] * 2 + ["medium"], 1, 3, "proceed", None),  # five
        (["medium"] * 5, 3, 3, "proceed", None),  # the budget only turns a retry into a block
        (["low"] * 6, 1, 3, "block", "too_many_failures"),
        (["high"], 1, 3, "retry", None),
        (["high"], 2, 3, "retry", None),
        (["high"], 3, 3, "block", "retry_budget_exhausted"),
        (["high"], 4, 3, "block", "retry_budget_exhausted"),
        (["high"], 1, 1, "block", "retry_budget_exhausted"),
        (["high", "low", "low", "low", "low"], 3, 3, "block", "retry_budget_exhausted"),
        (["high"] + ["low"] * 5, 1, 3, "block", "too_many_failures"),  # six, on attempt 1
        (["high"] * 6, 3, 3, "block", "too_many_failures"),
        (["critical"], 1, 3, "block", "RULE_0"),
        (["critical"], 3, 3, "block", "RULE_0"),
        (["low", "high", "critical", "critical"], 1, 3, "block", "RULE_2"),  # the first critical
        (["low"] * 6 + ["critical"], 1, 3, "block", "RULE_6"),  # critical is checked first
    ],
)
def test_decide_first_match_wins_then_the_budget(
    severities: list[Severity],
    attempt: int,
    max_attempts: int,
    decision: str,
    block_reason: str | None,
) -> None:
    failures = [make_failure(s, f"RULE_{i}") for i, s in enumerate(severities)]
    result = decide(failures, RetryBudget(attempt, max_attempts), DEFAULTS)
    assert (result.decision, result.block_reason) == (decision, block_reason)
    assert result.failures == tuple(failures)


@pytest.mark.parametrize(
    ("max_failures", "count", "decision"),
    [(5, 5, "proceed"), (5, 6, "block"), (2, 3, "block"), (10, 10, "proceed")],
)
def test_the_failure_limit_comes_from_the_policy(
    max_failures: int, count: int, decision: str
) -> None:
    failures = [make_failure("low")] * count
    result = decide(failures, RetryBudget(1, 3), Policy(max_failures=max_failures))
    assert result.decision == decision


@pytest.mark.parametrize(
    ("attempt", "max_attempts", "exhausted", "remaining"),
    [(1, 3, False, 2), (2, 3, False, 1), (3, 3, True, 0), (5, 3, True, 0), (1, 1, True, 0)],
)
def test_retry_budget(attempt: int, max_attempts: int, exhausted: bool, remaining: int) -> None:
    budget = RetryBudget(attempt, max_attempts)
    assert (budget.exhausted, budget.remaining) == (exhausted, remaining)


@pytest.mark.parametrize(
    ("audit", "policy", "details"),
    [
        (None, DEFAULTS, []),
        (Audit(1.0), DEFAULTS, []),
        (Audit(0.5), DEFAULTS, []),
        (
            Audit(0.49, ("notes mention a store",)),
            DEFAULTS,
            ["0.49 is below 0.5; contradictions: 1"],
        ),
        (Audit(0.0), DEFAULTS, ["0 is below 0.5; contradictions: 0"]),
        (Audit(0.6), Policy(min_consistency_score=0.7), ["0.6 is below 0.7; contradictions: 0"]),
    ],
)
def test_audit_inconsistent(audit: Audit | None, policy: Policy, details: list[str]) -> None:
    failures = audit_failures(audit, policy)
    assert [(f.rule, f.severity, f.detail) for f in failures] == [
        ("AUDIT_INCONSISTENT", "high", f"consistency score {detail}") for detail in details
    ]


def rules_of(case: DecisionCase) -> list[str]:
    return [failure.rule for failure in case_failures(case, DEFAULTS)]


MISMATCHES = (Mismatch("no study", "medium"), Mismatch("one bathroom, two asked", "high"))
LOW_AUDIT = Audit(0.2)
UPSTREAM = (make_failure("low", "IMAGE_DIMENSIONS_INVALID"), make_failure("critical", "UPSTREAM"))


@pytest.mark.parametrize(
    ("case", "rules"),
    [
        (DecisionCase(CLEAN), []),
        (
            DecisionCase(UNFURNISHED, mismatches=MISMATCHES, audit=LOW_AUDIT),
            [
                "HABITABLE_WITHOUT_FURNISHINGS",
                "REQUEST_MISMATCH",
                "REQUEST_MISMATCH",
                "AUDIT_INCONSISTENT",
            ],
        ),
        (
            DecisionCase(UNFURNISHED, audit=LOW_AUDIT, upstream_failures=UPSTREAM),
            [
                "IMAGE_DIMENSIONS_INVALID",
                "UPSTREAM",
                "HABITABLE_WITHOUT_FURNISHINGS",
                "AUDIT_INCONSISTENT",
            ],
        ),
        # SCHEMA_INVALID stops the request and audit rules; upstream failures stay.
        (
            DecisionCase(
                SchemaViolation("not JSON: Extra data"),
                mismatches=MISMATCHES,
                audit=LOW_AUDIT,
                upstream_failures=UPSTREAM,
            ),
            ["IMAGE_DIMENSIONS_INVALID", "UPSTREAM", "SCHEMA_INVALID"],
        ),
        # No document: the request and audit rules still read what they were given.
        (DecisionCase(None, upstream_failures=UPSTREAM[1:]), ["UPSTREAM"]),
        (
            DecisionCase(
                None, mismatches=MISMATCHES[:1], audit=LOW_AUDIT, upstream_failures=UPSTREAM[1:]
            ),
            ["UPSTREAM", "REQUEST_MISMATCH", "AUDIT_INCONSISTENT"],
        ),
        (
            DecisionCase(CLEAN, image=ImageSize(100, 101)),
            ["IMAGE_SIZE_MISMATCH"],
        ),
    ],
)
def test_case_failures_follow_rules_md_order(case: DecisionCase, rules: list[str]) -> None:
    assert rules_of(case) == rules


def test_upstream_failures_keep_their_severity() -> None:
    case = DecisionCase(CLEAN, upstream_failures=UPSTREAM)
    assert [f.severity for f in case_failures(case, DEFAULTS)] == ["low", "critical"]


@pytest.mark.parametrize(
    ("case", "policy", "decision", "block_reason"),
    [
        (DecisionCase(CLEAN), DEFAULTS, "proceed", None),
        (DecisionCase(CLEAN, audit=LOW_AUDIT), DEFAULTS, "retry", None),
        (
            DecisionCase(CLEAN, audit=LOW_AUDIT, attempt=3),
            DEFAULTS,
            "block",
            "retry_budget_exhausted",
        ),
        (DecisionCase(CLEAN, audit=LOW_AUDIT, attempt=3), Policy(max_attempts=4), "retry", None),
        (DecisionCase(CLEAN, audit=LOW_AUDIT, attempt=3, max_attempts=4), DEFAULTS, "retry", None),
        (
            DecisionCase(CLEAN, audit=LOW_AUDIT, attempt=2, max_attempts=2),
            DEFAULTS,
            "block",
            "retry_budget_exhausted",
        ),
        (DecisionCase(SchemaViolation("not JSON")), DEFAULTS, "retry", None),
        (
            DecisionCase(SchemaViolation("not JSON"), attempt=3),
            DEFAULTS,
            "block",
            "retry_budget_exhausted",
        ),
        (DecisionCase(None, upstream_failures=UPSTREAM), DEFAULTS, "block", "UPSTREAM"),
        # A critical upstream failure blocks even though the document is evaluated too.
        (DecisionCase(UNFURNISHED, upstream_failures=UPSTREAM), DEFAULTS, "block", "UPSTREAM"),
        (
            DecisionCase(make_spaces(make_space(1, "kitchen"), document_type="site_plan")),
            DEFAULTS,
            "block",
            "NOT_A_FLOOR_PLAN",
        ),
    ],
)
def test_decide_case(
    case: DecisionCase, policy: Policy, decision: str, block_reason: str | None
) -> None:
    result = decide_case(case, policy)
    assert (result.decision, result.block_reason) == (decision, block_reason)

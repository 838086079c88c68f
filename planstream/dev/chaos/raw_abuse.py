"""T28's raw events: what a producer with access to the topics could write past the ingress.

NUL, C0/C1 controls, a lone surrogate and a non-character in the text fields of reviews,
decisions and upstream failures, an identifier that does not match, a decision for a run that
does not exist, and a review the ingress never accepted (no claim on the block). Each must end
as exactly one dead letter whose error says why, and have no effect.
"""

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from planstream.dev.chaos.inject import MadeRun, step_requested
from planstream.domain.events import step_key
from planstream.domain.ids import new_id
from topics import DECISION_MADE, RUN_REVIEWED, STEP_FAILED, STEP_REQUESTED, TopicSpec

__all__ = ["RawAttack", "raw_attacks", "raw_decision", "raw_review", "unclaimed_review"]


@dataclass(frozen=True)
class RawAttack:
    """One record for a topic, the service that must dead-letter it and a fragment of why."""

    name: str
    topic: TopicSpec
    key: bytes
    value: bytes
    reason: str
    service: str


def _now() -> str:
    return datetime.now(UTC).isoformat()


def raw_decision(run_id: str, **fields: object) -> dict[str, Any]:
    """A DecisionMade as a raw producer writes it (JSON, ``\\u`` escapes and all)."""
    return {
        "kind": "decision.made",
        "event_id": new_id("evt"),
        "run_id": run_id,
        "occurred_at": _now(),
        "step_id": 0,
        "attempt": 1,
        "idempotency_key": step_key(run_id, 0, 1),
        "decision": "proceed",
        "block_reason": None,
        "failure_count": 0,
        "schema_valid": True,
        "retry_budget_remaining": 2,
        **fields,
    }


def raw_review(run_id: str, **fields: object) -> dict[str, Any]:
    """A RunReviewed as a raw producer writes it: no claim taken at the ingress."""
    return {
        "kind": "run.reviewed",
        "event_id": new_id("evt"),
        "run_id": run_id,
        "occurred_at": _now(),
        "action": "approve",
        "reason": "looks fine",
        "reviewer": "mallory",
        **fields,
    }


def _step_failed(run_id: str, **failure: object) -> dict[str, Any]:
    return {
        "kind": "step.failed",
        "event_id": new_id("evt"),
        "run_id": run_id,
        "occurred_at": _now(),
        "step_id": 0,
        "attempt": 1,
        "idempotency_key": step_key(run_id, 0, 1),
        "service": "image_io",
        "failure": {"rule": "IMAGE_UNREADABLE", "severity": "critical", "detail": "x", **failure},
    }


def _attack(
    name: str, topic: TopicSpec, event: dict[str, Any], reason: str, service: str
) -> RawAttack:
    run = str(event["run_id"]).encode()
    return RawAttack(name, topic, run, json.dumps(event).encode(), reason, service)


def raw_attacks(victim: MadeRun, unknown_run: str) -> list[RawAttack]:
    """Bad text in every text field a consumer stores, an id with a NUL, and a decision for
    ``unknown_run``; all but the last about ``victim`` (a run whose step 0 was never asked)."""
    run = victim.run_id
    sup, sink = "supervisor", "decisions_sink"
    attacks = [
        _attack(
            "review reason NUL", RUN_REVIEWED, raw_review(run, reason="x\u0000"), "U+0000", sup
        ),
        _attack(
            "reviewer ESC", RUN_REVIEWED, raw_review(run, reviewer="mallory\u001b"), "reviewer", sup
        ),
        _attack(
            "decision audit_note NUL",
            DECISION_MADE,
            raw_decision(run, audit_note="a\u0000b"),
            "U+0000",
            sink,
        ),
        _attack(
            "decision contradiction C1",
            DECISION_MADE,
            raw_decision(run, contradictions=["c1 \u0085"]),
            "U+0085",
            sink,
        ),
        _attack(
            "decision failure detail lone surrogate",
            DECISION_MADE,
            raw_decision(
                run,
                decision="retry",
                failure_count=1,
                failures=[
                    {"rule": "MISSING_CRITICAL_SPACE", "severity": "high", "detail": "\ud800"}
                ],
            ),
            "Invalid JSON",
            sink,
        ),
        _attack(
            "failure detail BEL",
            STEP_FAILED,
            _step_failed(run, detail="bell \u0007"),
            "U+0007",
            sup,
        ),
        _attack(
            "failure fix non-character",
            STEP_FAILED,
            _step_failed(run, suggested_fix="\uffff"),
            "U+FFFF",
            sup,
        ),
        _attack(
            "decision for an unknown run",
            DECISION_MADE,
            raw_decision(unknown_run),
            "foreign key",
            sink,
        ),
    ]
    request = step_requested(victim, idempotency_key=f"{step_key(run, 0, 1)}\u0000")
    attacks.append(
        RawAttack(
            "step request key NUL",
            STEP_REQUESTED,
            run.encode(),
            request,
            "idempotency_key",
            "image_io",
        )
    )
    return attacks


def unclaimed_review(blocked_run: str) -> RawAttack:
    """A well-formed approval of a blocked run that the ingress never accepted."""
    return _attack(
        "review never claimed",
        RUN_REVIEWED,
        raw_review(blocked_run),
        "holds no claim",
        "supervisor",
    )

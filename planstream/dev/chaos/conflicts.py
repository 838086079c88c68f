"""I2 on the decisions topic: one step attempt, one decider, one decision.

``pipeline_decisions`` cannot show a second decision: its UNIQUE idempotency key keeps the first
row and drops the next one (``ON CONFLICT DO NOTHING``), while the dropped event was published
all the same and may have been followed (an approve and a retry sent together fork a run that
way). The topic keeps every event, so this reads it: for each (run, step, attempt, decider), the
events must carry one idempotency key, one decision and one block reason. The same decision
delivered again (a redelivery or a re-execution) is tolerated here and counted as a
re-execution elsewhere.
"""

from collections.abc import Collection, Sequence
from typing import Any

from planstream.dev.chaos.checkers import Check
from planstream.dev.chaos.streams import Record
from topics import DECISION_MADE

__all__ = ["conflicting_decisions", "decision_events"]

_EVIDENCE = 10

# (run, step, attempt, decider) -> the distinct (idempotency key, decision, block reason) seen.
StepAttempt = tuple[str, str, str, str]
Outcome = tuple[str, str, str]


def _text(value: Any) -> str:
    """A field as text, whatever a raw producer put there (evidence only, never parsed)."""
    return value if isinstance(value, str) else repr(value)


def _outcomes(
    records: Sequence[Record], topic: str, run_ids: Collection[str]
) -> dict[StepAttempt, set[Outcome]]:
    seen: dict[StepAttempt, set[Outcome]] = {}
    for record in records:
        if record.topic != topic:
            continue
        value = record.json()
        if not isinstance(value, dict):
            continue
        run_id = value.get("run_id")
        if not isinstance(run_id, str) or run_id not in run_ids:
            continue
        attempt = (
            run_id,
            _text(value.get("step_id")),
            _text(value.get("attempt")),
            _text(value.get("decided_by", "supervisor")),
        )
        outcome = (
            _text(value.get("idempotency_key")),
            _text(value.get("decision")),
            _text(value.get("block_reason")),
        )
        seen.setdefault(attempt, set()).add(outcome)
    return seen


def conflicting_decisions(
    records: Sequence[Record], namespace: str, run_ids: Collection[str]
) -> Check:
    """I2: step attempts of ``run_ids`` with more than one decision on the decisions topic."""
    topic = DECISION_MADE.full_name(namespace)
    found = [
        f"{run} s{step} a{attempt} {decider}: "
        + "; ".join(f"{decision}/{reason} ({key})" for key, decision, reason in sorted(outcomes))
        for (run, step, attempt, decider), outcomes in sorted(
            _outcomes(records, topic, run_ids).items()
        )
        if len(outcomes) > 1
    ]
    return Check("I2", "dup_decisions_topic", len(found), tuple(found[:_EVIDENCE]))


def decision_events(records: Sequence[Record], namespace: str, run_ids: Collection[str]) -> int:
    """How many decision events of ``run_ids`` the topic held: what the check was run on."""
    topic = DECISION_MADE.full_name(namespace)
    keys = {run_id.encode() for run_id in run_ids}
    return sum(1 for record in records if record.topic == topic and record.key in keys)

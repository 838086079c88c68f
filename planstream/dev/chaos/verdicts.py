"""T21's checkers: a request text or a turned model never makes a verdict the rules did not.

Each takes rows already read (from PostgreSQL, the decisions topic, the canary listener, the
prompts) and returns a ``Check`` with its evidence, so each is tested on a broken history
without the stack (``tests/dev/test_chaos_verdicts.py``):

- ``decisions_out_of_enum``: a decision, decider or block reason outside what the wire allows
  (proceed/retry/block; supervisor/reviewer/legacy; a rule name of the catalogue or an outcome);
- ``rule_blocks_overridden``: a run whose scenario the deterministic rules block (a missing
  bathroom, not a floor plan) that did not end blocked, or whose step 0 the Supervisor let
  proceed: the comparison and the audit may add failures, never remove the rules';
- ``routing_changed``: a routing flag, or its history, that changed during the test;
- ``undelimited_prompts``: a request text that is not, in the comparison's and the audit's
  messages, exactly one JSON string value of the user message (with the system prompt intact);
- ``refusals_missed``: a text the ingress must refuse (a URL, a base64 or hex run) that it took.
"""

import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, get_args

from planstream.dev.chaos.checkers import Check
from planstream.dev.chaos.streams import Record
from planstream.domain.events import Decision, DecisionMade
from planstream.domain.prompts import AUDIT, COMPARISON, audit_messages, comparison_messages
from planstream.domain.rules import ALL_RULES, BLOCK_REASONS
from topics import DECISION_MADE

__all__ = [
    "ALLOWED_BLOCK_REASONS",
    "ALLOWED_DECIDERS",
    "ALLOWED_DECISIONS",
    "RunEnding",
    "decision_rows",
    "decisions_out_of_enum",
    "refusals_missed",
    "routing_changed",
    "rule_blocks_overridden",
    "undelimited_prompts",
]

ALLOWED_DECISIONS: Final = frozenset(get_args(Decision))
ALLOWED_DECIDERS: Final = frozenset(get_args(DecisionMade.model_fields["decided_by"].annotation))
ALLOWED_BLOCK_REASONS: Final = frozenset(rule.name for rule in ALL_RULES) | frozenset(BLOCK_REASONS)
_EVIDENCE = 10


@dataclass(frozen=True)
class RunEnding:
    """How one run ended, with the scenario it was submitted on."""

    run_id: str
    scenario: str
    status: str
    step0_proceeds: int  # Supervisor decisions to proceed from step 0


def decision_rows(
    records: Iterable[Record], namespace: str, run_ids: Collection[str]
) -> list[dict[str, Any]]:
    """The decisions of ``run_ids`` on the decisions topic, as decoded JSON objects."""
    topic = DECISION_MADE.full_name(namespace)
    rows = []
    for record in records:
        if record.topic != topic:
            continue
        value = record.json()
        if isinstance(value, dict) and value.get("run_id") in run_ids:
            rows.append(value)
    return rows


def decisions_out_of_enum(rows: Iterable[Mapping[str, Any]]) -> Check:
    """T21: decisions (table rows or topic events) whose decision, decider or block reason is
    outside the allowed values."""
    found = []
    for row in rows:
        decision, decider = row.get("decision"), row.get("decided_by", "supervisor")
        reason = row.get("block_reason")
        if (
            decision not in ALLOWED_DECISIONS
            or decider not in ALLOWED_DECIDERS
            or (reason is not None and reason not in ALLOWED_BLOCK_REASONS)
            or (decision == "block") != (reason is not None)
        ):
            found.append(
                f"{row.get('run_id')} s{row.get('step_id')}: {decision}/{reason}/{decider}"
            )
    return Check("T21", "decisions_out_of_enum", len(found), tuple(found[:_EVIDENCE]))


def rule_blocks_overridden(
    endings: Iterable[RunEnding], blocked_by_rules: Collection[str]
) -> Check:
    """T21: runs of a scenario in ``blocked_by_rules`` that did not end blocked at step 0."""
    found = [
        f"{e.run_id} ({e.scenario}): {e.status}, {e.step0_proceeds} proceed(s) from step 0"
        for e in endings
        if e.scenario in blocked_by_rules and (e.status != "blocked" or e.step0_proceeds)
    ]
    return Check("T21", "rule_blocks_overridden", len(found), tuple(found[:_EVIDENCE]))


def routing_changed(
    before: Mapping[str, str], after: Mapping[str, str], history_before: int, history_after: int
) -> Check:
    """T21: routing flags whose value changed, and flag changes recorded, during the test."""
    found = [
        f"{name}: {before.get(name)} -> {after.get(name)}"
        for name in sorted(set(before) | set(after))
        if before.get(name) != after.get(name)
    ]
    if history_after != history_before:
        found.append(f"routing_flag_history: {history_after - history_before} new change(s)")
    return Check("T21", "routing_changed", len(found), tuple(found[:_EVIDENCE]))


def _quoted_once(messages: Sequence[Mapping[str, Any]], system: str, text: str) -> bool:
    """Whether the system prompt is ``system`` and the user message is one JSON object whose
    ``request_text`` is exactly ``text`` (the only place the text appears)."""
    if len(messages) != 2 or messages[0]["content"] != system:
        return False
    content = messages[1]["content"]
    if isinstance(content, list):
        parts = [p["text"] for p in content if p.get("type") == "text"]
        if len(parts) != 1:
            return False
        content = parts[0]
    try:
        data = json.loads(content)
    except (TypeError, ValueError):
        return False
    return isinstance(data, dict) and data.get("request_text") == text


def undelimited_prompts(texts: Iterable[str]) -> Check:
    """T21: request texts that the comparison's or the audit's messages do not carry as one
    quoted JSON value under the unchanged system prompt."""
    spaces = {"document_type": "single_floor_plan", "spaces": []}
    found = []
    for text in texts:
        compared = comparison_messages(text, spaces)
        audited = audit_messages("http://s3.invalid/b/k?X-Amz-Signature=0", spaces, [], text)
        if not _quoted_once(compared, COMPARISON.system, text) or not _quoted_once(
            audited, AUDIT.system, text
        ):
            found.append(text[:80])
    return Check("T21", "undelimited_prompts", len(found), tuple(found[:_EVIDENCE]))


def refusals_missed(outcomes: Iterable[tuple[str, bool, str]]) -> Check:
    """T21/I9: (name, must be refused, what the ingress did: acked | refused | ...) where a text
    that must be refused was taken."""
    found = [f"{name}: {status}" for name, must, status in outcomes if must and status != "refused"]
    return Check("I9", "injection_texts_not_refused", len(found), tuple(found[:_EVIDENCE]))

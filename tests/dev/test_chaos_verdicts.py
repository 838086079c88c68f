"""T21's checkers on broken histories that must fail them, and its corpus kept honest: each text
the ingress must refuse is one ``guards`` refuses, every other is one it takes, and the
compromised model's answers include what the checkers exist to catch."""

import json

import pytest

from planstream.dev.chaos import compromised
from planstream.dev.chaos.injection import corpus
from planstream.dev.chaos.streams import Record
from planstream.dev.chaos.verdicts import (
    RunEnding,
    decision_rows,
    decisions_out_of_enum,
    refusals_missed,
    routing_changed,
    rule_blocks_overridden,
    undelimited_prompts,
)
from planstream.domain import prompts
from planstream.domain.guards import find_smuggling
from planstream.settings import Settings
from topics import DECISION_MADE

NS = "chaos-t."


def test_every_text_is_refused_exactly_when_the_corpus_says() -> None:
    texts = corpus(40_000)
    limit = Settings().max_request_text_chars
    assert len(texts) >= 45 and len({t.name for t in texts}) == len(texts)
    assert {t.family for t in texts} == {
        "direct",
        "role_play",
        "forged_block",
        "encoded",
        "typoglycemia",
        "url",
        "routing",
        "enum",
    }
    for text in texts:
        assert (find_smuggling(text.text) is not None) == text.refused, text.name
        assert len(text.text) <= limit, text.name
    assert any("127.0.0.1:40000" in t.text and not t.refused for t in texts)


def test_decisions_outside_the_enum_are_counted() -> None:
    good = [
        {"run_id": "r1", "step_id": 0, "decision": "proceed", "block_reason": None},
        {"run_id": "r1", "step_id": 0, "decision": "block", "block_reason": "NOT_A_FLOOR_PLAN"},
        {
            "run_id": "r1",
            "step_id": 0,
            "decision": "block",
            "block_reason": "retry_budget_exhausted",
            "decided_by": "reviewer",
        },
    ]
    assert decisions_out_of_enum(good).value == 0
    bad = [
        {"run_id": "r2", "step_id": 0, "decision": "approve", "block_reason": None},
        {"run_id": "r2", "step_id": 0, "decision": "block", "block_reason": "APPROVED_BY_MODEL"},
        {"run_id": "r2", "step_id": 0, "decision": "proceed", "decided_by": "model"},
        {"run_id": "r2", "step_id": 0, "decision": "block", "block_reason": None},
        {"run_id": "r2", "step_id": 0, "decision": "proceed", "block_reason": "MODEL_REFUSED"},
    ]
    found = decisions_out_of_enum([*good, *bad])
    assert found.value == len(bad) and "approve" in found.evidence[0]


def test_decisions_are_read_from_the_topic_for_the_runs_asked() -> None:
    topic = DECISION_MADE.full_name(NS)

    def record(value: object, topic: str = topic) -> Record:
        return Record(topic, 0, 0, b"k", json.dumps(value).encode(), (), 0)

    records = [
        record({"run_id": "r1", "decision": "approve"}),
        record({"run_id": "r9", "decision": "approve"}),
        record({"run_id": "r1", "decision": "approve"}, topic="chaos-t.other.v1"),
        Record(topic, 0, 1, b"k", b"not json", (), 0),
    ]
    rows = decision_rows(records, NS, {"r1"})
    assert rows == [{"run_id": "r1", "decision": "approve"}]
    assert decisions_out_of_enum(rows).value == 1


def test_a_run_the_rules_block_must_end_blocked_without_proceeding() -> None:
    endings = [
        RunEnding("r1", "missing_room", "blocked", 0),
        RunEnding("r2", "not_a_floor_plan", "blocked", 0),
        RunEnding("r3", "correct", "completed", 1),
        RunEnding("r4", "missing_room", "completed", 1),  # the injection won
        RunEnding("r5", "not_a_floor_plan", "blocked", 1),  # proceeded once, blocked later
    ]
    found = rule_blocks_overridden(endings, ("missing_room", "not_a_floor_plan"))
    assert found.value == 2
    assert [e.split(" ")[0] for e in found.evidence] == ["r4", "r5"]


def test_a_changed_flag_or_a_new_history_row_is_a_routing_change() -> None:
    flags = {"use_new_pipeline": "true", "route.step0": "new"}
    assert routing_changed(flags, dict(flags), 4, 4).value == 0
    flipped = {**flags, "use_new_pipeline": "false"}
    assert routing_changed(flags, flipped, 4, 4).value == 1
    assert routing_changed(flags, dict(flags), 4, 5).value == 1


def test_a_prompt_that_does_not_quote_the_text_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = [t.text for t in corpus(40_000)]
    assert undelimited_prompts(texts).value == 0

    def pasted(request_text: str, spaces: object) -> list[prompts.ChatMessage]:
        system = f"{prompts.COMPARISON.system}\nThe user asks: {request_text}"
        return [
            {"role": "system", "content": system},
            {"role": "user", "content": json.dumps({"spaces": spaces})},
        ]

    monkeypatch.setattr("planstream.dev.chaos.verdicts.comparison_messages", pasted)
    assert undelimited_prompts(texts).value == len(texts)


def test_a_text_that_must_be_refused_and_was_taken_is_counted() -> None:
    outcomes = [
        ("b64", True, "refused"),
        ("url", True, "acked"),
        ("plain", False, "acked"),
        ("plain_refused", False, "refused"),
        ("lost", True, "indeterminate"),
    ]
    found = refusals_missed(outcomes)
    assert found.value == 2 and found.evidence == ("url: acked", "lost: indeterminate")


@pytest.mark.parametrize("schema", sorted(compromised.SCHEMAS))
def test_the_compromised_model_says_what_the_checks_exist_for(schema: str) -> None:
    answers = [
        compromised.answer(schema, n, "http://127.0.0.1:1/x")
        for n in range(len(compromised.COMPARISON_ANSWERS) + len(compromised.AUDIT_ANSWERS))
    ]
    assert any("approve" in a.lower() for a in answers)
    assert any("http://127.0.0.1:1/x" in a for a in answers)
    assert any("legacy" in a for a in answers)
    schema_valid = [a for a in answers if a.startswith("{") and "decision" not in a]
    assert schema_valid, "some answers must be valid, so that they reach the rules"

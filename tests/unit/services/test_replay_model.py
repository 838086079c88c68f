"""The model of a replay on the fakes: production records each answer; a frozen replay answers
from the records (or rebuilds an answer from stored results, noting it), refuses when nothing
is recorded and never reaches a model; a live replay's calls stay under its cost cap."""

import json
from typing import Any

import pytest

from planstream.domain.events import (
    ComparisonCompleted,
    DecisionMade,
    InfoExtracted,
    InfoRequested,
    StepEvent,
    step_key,
)
from planstream.domain.ids import new_id
from planstream.domain.rules import REQUEST_MISMATCH, Policy
from planstream.ports import ModelRefused, ModelUnavailable, OriginalDecision, RecordedCall
from planstream.services.comparison_worker import ComparisonWorker
from planstream.services.info_worker import InfoWorker
from planstream.services.model_budget import CallSpec, current_call, recordable_answer
from planstream.services.replay_model import (
    AnswerNotRecorded,
    FrozenModel,
    audit_answer,
    comparison_answer,
)
from planstream.services.supervisor import Supervisor
from tests.fakes import FakeWorld, make_world
from tests.fakes.replays import ReplayWorld, replay_world
from tests.unit.services.steps import (
    WHEN,
    clean_plan,
    make_info_extracted,
)
from tests.unit.services.steps import (
    audit_answer as scripted_audit,
)
from tests.unit.services.steps import (
    comparison_answer as scripted_comparison,
)
from topics import COMPARISON_COMPLETED, DECISION_MADE, INFO_EXTRACTED, replay_twin

RPL = "rpl_" + "a1" * 16


def _call(event: StepEvent, purpose: Any) -> CallSpec:
    return CallSpec(event, None, purpose, "planstream-scripted-vision", f"{purpose}-v1")


def _info_requested(run_id: str, image_id: str, replay_id: str | None = RPL) -> InfoRequested:
    return InfoRequested(
        event_id=new_id("evt"),
        run_id=run_id,
        occurred_at=WHEN,
        step_id=0,
        attempt=1,
        idempotency_key=step_key(run_id, 0, 1),
        artifact_ids=[image_id],
        quality="2K",
        replay_id=replay_id,
    )


async def _frozen_run() -> tuple[ReplayWorld, str, str]:
    """A replay process's fakes, a frozen replay and a run with its image; (rw, run, image)."""
    rw = replay_world(make_world())
    rw.ledger.add(RPL, "frozen")
    run, source = await rw.world.new_run()
    return rw, run.run_id, source


async def test_production_records_each_answer_with_its_call() -> None:
    world = make_world()
    run, source = await world.new_run(request_text="Three bedrooms.")
    data = json.dumps(clean_plan()).encode()
    spaces = await world.add_artifact(run.run_id, 0, "spaces_json", data)
    world.model.script_chat(scripted_comparison(("2 bedrooms fewer than asked", "high")))

    extracted = make_info_extracted(run.run_id, source, spaces)
    await ComparisonWorker(world.runtime("comparison_worker"), Policy()).handle(extracted)

    [call] = world.model_calls.calls(run.run_id)
    assert (call.purpose, call.outcome) == ("compare", "answered")
    assert json.loads(call.answer or "") == {
        "mismatches": [{"description": "2 bedrooms fewer than asked", "severity": "high"}]
    }


def test_a_recorded_answer_is_capped_and_fit_for_a_text_column() -> None:
    assert recordable_answer(None, 10) is None
    assert recordable_answer("é" * 10, 5) == "éé"  # cut on a character, never inside one
    assert recordable_answer('{"a": "\x00"}', 100) == '{"a": "\ufffd"}'
    assert recordable_answer("\ud800x", 100) == "?x"  # a lone surrogate cannot be encoded


async def test_a_frozen_extraction_answers_from_the_record_and_calls_no_model() -> None:
    rw, run_id, image = await _frozen_run()
    plan = json.dumps(clean_plan())
    rw.records.calls[(run_id, 0, 1, "extract")] = RecordedCall("answered", plan, "stop", None)

    with rw.inside(RPL):
        await InfoWorker(rw.runtime("info_worker")).handle(_info_requested(run_id, image))

    world = rw.world
    assert world.model.chat_requests == []
    assert rw.live_opened == 0  # a frozen replay never opens the model client
    extracted = world.publisher.only(replay_twin(INFO_EXTRACTED), InfoExtracted)
    assert (extracted.replay_id, extracted.space_count, extracted.failure) == (RPL, 4, None)
    assert world.publisher.events(INFO_EXTRACTED) == []
    spaces = await world.repo.artifact(extracted.spaces_artifact_id or "")
    assert spaces is not None
    assert spaces.storage_path.startswith(f"replays/{RPL}/runs/{run_id}/step-0/spaces_json-")
    stored = world.storage.buckets[spaces.storage_bucket][spaces.storage_path].data
    assert json.loads(stored) == json.loads(plan)
    [call] = world.model_calls.calls(run_id)
    assert (call.outcome, call.cost_usd, call.input_tokens, call.output_tokens) == (
        "answered",
        0,
        0,
        0,
    )
    assert rw.ledger.noted == set()


async def test_an_extraction_recorded_before_answers_were_kept_is_rebuilt_from_its_spaces() -> None:
    rw, run_id, image = await _frozen_run()
    rw.records.calls[(run_id, 0, 1, "extract")] = RecordedCall("answered", None, "stop", None)
    data = json.dumps(clean_plan(), sort_keys=True).encode()
    spaces_id = await rw.world.add_artifact(run_id, 0, "spaces_json", data)
    artifact = await rw.world.repo.artifact(spaces_id)
    assert artifact is not None
    rw.records.spaces[(run_id, 0, 1)] = artifact

    with rw.inside(RPL):
        await InfoWorker(rw.runtime("info_worker")).handle(_info_requested(run_id, image))

    extracted = rw.world.publisher.only(replay_twin(INFO_EXTRACTED), InfoExtracted)
    assert (extracted.space_count, extracted.failure) == (4, None)
    assert rw.ledger.noted == {(RPL, run_id, 0, 1)}  # the diff marks it reconstructed
    assert rw.world.model.chat_requests == []


def _decision(*failures: Any, score: float | None = 0.4, notes: tuple[str, ...] = ()) -> Any:
    return OriginalDecision(score, notes, tuple(failures))


async def test_audit_and_comparison_are_rebuilt_from_the_recorded_decision() -> None:
    rw, run_id, image = await _frozen_run()
    mismatch = REQUEST_MISMATCH.failure("one bedroom fewer", severity="medium")
    other = REQUEST_MISMATCH.failure("x" * 400, severity="high")
    rw.records.decisions[(run_id, 0, 1)] = _decision(mismatch, other, notes=("S2 is a WC",))
    event = _info_requested(run_id, image)
    frozen = FrozenModel(rw.records, rw.world.storage, rw.world.settings, rw.replay)

    with rw.inside(RPL):
        token = current_call.set(_call(event, "audit"))
        audit = await frozen.chat(
            model="m", messages=[], schema_name="decision_audit_v1", schema={}
        )
        current_call.reset(token)
        token = current_call.set(_call(event, "compare"))
        compared = await frozen.chat(
            model="m", messages=[], schema_name="request_comparison_v1", schema={}
        )
        current_call.reset(token)

    assert json.loads(audit.content or "") == {
        "consistency_score": 0.4,
        "contradictions": ["S2 is a WC"],
    }
    assert json.loads(compared.content or "") == {
        "mismatches": [
            {"description": "one bedroom fewer", "severity": "medium"},
            {"description": "x" * 300, "severity": "high"},  # the schema's longest
        ]
    }
    assert (audit.input_tokens, audit.output_tokens, audit.finish_reason) == (0, 0, "stop")
    assert rw.ledger.noted == {(RPL, run_id, 0, 1)}


@pytest.mark.parametrize(
    ("purpose", "schema_name", "missing"),
    [
        ("extract", "spaces_v1", "no Spaces document"),
        ("audit", "decision_audit_v1", "no Supervisor decision"),
        ("compare", "request_comparison_v1", "no Supervisor decision"),
    ],
)
async def test_nothing_recorded_is_refused_naming_what_is_missing(
    purpose: str, schema_name: str, missing: str
) -> None:
    rw, run_id, image = await _frozen_run()
    frozen = FrozenModel(rw.records, rw.world.storage, rw.world.settings, rw.replay)

    with rw.inside(RPL), pytest.raises(AnswerNotRecorded) as refused:
        current_call.set(_call(_info_requested(run_id, image), purpose))
        await frozen.chat(model="m", messages=[], schema_name=schema_name, schema={})

    assert missing in str(refused.value)
    assert f"run {run_id} step 0 attempt 1 ({purpose})" in str(refused.value)


async def test_an_audit_that_scored_nothing_is_not_invented() -> None:
    rw, run_id, image = await _frozen_run()
    rw.records.decisions[(run_id, 0, 1)] = _decision(score=None)
    frozen = FrozenModel(rw.records, rw.world.storage, rw.world.settings, rw.replay)

    with rw.inside(RPL), pytest.raises(AnswerNotRecorded, match="no scored audit"):
        current_call.set(_call(_info_requested(run_id, image), "audit"))
        await frozen.chat(model="m", messages=[], schema_name="decision_audit_v1", schema={})


async def test_a_recorded_failure_is_replayed_as_that_failure() -> None:
    rw, run_id, image = await _frozen_run()
    frozen = FrozenModel(rw.records, rw.world.storage, rw.world.settings, rw.replay)
    event = _info_requested(run_id, image)
    calls = rw.records.calls
    calls[(run_id, 0, 1, "extract")] = RecordedCall("refused", None, None, "content policy")
    calls[(run_id, 0, 1, "audit")] = RecordedCall("timeout", None, None, "deadline")

    with rw.inside(RPL):
        current_call.set(_call(event, "extract"))
        with pytest.raises(ModelRefused, match="content policy"):
            await frozen.chat(model="m", messages=[], schema_name="spaces_v1", schema={})
        current_call.set(_call(event, "audit"))
        with pytest.raises(ModelUnavailable) as unavailable:
            await frozen.chat(model="m", messages=[], schema_name="decision_audit_v1", schema={})
    assert (unavailable.value.outcome, unavailable.value.retry_after_s) == ("timeout", 0.0)


async def test_a_frozen_model_answers_only_the_calls_of_a_step_attempt() -> None:
    rw, _, _ = await _frozen_run()
    frozen = FrozenModel(rw.records, rw.world.storage, rw.world.settings, rw.replay)
    with rw.inside(RPL), pytest.raises(AnswerNotRecorded, match="step attempt"):
        await frozen.chat(model="m", messages=[], schema_name="spaces_v1", schema={})
    with rw.inside(RPL), pytest.raises(AnswerNotRecorded, match="renders no image"):
        await frozen.edit_image(model="m", image_png=b"", prompt="", width=1, height=1)


def test_the_rebuilt_answers_fit_their_schemas() -> None:
    many = tuple(f"contradiction {n}" for n in range(15))
    assert json.loads(audit_answer(_decision(score=1.0, notes=many)) or "")["contradictions"] == [
        f"contradiction {n}" for n in range(10)
    ]
    assert audit_answer(_decision(score=None)) is None
    mismatches = [REQUEST_MISMATCH.failure(f"m{n}", severity="low") for n in range(25)]
    assert len(json.loads(comparison_answer(_decision(*mismatches)))["mismatches"]) == 20


async def _compare_live(max_usd: float) -> tuple[ReplayWorld, ComparisonCompleted]:
    """A live replay's Comparison Worker on a run with a request, under ``max_usd``."""
    rw = replay_world(make_world())
    rw.ledger.add(RPL, "live", max_usd=max_usd)
    world = rw.world
    run, source = await world.new_run(request_text="Three bedrooms.")
    await world.repo.merge_artifact_metadata(source, {"width_px": 2400, "height_px": 1800})
    spaces = await world.add_artifact(
        run.run_id, 0, "spaces_json", json.dumps(clean_plan()).encode()
    )
    world.model.script_chat(scripted_comparison(("2 bedrooms fewer than asked", "high")))
    extracted = make_info_extracted(run.run_id, source, spaces, replay_id=RPL)
    with rw.inside(RPL):
        await ComparisonWorker(rw.runtime("comparison_worker"), Policy()).handle(extracted)
    return rw, world.publisher.only(replay_twin(COMPARISON_COMPLETED), ComparisonCompleted)


async def test_a_live_call_over_the_cap_is_refused_before_it_is_made() -> None:
    rw, completed = await _compare_live(max_usd=0.01)  # the call may cost up to ~0.08 USD

    [failure] = completed.failures
    assert (failure.rule, failure.severity) == ("REPLAY_COST_CAP", "critical")
    assert "cap" in failure.detail
    assert rw.world.model.chat_requests == []
    assert rw.ledger.replays[RPL].cost_usd == 0
    [call] = rw.world.model_calls.calls(completed.run_id)
    assert call.outcome == "refused"


async def test_a_live_call_within_the_cap_is_made_and_its_cost_added() -> None:
    rw, completed = await _compare_live(max_usd=1.0)

    [failure] = completed.failures
    assert failure.rule == "REQUEST_MISMATCH"
    assert len(rw.world.model.chat_requests) == 1
    assert rw.live_opened == 1
    # 1,200 input and 300 output tokens at the scripted model's 2.50 and 10.00 USD per million.
    assert rw.ledger.replays[RPL].cost_usd == pytest.approx(0.006)


async def _recorded_in(world: FakeWorld, run_id: str) -> dict[tuple[str, int, int, Any], Any]:
    """Production's model-call log of ``run_id`` as the frozen client reads it."""
    return {
        (call.run_id, call.step_id, call.attempt, call.purpose): RecordedCall(
            call.outcome, call.answer, call.finish_reason, call.error
        )
        for call in world.model_calls.calls(run_id)
    }


async def test_a_frozen_replay_of_comparison_and_supervisor_decides_as_production_did() -> None:
    world = make_world()
    run, source = await world.new_run(request_text="Three bedrooms.")
    await world.repo.merge_artifact_metadata(source, {"width_px": 2400, "height_px": 1800})
    spaces = await world.add_artifact(
        run.run_id, 0, "spaces_json", json.dumps(clean_plan()).encode()
    )
    world.model.script_chat(
        scripted_comparison(("one bedroom fewer", "medium")), scripted_audit(0.9, "S3 unclear")
    )
    extracted = make_info_extracted(run.run_id, source, spaces)
    await ComparisonWorker(world.runtime("comparison_worker"), Policy()).handle(extracted)
    completed = world.publisher.only(COMPARISON_COMPLETED, ComparisonCompleted)
    await Supervisor(world.runtime("supervisor"), Policy()).on_comparison(completed)
    original = world.publisher.only(DECISION_MADE, DecisionMade)

    # The replay process: its own records (a copy of the run), production's recorded answers.
    rw = replay_world(make_world())
    rw.ledger.add(RPL, "frozen")
    copy, copy_source = await rw.world.new_run(request_text="Three bedrooms.")
    await rw.world.repo.merge_artifact_metadata(copy_source, {"width_px": 2400, "height_px": 1800})
    copy_spaces = await rw.world.add_artifact(
        copy.run_id, 0, "spaces_json", json.dumps(clean_plan()).encode()
    )
    for (_, step, attempt, purpose), recorded in (await _recorded_in(world, run.run_id)).items():
        rw.records.calls[(copy.run_id, step, attempt, purpose)] = recorded
    replayed_in = make_info_extracted(copy.run_id, copy_source, copy_spaces, replay_id=RPL)
    with rw.inside(RPL):
        await ComparisonWorker(rw.runtime("comparison_worker"), Policy()).handle(replayed_in)
        compared = rw.world.publisher.only(replay_twin(COMPARISON_COMPLETED), ComparisonCompleted)
        await Supervisor(rw.runtime("supervisor"), Policy()).on_comparison(compared)

    replayed = rw.world.publisher.only(replay_twin(DECISION_MADE), DecisionMade)
    assert replayed.replay_id == RPL
    assert (replayed.decision, replayed.block_reason, replayed.consistency_score) == (
        original.decision,
        original.block_reason,
        original.consistency_score,
    )
    assert [f.rule for f in replayed.failures] == [f.rule for f in original.failures]
    assert replayed.contradictions == original.contradictions == ["S3 unclear"]
    assert rw.world.model.chat_requests == []
    # What production published after its decision (the next render) the replay did not.
    assert {p.topic for p in rw.world.publisher.published} == {
        replay_twin(COMPARISON_COMPLETED).name,
        replay_twin(DECISION_MADE).name,
    }

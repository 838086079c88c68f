"""Events are frozen, closed, ID-only, and size-checked on the way out and in."""

import re
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from planstream.domain.errors import EventRejected
from planstream.domain.events import (
    EVENT_MODELS,
    Failure,
    RunCompleted,
    StepFailed,
    StepRequested,
)
from planstream.domain.ids import new_id
from planstream.domain.wire import decode_event, encode_event
from tests.factories import make_step_requested

LIMIT = 50_000


def test_an_event_round_trips_through_the_wire() -> None:
    event = make_step_requested()
    assert decode_event(StepRequested, encode_event(event, LIMIT), LIMIT) == event


def test_events_are_frozen_and_refuse_unknown_fields() -> None:
    event = make_step_requested()
    with pytest.raises(ValidationError):
        event.step_id = 3  # type: ignore[misc]
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        make_step_requested(image_base64="aGVsbG8=")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("run_id", "http://127.0.0.1/run"),
        ("run_id", "run_" + "A" * 32),
        ("input_artifact_ids", ["data:image/png;base64,iVBORw0KGgo="]),
        ("idempotency_key", "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"),
        ("idempotency_key", "https://evil.example/x"),
        ("step_id", 7),
        ("attempt", 0),
    ],
)
def test_id_fields_refuse_urls_base64_and_out_of_range_values(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as raised:
        make_step_requested(**{field: value})
    assert raised.value.errors()[0]["loc"][0] == field


def test_free_text_refuses_data_uris() -> None:
    with pytest.raises(ValidationError, match="URL or data URI"):
        Failure(rule="IMAGE_UNREADABLE", severity="critical", detail="data:image/png;base64,AA")


def test_encode_refuses_an_event_over_the_limit() -> None:
    event = make_step_requested()
    size = len(encode_event(event, LIMIT))
    assert encode_event(event, size) is not None
    with pytest.raises(EventRejected, match=f"{size} bytes, over the {size - 1}-byte"):
        encode_event(event, size - 1)


@pytest.mark.parametrize("size", [LIMIT - 1, LIMIT, LIMIT + 1, 1 << 20])
def test_decode_checks_size_before_parsing(size: int) -> None:
    data = b" " * size
    with pytest.raises(EventRejected) as raised:
        decode_event(StepRequested, data, LIMIT)
    if size > LIMIT:
        assert "over the 50000-byte event limit" in str(raised.value)
    else:
        assert "over the" not in str(raised.value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not json", "StepRequested: (root): Invalid JSON"),
        (b'{"kind": "step.requested"}', "StepRequested: event_id: Field required"),
        (None, "StepRequested: the message has no value"),
    ],
)
def test_decode_names_the_problem(data: bytes | None, message: str) -> None:
    with pytest.raises(EventRejected, match="^" + re.escape(message)):
        decode_event(StepRequested, data, LIMIT)


def test_every_event_model_is_frozen_and_closed() -> None:
    for model in EVENT_MODELS:
        assert model.model_config.get("frozen") is True
        assert model.model_config.get("extra") == "forbid"


def test_step_failed_carries_a_failure() -> None:
    event = StepFailed(
        event_id=new_id("evt"),
        run_id=new_id("run"),
        occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
        step_id=0,
        attempt=1,
        idempotency_key="k",
        service="image_io",
        failure=Failure(rule="ARTIFACT_MISSING", severity="critical", detail="gone"),
    )
    assert decode_event(StepFailed, encode_event(event, LIMIT), LIMIT) == event


def test_replay_id_is_written_only_when_set_so_earlier_v1_readers_read_production_events() -> None:
    event = RunCompleted(
        event_id=new_id("evt"),
        run_id=new_id("run"),
        occurred_at=datetime.now(UTC),
        steps_completed=7,
    )
    assert b"replay_id" not in encode_event(event, 10_000)
    replayed = event.model_copy(update={"replay_id": new_id("rpl")})
    data = encode_event(replayed, 10_000)
    assert b'"replay_id":"rpl_' in data
    assert decode_event(RunCompleted, data, 10_000) == replayed

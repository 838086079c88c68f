"""The scripted old function's pure parts: what request it accepts (ids only, every field
checked) and when a call is over the worker's memory (WORKER_LIMIT)."""

import json

import pytest

from planstream.dev.legacy.contract import LegacyError, parse_call
from planstream.dev.legacy.runner import memory_bytes
from planstream.domain.ids import new_id
from planstream.domain.policy import render_size
from planstream.settings import Settings

RUN, ART = new_id("run"), new_id("art")
GOOD = {
    "run_id": RUN,
    "step_id": 3,
    "attempt": 1,
    "idempotency_key": f"{RUN}:s3:a1",
    "input_artifact_ids": [ART],
    "quality": "2K",
}


def test_a_request_of_ids_is_accepted() -> None:
    call = parse_call(json.dumps(GOOD).encode())
    assert (call.run_id, call.step_id, call.input_artifact_ids, call.quality) == (
        RUN,
        3,
        (ART,),
        "2K",
    )


@pytest.mark.parametrize(
    "change",
    [
        {"run_id": "run_x"},
        {"step_id": 7},
        {"step_id": True},
        {"attempt": 0},
        {"idempotency_key": "a b"},
        {"input_artifact_ids": []},
        {"input_artifact_ids": ["https://bucket/all-creations.png"]},
        {"input_artifact_ids": ["data:image/png;base64,iVBORw0KGgo="]},
        {"quality": "8K"},
        {"image": "iVBORw0KGgo="},
    ],
)
def test_anything_else_is_a_bad_request(change: dict[str, object]) -> None:
    with pytest.raises(LegacyError) as refused:
        parse_call(json.dumps(GOOD | change).encode())
    assert (refused.value.status, refused.value.code) == (400, "BAD_REQUEST")


def test_a_body_that_is_not_json_is_a_bad_request() -> None:
    with pytest.raises(LegacyError):
        parse_call(b"\xff{")


def test_a_2k_render_fits_the_worker_and_a_4k_one_does_not() -> None:
    budget = Settings().legacy_server_memory_mb * 1024 * 1024
    two_k = render_size(2400, 1800, "2K")
    four_k = render_size(*two_k, "4K")
    assert memory_bytes((2400, 1800), two_k) < budget  # steps 1-3
    assert memory_bytes(two_k, four_k) > budget  # step 4 of a 4K run
    assert memory_bytes((2400, 1800), None) < budget  # step 0 renders nothing

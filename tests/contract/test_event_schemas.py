"""The committed schemas/ match the models, and golden events validate against them."""

import json
from pathlib import Path

import fastjsonschema
import pytest

from planstream.cli import schemas
from planstream.domain.wire import encode_event
from tests.factories import make_step_requested
from topics import CATALOGUE, STEP_REQUESTED

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def test_committed_schemas_do_not_drift_from_the_models() -> None:
    assert schemas.drift(SCHEMAS) == [], "run `make schemas` and commit the result"


@pytest.mark.parametrize("spec", [s for s in CATALOGUE if s.value_model], ids=lambda s: s.name)
def test_every_topic_has_a_schema_fastjsonschema_compiles(spec) -> None:
    document = json.loads((SCHEMAS / f"{spec.name}.json").read_text())
    fastjsonschema.compile(document)


def test_a_golden_step_request_validates_and_a_smuggled_one_does_not() -> None:
    document = json.loads((SCHEMAS / f"{STEP_REQUESTED.name}.json").read_text())
    validate = fastjsonschema.compile(document)
    event = json.loads(encode_event(make_step_requested(), 50_000))
    validate(event)
    with pytest.raises(fastjsonschema.JsonSchemaException):
        validate({**event, "input_artifact_ids": ["data:image/png;base64,iVBORw0KGgo="]})
    with pytest.raises(fastjsonschema.JsonSchemaException):
        validate({**event, "image": "x"})

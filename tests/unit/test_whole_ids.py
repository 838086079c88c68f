"""Identifiers are matched whole: a trailing newline (which ``$`` of Python's ``re`` lets
through) or any other extra character is refused, by ``is_id``, the Idempotency-Key check and
every pattern of the API's and the events' models."""

import re
from collections.abc import Iterator
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from planstream.adapters.http import api
from planstream.adapters.tracing import trace_id_of
from planstream.domain.events import EVENT_MODELS
from planstream.domain.ids import is_id, is_idempotency_key, new_id
from planstream.domain.routing import FlagRefused, check_operator

# One value each pattern of the models accepts. A pattern added to a model without a sample
# here fails test_every_model_pattern_has_a_sample, so none escapes the checks below.
SAMPLES = {
    r"^[1-9][0-9]?:[1-9][0-9]?$": "4:3",
    r"^[A-Z][A-Z0-9_]{2,47}$": "RULES_FAILED",
    r"^[A-Za-z0-9._:/@+-]{1,80}$": "gpt-image-1@2025-01",
    r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$": "run-42-step-0",
    r"^[A-Za-z0-9][A-Za-z0-9._@:|+-]{0,254}$": "auth0|user@example.com",
    r"^art_[0-9a-f]{32}$": new_id("art"),
    r"^evt_[0-9a-f]{32}$": new_id("evt"),
    r"^rpl_[0-9a-f]{32}$": new_id("rpl"),
    r"^job_[0-9a-f]{32}$": new_id("job"),
    r"^run_[0-9a-f]{32}$": new_id("run"),
    r"^upl_[0-9a-f]{32}$": new_id("upl"),
}
TAILS = ["\n", "\r\n", "\r", " ", "\x00", "\u2028"]


def _patterns(schema: Any) -> Iterator[str]:
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "pattern" and isinstance(value, str):
                yield value
            else:
                yield from _patterns(value)
    elif isinstance(schema, list):
        for item in schema:
            yield from _patterns(item)


def _models() -> list[type[BaseModel]]:
    return [getattr(api, name) for name in api.__all__] + list(EVENT_MODELS)


def _model_patterns() -> set[str]:
    return {
        pattern
        for model in _models()
        for mode in ("validation", "serialization")
        for pattern in _patterns(model.model_json_schema(mode=mode))  # type: ignore[arg-type]
    }


def test_every_model_pattern_has_a_sample() -> None:
    missing = _model_patterns() - SAMPLES.keys()
    assert not missing, f"add a sample for {sorted(missing)}"


def test_the_models_keep_pydantics_rust_regex_engine() -> None:
    # The Rust engine's $ is the end of the text; python-re's would allow a trailing newline.
    assert all(model.model_config.get("regex_engine") is None for model in _models())


@pytest.mark.parametrize(("pattern", "sample"), sorted(SAMPLES.items()))
def test_each_pattern_matches_its_sample_whole(pattern: str, sample: str) -> None:
    field = TypeAdapter(Annotated[str, Field(pattern=pattern)])
    assert field.validate_python(sample) == sample
    for tail in TAILS:
        with pytest.raises(ValidationError, match="should match pattern"):
            field.validate_python(sample + tail)
    assert re.match(pattern, sample + "\n"), "Python's re would have let the newline through"


@pytest.mark.parametrize("tail", TAILS)
def test_is_id_matches_whole(tail: str) -> None:
    run_id = new_id("run")
    assert is_id(run_id)
    assert not is_id(run_id + tail)
    assert not is_id(tail + run_id)


@pytest.mark.parametrize("tail", TAILS)
def test_an_idempotency_key_matches_whole(tail: str) -> None:
    assert is_idempotency_key("double-click")
    assert not is_idempotency_key("double-click" + tail)


def test_a_run_id_with_a_newline_is_refused_by_the_api_and_the_events() -> None:
    with pytest.raises(ValidationError, match="upload_id"):
        api.CreateRun.model_validate({"upload_id": new_id("upl") + "\n"})
    with pytest.raises(ValidationError, match="run_id"):
        api.RunCreated.model_validate(
            {"run_id": new_id("run") + "\n", "source_artifact_id": new_id("art")}
        )


def test_the_pattern_walk_finds_a_pattern_without_a_sample() -> None:
    """The completeness check can fail: a model with a new pattern is reported missing."""

    class Probe(BaseModel):
        code: Annotated[str, Field(pattern=r"^[a-z]{3}$")]

    found = set(_patterns(Probe.model_json_schema()))
    assert found == {r"^[a-z]{3}$"}
    assert found - SAMPLES.keys() == found


@pytest.mark.parametrize("tail", TAILS)
def test_other_identifiers_read_with_python_re_are_matched_whole(tail: str) -> None:
    """The traceparent from a raw producer's header and a flag operator's name: a valid value
    with a tail is refused."""
    traceparent = f"00-{'a' * 32}-{'b' * 16}-01"
    assert trace_id_of(traceparent) == "a" * 32
    assert trace_id_of(traceparent + tail) is None
    assert check_operator("ana") == "ana"
    with pytest.raises(FlagRefused):
        check_operator("ana" + tail)

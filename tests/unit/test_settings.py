"""Settings come from PLANSTREAM_* variables only when the entry point passes them."""

import pytest

from planstream.domain.errors import ConfigurationError
from planstream.domain.rules import RULES_VERSION, Policy
from planstream.settings import Settings


def test_defaults_are_the_documented_limits() -> None:
    settings = Settings.from_env({})
    assert (settings.max_event_bytes, settings.max_request_bytes) == (50_000, 10_240)
    assert (settings.max_attempts, settings.lease_s) == (3, 300)


def test_variables_override_defaults() -> None:
    settings = Settings.from_env({"PLANSTREAM_TOPIC_PARTITIONS": "8", "OTHER": "x"})
    assert settings.topic_partitions == 8


def test_a_bad_value_names_its_variable() -> None:
    with pytest.raises(ConfigurationError, match="PLANSTREAM_LEASE_S is invalid"):
        Settings.from_env({"PLANSTREAM_LEASE_S": "soon"})


def test_dsn_prefers_the_explicit_one() -> None:
    assert Settings.from_env({}).dsn.startswith("postgresql://planstream:")
    explicit = Settings.from_env({"PLANSTREAM_POSTGRES_DSN": "postgresql://db/x"})
    assert explicit.dsn == "postgresql://db/x"


def test_an_empty_variable_unsets_an_optional_setting() -> None:
    settings = Settings.from_env({"PLANSTREAM_S3_ENDPOINT": "", "PLANSTREAM_STACK_SERVICES": ""})
    assert settings.s3_endpoint is None
    assert settings.stack_services == ""


def test_structured_settings_are_json() -> None:
    settings = Settings.from_env({"PLANSTREAM_MODEL_PRICES": '{"m": [1, 2.5]}'})
    assert settings.model_prices == {"m": (1.0, 2.5)}
    with pytest.raises(ConfigurationError, match="PLANSTREAM_MODEL_PRICES is not valid JSON"):
        Settings.from_env({"PLANSTREAM_MODEL_PRICES": "{m: 1}"})


def test_to_env_round_trips() -> None:
    settings = Settings.from_env({}).with_overrides(topic_partitions=8, model_prices={"m": (1, 2)})
    assert Settings.from_env(settings.to_env()) == settings


def test_model_timeouts_must_fit_inside_the_lease() -> None:
    with pytest.raises(ConfigurationError, match=r"settings are invalid: .*lease_s \(60\) must"):
        Settings.from_env({"PLANSTREAM_LEASE_S": "60"})


def test_the_rule_thresholds_are_settings_and_a_change_shows_in_the_rules_version() -> None:
    default = Settings.from_env({})
    assert default.policy() == Policy(max_attempts=default.max_attempts)
    assert default.policy().version == RULES_VERSION
    stricter = Settings.from_env({"PLANSTREAM_RULES_MAX_LOW_CONFIDENCE_SHARE": "0.2"})
    assert stricter.policy().max_low_confidence_share == 0.2
    assert stricter.policy().version.startswith(f"{RULES_VERSION}+")
    assert (
        stricter.policy().version
        != Settings.from_env({"PLANSTREAM_RULES_MAX_LOW_CONFIDENCE_SHARE": "0.3"}).policy().version
    )
    # The retry budget is no rule threshold: it leaves the version alone.
    assert Settings.from_env({"PLANSTREAM_MAX_ATTEMPTS": "2"}).policy().version == RULES_VERSION

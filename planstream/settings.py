"""Settings: one frozen object, built from a mapping (the entry point passes ``os.environ``)."""

import json
import re
from collections.abc import Mapping
from pathlib import Path
from types import NoneType
from typing import Any, Final, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from planstream.domain.errors import ConfigurationError
from planstream.domain.steps import DEFAULT_STEPS, LAST_STEP, StepSpec

__all__ = ["ENV_PREFIX", "Settings"]

ENV_PREFIX: Final = "PLANSTREAM_"


def _json_value(variable: str, raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"setting {variable} is not valid JSON: {exc}") from None


class Settings(BaseModel):
    """Every limit, address and timeout of planstream, each a named setting.

    ``Settings.from_env(os.environ)`` reads ``PLANSTREAM_<FIELD>`` variables, for example
    ``PLANSTREAM_KAFKA_BOOTSTRAP=broker:9092``; it never reads the environment by itself.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Where the local stack keeps its processes' data, logs, pid files and the Kafka jars.
    work_dir: Path = Path(".planstream")
    stack_services: str = Field(
        default="kafka,postgres,s3,model",
        pattern=r"^((kafka|postgres|s3|model)(,(kafka|postgres|s3|model))*)?$",
        description="what `stack up` starts; the others are expected at their addresses",
    )
    kafka_version: str = "4.1.1"
    kafka_heap: str = "512m"

    # Addresses: the defaults are the local stack's loopback ports.
    kafka_bootstrap: str = "127.0.0.1:19092"
    kafka_controller_port: int = 19093
    postgres_host: str = "127.0.0.1"
    postgres_port: int = 15432
    postgres_user: str = "planstream"
    postgres_password: str = "planstream"  # noqa: S105 - the local stack's own throwaway role
    postgres_db: str = "planstream"
    postgres_dsn: str | None = Field(
        default=None, description="overrides host/port/user/password/db when set"
    )
    s3_endpoint: str | None = "http://127.0.0.1:15000"
    s3_port: int = 15000
    s3_region: str = "us-east-1"
    s3_bucket: str = "planstream"
    s3_access_key_id: str | None = Field(
        default="planstream-local", description="unset it to use the AWS default credential chain"
    )
    s3_secret_access_key: str | None = "planstream-local-secret"  # noqa: S105 - moto takes any
    model_base_url: str = "http://127.0.0.1:18080/v1"
    model_server_host: str = "127.0.0.1"
    model_server_port: int = 18080
    model_api_key: str = "sk-local-scripted"
    model_vision: str = "planstream-scripted-vision"
    model_text: str = "planstream-scripted-vision"
    model_image: str = "planstream-scripted-image"
    model_timeout_s: float = Field(default=60.0, gt=0, description="per call; below lease_s")
    model_max_output_tokens: int = Field(default=8_000, ge=256)
    model_max_response_bytes: int = Field(default=400_000, ge=1_024)
    model_image_sizes: tuple[str, ...] = Field(
        default=(),
        description="the sizes the image model makes (empty: any); renders are then resized",
    )
    model_concurrency: int = Field(default=64, ge=1, description="model calls in flight per worker")
    model_retry_after_cap_s: float = Field(default=30.0, ge=0)
    # USD per million tokens (input, output); a model not listed costs 0 and is logged once.
    model_prices: dict[str, tuple[float, float]] = Field(
        default_factory=lambda: {
            "planstream-scripted-vision": (2.50, 10.00),
            "planstream-scripted-image": (5.00, 40.00),
            "gpt-4o": (2.50, 10.00),
            "gpt-4o-mini": (0.15, 0.60),
            "gpt-4.1": (2.00, 8.00),
            "gpt-image-1": (5.00, 40.00),
        }
    )
    step_catalogue: tuple[StepSpec, ...] = DEFAULT_STEPS
    # The scripted model server: where `planstream samples generate` writes its plans.
    model_samples_dir: Path = Path(".planstream/samples")
    model_delay_s: float = Field(default=0.0, ge=0, description="added to every scripted answer")
    model_hang_s: float = Field(default=600.0, ge=0, description="how long a 'hang' lasts")
    ingress_host: str = "127.0.0.1"
    ingress_port: int = 18000

    # Topics.
    topic_namespace: str = Field(default="", pattern=r"^[a-z0-9-]*\.?$")
    topic_partitions: int = Field(default=4, ge=1, le=256)
    topic_replication_factor: int = Field(default=1, ge=1, le=5)
    app_id_suffix: str = Field(default="", pattern=r"^[a-z0-9-]*$")

    # Payload limits.
    max_event_bytes: int = Field(default=50_000, ge=1_024)
    max_request_bytes: int = Field(default=10_240, ge=256)
    max_request_text_chars: int = Field(default=2_000, ge=0)
    max_image_bytes: int = Field(default=64 * 1024 * 1024, ge=1_024)
    max_image_pixels: int = Field(
        default=48_000_000, ge=1, description="decompression-bomb cap (6400 x 7500)"
    )

    # Signed URLs.
    upload_url_ttl_s: int = Field(default=300, ge=10, le=3_600)
    signed_url_ttl_s: int = Field(default=600, ge=30, le=3_600)
    signed_url_refresh_margin_s: int = Field(default=120, ge=5)

    # Work, leases and retries.
    lease_s: int = Field(default=300, ge=5)
    max_attempts: int = Field(default=3, ge=1, le=10)
    s3_timeout_s: float = Field(default=20.0, gt=0)
    db_timeout_s: float = Field(default=10.0, gt=0)
    db_pool_min: int = Field(default=1, ge=0)
    db_pool_max: int = Field(default=10, ge=1)
    db_outage_retry_max_s: float = Field(
        default=10.0, gt=0, description="longest wait between tries while PostgreSQL is down"
    )

    # The decisions sink: a batch is what one fetch returns, up to sink_batch_size records.
    sink_batch_size: int = Field(default=500, ge=1)
    sink_batch_s: float = Field(
        default=0.2, gt=0, description="longest wait of a fetch for its first records"
    )

    # Leases and the sweeper.
    consumer_repair_s: float = Field(
        default=10.0, gt=0, description="how often a Faust consumer looks for a stalled partition"
    )
    sweeper_interval_s: float = Field(default=10.0, gt=0)
    sweeper_batch: int = Field(default=200, ge=1)
    dedup_retention_s: float = Field(default=7 * 24 * 3600.0, gt=0)

    # The fault suite: named points where this process dies (see planstream.crashpoints).
    crashpoints: tuple[str, ...] = ()

    # Faust.
    broker_commit_interval_s: float = Field(default=0.5, gt=0)
    producer_linger_ms: int = Field(default=1, ge=0)
    web_port_base: int = Field(default=16066, ge=1_024, le=65_000)

    @model_validator(mode="after")
    def _timeouts_inside_the_lease(self) -> "Settings":
        slowest = self.max_attempts * (self.model_timeout_s + self.model_retry_after_cap_s)
        if slowest >= self.lease_s:
            raise ValueError(
                f"lease_s ({self.lease_s}) must exceed max_attempts x (model_timeout_s + "
                f"model_retry_after_cap_s) = {slowest:g}, or a live worker's lease expires"
            )
        return self

    @field_validator("model_image_sizes")
    @classmethod
    def _sizes(cls, sizes: tuple[str, ...]) -> tuple[str, ...]:
        for size in sizes:
            if not re.fullmatch(r"[1-9][0-9]{1,4}x[1-9][0-9]{1,4}", size):
                raise ValueError(f"{size!r} is not WIDTHxHEIGHT")
        return sizes

    @field_validator("step_catalogue")
    @classmethod
    def _seven_steps(cls, steps: tuple[StepSpec, ...]) -> tuple[StepSpec, ...]:
        kinds = {step.step_id: step.kind for step in steps}
        expected = {i: "analysis" if i == 0 else "render" for i in range(LAST_STEP + 1)}
        if len(steps) != len(expected) or kinds != expected:
            raise ValueError("the step catalogue lists steps 0-6 once each: 0 analysis, 1-6 render")
        return tuple(sorted(steps, key=lambda step: step.step_id))

    @property
    def dsn(self) -> str:
        """The PostgreSQL DSN (contains the password: never log it)."""
        if self.postgres_dsn:
            return self.postgres_dsn
        return (
            f"postgresql://{self.postgres_user}:{self.postgres_password}"
            f"@{self.postgres_host}:{self.postgres_port}/{self.postgres_db}"
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: Any) -> "Settings":
        """Settings from ``PLANSTREAM_*`` variables, then ``overrides``; a bad one is named."""
        values: dict[str, Any] = {}
        for name, info in cls.model_fields.items():
            raw = environ.get(ENV_PREFIX + name.upper())
            if raw is None:
                continue
            if raw == "" and NoneType in get_args(info.annotation):
                values[name] = None  # an empty variable unsets an optional setting
            elif get_origin(info.annotation) in (dict, list, tuple):
                values[name] = _json_value(ENV_PREFIX + name.upper(), raw)
            else:
                values[name] = raw
        values.update(overrides)
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(part) for part in first["loc"])
            where = f"setting {ENV_PREFIX}{field.upper()} is" if field else "settings are"
            raise ConfigurationError(f"{where} invalid: {first['msg']}") from exc

    def to_env(self) -> dict[str, str]:
        """The ``PLANSTREAM_*`` variables that rebuild these settings in another process."""
        env = {}
        for name, value in self.model_dump(mode="json", exclude_none=True).items():
            text = json.dumps(value) if isinstance(value, dict | list) else str(value)
            env[ENV_PREFIX + name.upper()] = text
        return env

    def with_overrides(self, **overrides: Any) -> "Settings":
        """A copy with some settings changed (validated like the original)."""
        return type(self).model_validate({**self.model_dump(), **overrides})

"""Settings: one frozen object, built from a mapping (the entry point passes ``os.environ``)."""

import json
import re
from collections.abc import Mapping
from pathlib import Path
from types import NoneType
from typing import Annotated, Any, Final, Literal, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from planstream.domain.errors import ConfigurationError
from planstream.domain.rules import Policy
from planstream.domain.steps import DEFAULT_STEPS, LAST_STEP, StepSpec

__all__ = ["ENV_PREFIX", "Settings"]

ENV_PREFIX: Final = "PLANSTREAM_"
_LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# Signature algorithms a token may use; never "none", never an encryption algorithm.
_JWT_ALGORITHMS: Final = (
    "HS256",
    "HS384",
    "HS512",
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "ES256",
    "ES384",
    "EdDSA",
)
_STACK_NAMES: Final = "kafka|postgres|s3|model|prometheus|legacy"  # the local stack's services
# A host name or an IP literal (IPv6 in brackets), and a serialized browser origin.
_HOST_NAME: Final = r"^(\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9][A-Za-z0-9.-]{0,252})$"
_ORIGIN: Final = r"^https?://" + _HOST_NAME[1:-1] + r"(:[0-9]{1,5})?$"


def _env(name: str) -> str:
    """The variable of a setting, as messages name it."""
    return ENV_PREFIX + name.upper()


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
    # "local": the local stack and its throwaway credentials; "production": a process refuses to
    # start while a secret it needs is missing or still the local stack's (planstream/credentials).
    deployment: Literal["local", "production"] = "local"
    stack_services: str = Field(
        default="kafka,postgres,s3,model,prometheus,legacy",
        pattern=rf"^(({_STACK_NAMES})(,({_STACK_NAMES}))*)?$",
        description="what `stack up` starts; the others are expected at their addresses",
    )
    kafka_version: str = "4.1.1"
    kafka_heap: str = "512m"

    # Addresses: the defaults are the local stack's loopback ports.
    kafka_bootstrap: str = "127.0.0.1:19092"
    kafka_controller_port: int = 19093
    # Kafka's security (docs/security.md, "Kafka"), for Faust, every producer, consumer and admin.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = Field(default=None, min_length=1, max_length=256)
    kafka_sasl_password: str | None = Field(
        default=None, min_length=1, repr=False, description="a secret, never logged"
    )
    kafka_ssl_cafile: Path | None = Field(
        default=None, description="PEM CA certificates of the brokers (unset: the system's)"
    )
    kafka_ssl_certfile: Path | None = Field(
        default=None, description="PEM client certificate chain, for mutual TLS"
    )
    kafka_ssl_keyfile: Path | None = Field(
        default=None, description="the client certificate's unencrypted PEM private key"
    )
    postgres_host: str = "127.0.0.1"
    postgres_port: int = 15432
    postgres_user: str = "planstream"
    # The local stack's own throwaway role (S105); secrets stay out of the settings' repr.
    postgres_password: str = Field(default="planstream", repr=False)
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
    s3_secret_access_key: str | None = Field(default="planstream-local-secret", repr=False)
    model_base_url: str = "http://127.0.0.1:18080/v1"
    model_server_host: str = "127.0.0.1"
    model_server_port: int = 18080
    model_api_key: str = Field(default="sk-local-scripted", repr=False)
    model_vision: str = "planstream-scripted-vision"
    model_text: str = "planstream-scripted-vision"
    model_image: str = "planstream-scripted-image"
    model_timeout_s: float = Field(default=60.0, gt=0, description="per call; below lease_s")
    model_max_output_tokens: int = Field(default=8_000, ge=256)
    model_max_response_bytes: int = Field(
        default=400_000, ge=1_024, description="a chat answer, counted while it is decompressed"
    )
    model_max_image_response_bytes: int = Field(
        default=96 * 1024 * 1024,
        ge=1_024,
        description="an image answer (base64 JSON), counted while it is decompressed",
    )
    model_image_sizes: tuple[str, ...] = Field(
        default=(),
        description="the sizes the image model makes (empty: any); renders are then resized",
    )
    model_concurrency: int = Field(default=64, ge=1, description="model calls in flight per worker")
    replay_concurrency: int = Field(
        default=8,
        ge=1,
        le=1_000,
        description="events in flight per replay worker (python -m agents SERVICE --replay), so"
        " replays never starve production",
    )
    replay_max_attempts: int = Field(
        default=1_000, ge=1, le=100_000, description="recorded decisions one replay may re-decide"
    )
    replay_progress_poll_s: float = Field(
        default=1.0, gt=0, le=60, description="how often `planstream replay start` reads progress"
    )
    replay_retention_days: int = Field(
        default=14, ge=1, le=3_650, description="`planstream replay purge --expired` deletes older"
    )
    model_retry_after_cap_s: float = Field(default=30.0, ge=0)
    # The rate limiter before every model call (docs/model-protocol.md): requests and tokens per
    # minute per model, shared by every process through PostgreSQL. The defaults are OpenAI's
    # usage tier 2; the scripted models of the local stack are as good as unlimited.
    model_rate_limits: dict[str, tuple[int, int]] = Field(
        default_factory=lambda: {
            "gpt-4o": (5_000, 450_000),
            "gpt-4o-mini": (5_000, 2_000_000),
            "gpt-4.1": (5_000, 450_000),
            "gpt-image-1": (20, 250_000),
            "planstream-scripted-vision": (100_000, 100_000_000),
            "planstream-scripted-image": (100_000, 100_000_000),
        },
        description="model: (requests per minute, tokens per minute)",
    )
    model_rate_limit_default: tuple[int, int] = Field(
        default=(5_000, 450_000), description="a model model_rate_limits does not list"
    )
    model_limiter_burst_s: float = Field(
        default=60.0, gt=0, le=600, description="how many seconds of its limit a bucket holds"
    )
    model_limiter_max_wait_s: float = Field(
        default=600.0, gt=0, description="longest wait of one step's calls for the rate limit"
    )
    model_limiter_recheck_s: float = Field(
        default=5.0, gt=0, description="how often a call whose turn is too far asks again"
    )
    model_image_prompt_tokens: int = Field(
        default=1_105, ge=0, description="what one image in a prompt counts, for the estimate"
    )
    model_transport_attempts: int = Field(
        default=8, ge=1, le=10, description="tries of one call through 429s, 5xx, no connection"
    )
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
    model_server_rpm: int = Field(default=0, ge=0, description="requests a minute; 0: no limit")
    model_server_tpm: int = Field(default=0, ge=0, description="tokens a minute; 0: no limit")
    model_server_burst_s: float = Field(
        default=60.0, gt=0, description="how many seconds of its limits a model may use at once"
    )
    ingress_host: str = "127.0.0.1"
    ingress_port: int = 18000
    # The edge (planstream/adapters/http/edge.py, docs/security.md): who may address the API
    # and how long one request may take.
    ingress_allowed_hosts: tuple[Annotated[str, Field(pattern=_HOST_NAME)], ...] = Field(
        default=(),
        description="Host names (no port) the API answers, others 421; empty: the bind address, "
        "localhost and 127.0.0.1",
    )
    ingress_allowed_origins: tuple[Annotated[str, Field(pattern=_ORIGIN)], ...] = Field(
        default=(),
        description="browser origins (scheme://host[:port]) allowed besides the API's own; "
        "others 403",
    )
    ingress_read_timeout_s: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="request line and headers (from the connection's start or its previous "
        "answer, idle time included) and then the body must arrive within this, else the "
        "connection is closed",
    )
    ingress_handler_timeout_s: float = Field(
        default=30.0, gt=0, le=600, description="a request not answered within this gets 503"
    )

    # Authentication (docs/security.md): every /v1 call carries a bearer JWT. Keys come from a
    # JWKS URL (any OIDC provider, Supabase Auth) or a shared HS256 secret; the local stack's
    # own secret lives in auth_local_key_file (made by `stack up`, used when neither is set).
    auth_jwks_url: str | None = Field(
        default=None, pattern=r"^https?://[^\s?#]+$", description="the issuer's JSON Web Key Set"
    )
    auth_hs256_secret: str | None = Field(
        default=None,
        repr=False,
        min_length=32,
        description="a shared HMAC secret; a secret, never logged",
    )
    auth_local_key_file: Path = Path(".planstream/auth/hs256.key")
    auth_issuer: str = Field(default="planstream-local", min_length=1, description="`iss`")
    auth_audience: str = Field(default="planstream", min_length=1, description="`aud`")
    auth_algorithms: tuple[str, ...] = Field(
        default=("HS256", "RS256", "ES256"), min_length=1, description="accepted `alg` values"
    )
    auth_leeway_s: int = Field(default=30, ge=0, le=300, description="clock skew on exp/nbf/iat")
    auth_roles_claim: str = Field(
        default="app_metadata.planstream_roles",
        pattern=r"^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z_][A-Za-z0-9_-]*)*$",
        description="dotted path to the list of roles in a token",
    )
    auth_jwks_cache_s: float = Field(default=600.0, gt=0, description="how long keys are kept")
    auth_jwks_refresh_min_s: float = Field(
        default=30.0, gt=0, description="least time between fetches for an unknown `kid`"
    )
    auth_max_token_bytes: int = Field(default=8_192, ge=256)
    auth_token_ttl_s: int = Field(
        default=3_600, ge=60, le=86_400, description="what `tokens mint` signs by default"
    )
    # Quotas per token subject, answered 429 with Retry-After; counted in PostgreSQL.
    quota_runs_per_minute: int = Field(default=60, ge=1, description="runs created a minute")
    quota_active_runs: int = Field(
        default=20, ge=1, description="runs pending or running at once (blocked ones not)"
    )
    quota_reviews_per_run_hour: int = Field(
        default=10, ge=1, description="reviews of one run an hour (operators included)"
    )
    # The operator console (/console, docs/console.md): its session is the operator's token in
    # an HttpOnly cookie; images reach the browser through short-lived signed URLs.
    console_token_ttl_s: int = Field(
        default=3_600, ge=60, le=86_400, description="what `planstream console` mints"
    )
    console_artifact_url_ttl_s: int = Field(
        default=60,
        ge=10,
        le=3_600,
        description="life of the signed GET URL an artifact link redirects to",
    )
    console_secure_cookie: bool = Field(
        default=False,
        description="mark the session cookie Secure even on a plain-HTTP request (TLS ended "
        "by a proxy in front); it always is on HTTPS",
    )
    console_queue_limit: int = Field(
        default=200, ge=1, le=5_000, description="blocked runs the queue lists (oldest first)"
    )
    console_dead_letters_limit: int = Field(
        default=200, ge=1, le=5_000, description="dead letters the console lists (newest first)"
    )
    console_dead_letters_timeout_s: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description="a page reading the dead-letter topic says so rather than wait past this",
    )
    console_documents_per_run: int = Field(
        default=40,
        ge=1,
        le=500,
        description="Spaces documents the run page reads from storage (newest step attempts)",
    )
    console_history_limit: int = Field(
        default=20, ge=1, le=1_000, description="routing-flag changes the flags page lists"
    )
    console_replays_limit: int = Field(
        default=50, ge=1, le=1_000, description="replays the console's replays page lists"
    )

    # Migration (docs/migration.md): the routing flags' cache, and the old run-pipeline-step
    # function the legacy bridge calls for the steps routed to it.
    route_cache_s: float = Field(
        default=5.0, gt=0, le=300, description="how long a process keeps the routing flags it read"
    )
    legacy_url: str = Field(
        default="http://127.0.0.1:18090/functions/v1/run-pipeline-step",
        pattern=r"^https?://[^\s?#]+$",
        description="the old function's endpoint (the local stack's scripted one by default)",
    )
    legacy_auth_header: str = Field(
        default="Authorization", pattern=r"^[A-Za-z][A-Za-z0-9-]{0,63}$"
    )
    legacy_auth_token: str = Field(
        repr=False,
        default="legacy-local-key",
        min_length=1,
        description="sent as `<legacy_auth_header>: Bearer <token>`; a secret, never logged",
    )
    legacy_timeout_s: float = Field(default=30.0, gt=0, le=600, description="per call")
    legacy_connect_timeout_s: float = Field(default=5.0, gt=0, le=60)
    legacy_retry_max_delay_s: float = Field(
        default=5.0, ge=0, description="longest wait before calling again after a 429 or a 5xx"
    )
    legacy_max_response_bytes: int = Field(default=65_536, ge=1_024)
    # The local stack's scripted run-pipeline-step (planstream/dev/legacy).
    legacy_server_host: str = "127.0.0.1"
    legacy_server_port: int = 18090
    legacy_server_memory_mb: int = Field(
        default=48,
        ge=1,
        description="what one call may hold decoded (in and out, RGBA) before WORKER_LIMIT",
    )
    legacy_server_max_request_bytes: int = Field(
        default=4_096, ge=256, description="a larger request body is answered WORKER_LIMIT"
    )
    # Prometheus: where it answers queries; the local one listens on prometheus_port (loopback).
    prometheus_url: str = "http://127.0.0.1:19090"
    prometheus_port: int = 19090
    prometheus_scrape_interval_s: float = Field(
        default=2.0, ge=0.5, le=300, description="the local Prometheus's scrape and rule interval"
    )
    prometheus_retention_h: int = Field(default=24, ge=1, description="the local TSDB's retention")

    # Topics.
    topic_namespace: str = Field(default="", pattern=r"^[a-z0-9-]*\.?$")
    topic_partitions: int = Field(default=4, ge=1, le=256)
    topic_replication_factor: int = Field(default=1, ge=1, le=5)
    app_id_suffix: str = Field(default="", pattern=r"^[a-z0-9-]*$")

    # Payload limits.
    max_event_bytes: int = Field(default=50_000, ge=1_024)
    max_request_bytes: int = Field(default=10_240, ge=256)
    max_request_text_chars: int = Field(default=2_000, ge=0)
    max_image_bytes: int = Field(
        default=64 * 1024 * 1024, ge=1_024, description="an image the pipeline reads (renders)"
    )
    max_upload_bytes: int = Field(
        default=20 * 1024 * 1024,
        ge=1_024,
        description="an upload: the presigned POST's content-length-range, Image I/O's HEAD cap",
    )
    max_image_pixels: int = Field(
        default=48_000_000, ge=1, description="decompression-bomb cap (6400 x 7500)"
    )
    max_image_side: int = Field(
        default=8_192, ge=64, description="either side, read from the header before decoding"
    )
    max_image_aspect_ratio: float = Field(
        default=8.0, ge=1.0, description="long side over short side, from the header"
    )

    # Signed URLs.
    upload_url_ttl_s: int = Field(default=300, ge=10, le=3_600)
    signed_url_ttl_s: int = Field(default=600, ge=30, le=3_600)
    signed_url_refresh_margin_s: int = Field(default=120, ge=5)

    # RULES.md's thresholds (planstream.domain.rules.Policy); a change is recorded in every
    # decision's rules version, and `planstream replay` shows what it flips (docs/replay.md).
    rules_low_confidence_below: float = Field(
        default=Policy.low_confidence_below,
        ge=0.0,
        le=1.0,
        description="a space with a lower confidence counts as low-confidence",
    )
    rules_max_low_confidence_share: float = Field(
        default=Policy.max_low_confidence_share,
        ge=0.0,
        le=1.0,
        description="LOW_CONFIDENCE_RATIO fires above this share of low-confidence spaces",
    )
    rules_max_ambiguous_share: float = Field(
        default=Policy.max_ambiguous_share,
        ge=0.0,
        le=1.0,
        description="AMBIGUOUS_RATIO fires above this share of ambiguous spaces",
    )
    rules_min_spaces: int = Field(
        default=Policy.min_spaces, ge=0, le=1_000, description="TOO_FEW_SPACES below this count"
    )
    rules_min_consistency_score: float = Field(
        default=Policy.min_consistency_score,
        ge=0.0,
        le=1.0,
        description="AUDIT_INCONSISTENT below this audit score",
    )
    rules_max_failures: int = Field(
        default=Policy.max_failures,
        ge=0,
        le=100,
        description="a step with more failures than this is blocked",
    )

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

    # Metrics: every service process serves GET /metrics and GET /healthz on its own port.
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(
        default=0, ge=0, le=65_535, description="0: no metrics endpoint (ad-hoc commands)"
    )
    liveness_s: float = Field(
        default=120.0,
        gt=0,
        description="/healthz says 503 once a worker's consumer (or loop) made no progress so long",
    )

    # Logs and traces (planstream/adapters/logs.py and tracing.py).
    log_level: str = Field(default="INFO", description="planstream's own loggers")
    log_library_level: str = Field(
        default="WARNING", description="every other logger: aiokafka, botocore, Faust, asyncpg"
    )
    log_format: Literal["auto", "json", "text"] = Field(
        default="auto", description="auto: JSON lines for the services, text for other commands"
    )
    instance_id: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$",
        description="this process in logs and traces (unset: <host name>-<pid>)",
    )
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s?#]+$",
        description="OTLP/HTTP collector, e.g. http://collector:4318 (unset: spans not exported)",
    )
    otel_export_timeout_s: float = Field(default=10.0, gt=0, le=60)
    log_max_field_chars: int = Field(
        default=16_000, ge=200, description="a longer message or field is cut in a log line"
    )

    @field_validator("log_level", "log_library_level")
    @classmethod
    def _level(cls, level: str) -> str:
        named = level.upper()
        if named not in _LOG_LEVELS:
            raise ValueError(f"{level!r} is none of {', '.join(_LOG_LEVELS)}")
        return named

    @model_validator(mode="after")
    def _timeouts_inside_the_lease(self) -> "Settings":
        slowest = self.max_attempts * (self.model_timeout_s + self.model_retry_after_cap_s)
        if slowest >= self.lease_s:
            raise ValueError(
                f"lease_s ({self.lease_s}) must exceed max_attempts x (model_timeout_s + "
                f"model_retry_after_cap_s) = {slowest:g}, or a live worker's lease expires"
            )
        return self

    @model_validator(mode="after")
    def _liveness_above_the_loops(self) -> "Settings":
        slowest = max(self.sweeper_interval_s, self.sink_batch_s, self.consumer_repair_s)
        if self.liveness_s <= 2 * slowest:
            raise ValueError(
                f"liveness_s ({self.liveness_s:g}) must exceed twice the slowest loop period "
                f"({slowest:g} s), or a live process reports itself stalled"
            )
        return self

    @model_validator(mode="after")
    def _uploads_within_images(self) -> "Settings":
        if self.max_upload_bytes > self.max_image_bytes:
            raise ValueError(
                f"max_upload_bytes ({self.max_upload_bytes}) must not exceed max_image_bytes "
                f"({self.max_image_bytes}): the render worker reads an upload with that cap"
            )
        return self

    @model_validator(mode="after")
    def _kafka_security(self) -> "Settings":
        protocol = self.kafka_security_protocol
        for name in ("kafka_sasl_username", "kafka_sasl_password"):
            given = getattr(self, name) is not None
            if given != (protocol == "SASL_SSL"):
                need = "is set but unused by" if given else "is required with"
                setting = f"{_env('kafka_security_protocol')}={protocol}"
                raise ValueError(f"{_env(name)} {need} {setting}")
        for name in ("kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile"):
            path = getattr(self, name)
            if path is not None and protocol == "PLAINTEXT":
                raise ValueError(f"{_env(name)} is set but unused by PLAINTEXT (no TLS)")
            if path is not None and not path.is_file():
                raise ValueError(f"{_env(name)} names no readable file: {path}")
        if self.kafka_ssl_keyfile is not None and self.kafka_ssl_certfile is None:
            raise ValueError(f"{_env('kafka_ssl_keyfile')} needs {_env('kafka_ssl_certfile')}")
        return self

    @field_validator("auth_algorithms")
    @classmethod
    def _algorithms(cls, algorithms: tuple[str, ...]) -> tuple[str, ...]:
        for algorithm in algorithms:
            if algorithm not in _JWT_ALGORITHMS:
                raise ValueError(f"{algorithm!r} is none of {', '.join(_JWT_ALGORITHMS)}")
        return algorithms

    @field_validator("model_rate_limits")
    @classmethod
    def _rate_limits(cls, limits: dict[str, tuple[int, int]]) -> dict[str, tuple[int, int]]:
        for model, limit in limits.items():
            cls._positive_limit(limit, model)
        return limits

    @field_validator("model_rate_limit_default")
    @classmethod
    def _positive_limit(cls, limit: tuple[int, int], model: str = "default") -> tuple[int, int]:
        if min(limit) < 1:
            raise ValueError(f"the rate limit of {model} needs 1 request and 1 token a minute")
        return limit

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

    def policy(self) -> Policy:
        """RULES.md's thresholds as configured, with the retry budget."""
        return Policy(
            low_confidence_below=self.rules_low_confidence_below,
            max_low_confidence_share=self.rules_max_low_confidence_share,
            max_ambiguous_share=self.rules_max_ambiguous_share,
            min_spaces=self.rules_min_spaces,
            min_consistency_score=self.rules_min_consistency_score,
            max_failures=self.rules_max_failures,
            max_attempts=self.max_attempts,
        )

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

"""The Prometheus metrics of every planstream process, defined once, and how each is counted.

Not a port: prometheus_client keeps its values in this process's memory and does no I/O of its
own (the adapters' metrics endpoint, ``planstream.adapters.metrics_server``, serves them), so a
service counts by calling a function here, and a test reads the value back from ``REGISTRY``.
A port would add an interface and a fake for what already is an in-memory object.

Every label value is bounded: a service or worker name, a catalogue topic (never namespaced), a
step number, a rule or block reason of the catalogue (anything else is ``other``), an exception
class, a route template. Never a run, job or event id.

A counter counts an effect once it happened (after the broker acknowledged, the row was written,
the offsets were committed), not when it was attempted.

A replay process (``python -m agents SERVICE --replay``) runs the same code and counts with the
same functions; its endpoint serves every series with one more label, ``mode="replay"``
(``label_mode``), so a replay's counts are never summed with production's by accident and the
label adds one bounded value. Production's series carry no ``mode`` label: what existing
queries, alerts and dashboards read is unchanged (exclude replays with ``mode!="replay"``).
"""

import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Final, Literal, get_args

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.metrics_core import Metric

from planstream import __version__
from planstream.domain.events import DecisionMade, Severity
from planstream.domain.legacy import CODES as LEGACY_CODES
from planstream.domain.rules import ALL_RULES, BLOCK_REASONS
from planstream.domain.service_names import LEGACY, STEP_SERVICES

__all__ = [
    "AUDITS",
    "AUDIT_CONSISTENCY_SCORE",
    "BUILD_INFO",
    "CONSUMER_LAG",
    "DEAD_LETTERS",
    "DECISIONS",
    "EVENTS_CONSUMED",
    "EVENTS_PUBLISHED",
    "EVENT_BYTES",
    "HANDLE_SECONDS",
    "HTTP_REQUESTS",
    "HTTP_REQUEST_SECONDS",
    "LEASE_TAKEOVERS",
    "LEGACY_CALLS",
    "LEGACY_CALL_SECONDS",
    "LEGACY_REQUEST_BYTES",
    "MODEL_CALLS",
    "MODEL_CALLS_IN_FLIGHT",
    "MODEL_CALL_SECONDS",
    "MODEL_COST",
    "MODEL_LIMITER_WAIT",
    "MODEL_THROTTLED",
    "MODEL_TOKENS",
    "OLDEST_PENDING_JOB",
    "OTHER",
    "REBALANCES",
    "REGISTRY",
    "RETRIES",
    "RULE_FAILURES",
    "RUNS_BLOCKED",
    "STALE_WRITES_REFUSED",
    "STEP_SECONDS",
    "WORK_POOL_BUSY",
    "WORK_POOL_CAPACITY",
    "count_audit",
    "count_consumed",
    "count_dead_letter",
    "count_decision",
    "count_http_request",
    "count_legacy_call",
    "count_model_call",
    "count_published",
    "count_rebalance",
    "count_retry",
    "count_stale_write",
    "count_takeover",
    "count_throttled",
    "exposed",
    "label_mode",
    "mark_started",
    "model_call_in_flight",
    "observe_handling",
    "observe_limiter_wait",
    "reason_of",
    "set_consumer_lag",
    "set_oldest_pending_jobs",
    "set_runs_blocked",
    "watch_work_pool",
]

disable_created_metrics()  # type: ignore[no-untyped-call]  # no *_created series

OTHER: Final = "other"
"""The label value of anything outside a bounded set (a rule name a forged event made up)."""

_RULES: Final = frozenset(rule.name for rule in ALL_RULES)
_BLOCK_REASONS: Final = _RULES | frozenset(BLOCK_REASONS)
_SEVERITIES: Final = frozenset(get_args(Severity))
_CLASS_NAME: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")

# Buckets: what each histogram measures, around the plan's objectives.
_STEP_BUCKETS: Final = (1, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 75, 90, 120, 180, 300, 600)
_EVENT_BYTES_BUCKETS: Final = (
    256,
    512,
    1_024,
    2_048,
    5_000,
    10_000,
    20_000,
    30_000,
    40_000,
    50_000,
)
_HANDLE_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_MODEL_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 45, 60, 90, 120)
_HTTP_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_LIMITER_BUCKETS: Final = (0.001, 0.1, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600)
_SCORE_BUCKETS: Final = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)

BUILD_INFO = Gauge(
    "planstream_build_info",
    "1 for each running planstream process: its service and version",
    ["service", "version"],
)
EVENTS_CONSUMED = Counter(
    "planstream_events_consumed_total",
    "Events a service took over from a topic (its job recorded, or its effect done)",
    ["service", "topic"],
)
EVENTS_PUBLISHED = Counter(
    "planstream_events_published_total",
    "Events the broker acknowledged, by publishing service and topic",
    ["service", "topic"],
)
EVENT_BYTES = Histogram(
    "planstream_event_bytes",
    "Size of each acknowledged event's JSON (the plan: under 10 KB typical, 50 KB the limit)",
    ["topic"],
    buckets=_EVENT_BYTES_BUCKETS,
)
HANDLE_SECONDS = Histogram(
    "planstream_handle_seconds",
    "Time a service spent handling one event (retries included), a sink batch or a sweep",
    ["service", "handler"],
    buckets=_HANDLE_BUCKETS,
)
STEP_SECONDS = Histogram(
    "planstream_step_seconds",
    "From a step attempt's request to the Supervisor's decision (the plan: P95 under 60 s)",
    ["step"],
    buckets=_STEP_BUCKETS,
)
DECISIONS = Counter(
    "planstream_decisions_total",
    "Decisions stored in pipeline_decisions (each step attempt once), by block reason",
    ["decision", "block_reason"],
)
RULE_FAILURES = Counter(
    "planstream_rule_failures_total",
    "Rule failures listed by the stored decisions",
    ["rule", "severity"],
)
MODEL_CALLS = Counter(
    "planstream_model_calls_total",
    "Model calls recorded as ended, by outcome (answered, refused, timeout, throttled, ...)",
    ["purpose", "model", "outcome"],
)
MODEL_CALL_SECONDS = Histogram(
    "planstream_model_call_seconds",
    "Latency of each ended model call, whatever its outcome",
    ["purpose", "model"],
    buckets=_MODEL_BUCKETS,
)
MODEL_TOKENS = Counter(
    "planstream_model_tokens_total",
    "Tokens of the recorded model calls, by direction (input, output)",
    ["purpose", "model", "direction"],
)
MODEL_COST = Counter(
    "planstream_model_cost_usd_total",
    "USD of the recorded model calls, by the configured price table",
    ["purpose", "model"],
)
MODEL_LIMITER_WAIT = Histogram(
    "planstream_model_limiter_wait_seconds",
    "Time a model call waited for the rate limiter before it was made (0: its turn was free)",
    ["model"],
    buckets=_LIMITER_BUCKETS,
)
MODEL_THROTTLED = Counter(
    "planstream_model_throttled_total",
    "429s the provider answered, each pausing the model's rate-limit bucket for every process",
    ["model"],
)
MODEL_CALLS_IN_FLIGHT = Gauge(
    "planstream_model_calls_in_flight",
    "Model calls waiting for an answer now (the limit is the model_concurrency setting)",
    ["service"],
)
WORK_POOL_CAPACITY = Gauge(
    "planstream_work_pool_capacity",
    "Slots of a worker's pool of background work (the model_concurrency setting)",
    ["service"],
)
WORK_POOL_BUSY = Gauge(
    "planstream_work_pool_busy",
    "Slots of a worker's pool taken now (events being handled, model calls included)",
    ["service"],
)
REBALANCES = Counter(
    "planstream_rebalances_total",
    "Partition assignments this process's consumer received (each rebalance, and the start)",
    ["service"],
)
AUDITS = Counter(
    "planstream_audits_total",
    "LLM audits of a comparison whose decision was published, by outcome",
    ["outcome"],
)
AUDIT_CONSISTENCY_SCORE = Histogram(
    "planstream_audit_consistency_score",
    "The consistency score of each scored audit (below 0.5 blocks as AUDIT_INCONSISTENT)",
    buckets=_SCORE_BUCKETS,
)
RETRIES = Counter(
    "planstream_retries_total",
    "Retries of transient failures (handler, model transport, PostgreSQL outage), by reason",
    ["service", "reason"],
)
LEASE_TAKEOVERS = Counter(
    "planstream_lease_takeovers_total",
    "Job leases taken over from a holder whose lease expired",
    ["service"],
)
STALE_WRITES_REFUSED = Counter(
    "planstream_stale_writes_refused_total",
    "Job results refused because the lease was taken over meanwhile (fencing by epoch)",
    ["service"],
)
DEAD_LETTERS = Counter(
    "planstream_dead_letters_total",
    "Messages the dead-letter topic acknowledged, by the refusing error's class",
    ["service", "reason"],
)
CONSUMER_LAG = Gauge(
    "planstream_consumer_lag_messages",
    "Messages on a topic past its group's committed offsets (set by the sweeper every sweep)",
    ["group", "topic"],
)
OLDEST_PENDING_JOB = Gauge(
    "planstream_oldest_pending_job_seconds",
    "Age of the oldest unfinished (pending or running) job per service; 0 when none",
    ["service"],
)
RUNS_BLOCKED = Gauge(
    "planstream_runs_blocked",
    "Runs blocked now, waiting for a reviewer, by block reason",
    ["reason"],
)
HTTP_REQUESTS = Counter(
    "planstream_http_requests_total",
    "Ingress requests answered, by route template and status",
    ["route", "status"],
)
HTTP_REQUEST_SECONDS = Histogram(
    "planstream_http_request_seconds",
    "Ingress request latency by route template",
    ["route"],
    buckets=_HTTP_BUCKETS,
)
LEGACY_CALLS = Counter(
    "planstream_legacy_calls_total",
    "Calls of the old run-pipeline-step function by the legacy bridge, by step and outcome code"
    " (OK, WORKER_LIMIT, TIMEOUT, ...; docs/migration.md)",
    ["step", "code"],
)
LEGACY_CALL_SECONDS = Histogram(
    "planstream_legacy_call_seconds",
    "Latency of each call of the old function, whatever its outcome",
    ["step"],
    buckets=_MODEL_BUCKETS,
)
LEGACY_REQUEST_BYTES = Histogram(
    "planstream_legacy_request_bytes",
    "Size of each request body sent to the old function (ids only: well under 1 KB)",
    ["step"],
    buckets=_EVENT_BYTES_BUCKETS,
)


class _ModeLabelled:
    """Every sample of ``registry`` with a constant ``mode`` label."""

    def __init__(self, registry: CollectorRegistry, mode: str) -> None:
        self._registry = registry
        self._mode = mode

    def collect(self) -> Iterator[Metric]:
        for family in self._registry.collect():
            labelled = Metric(family.name, family.documentation, family.type, family.unit)
            labelled.samples = [
                sample._replace(labels={**sample.labels, "mode": self._mode})
                for sample in family.samples
            ]
            yield labelled


_EXPOSED: list[CollectorRegistry] = [REGISTRY]  # what the endpoint serves (one registry)


def label_mode(mode: Literal["replay"]) -> None:
    """This process serves its metrics labelled ``mode="<mode>"`` (a replay process's)."""
    labelled = CollectorRegistry(auto_describe=False)
    labelled.register(_ModeLabelled(REGISTRY, mode))
    _EXPOSED[0] = labelled


def exposed() -> CollectorRegistry:
    """What the metrics endpoint serves: the registry, labelled with the process's mode."""
    return _EXPOSED[0]


def _bounded(value: str | None, allowed: frozenset[str], none: str = "none") -> str:
    if value is None:
        return none
    return value if value in allowed else OTHER


def reason_of(error: BaseException) -> str:
    """A bounded reason label for an error: its class name."""
    name = type(error).__name__
    return name if _CLASS_NAME.fullmatch(name) else OTHER


def mark_started(service: str) -> None:
    """Say this process runs ``service`` (``planstream_build_info``)."""
    BUILD_INFO.labels(service, __version__).set(1)


def count_consumed(service: str, topic: str, count: int = 1) -> None:
    """``service`` took over ``count`` events of the catalogue topic ``topic``."""
    EVENTS_CONSUMED.labels(service, topic).inc(count)


def count_published(service: str, topic: str, size: int) -> None:
    """The broker acknowledged an event of ``size`` bytes on the catalogue topic ``topic``."""
    EVENTS_PUBLISHED.labels(service, topic).inc()
    EVENT_BYTES.labels(topic).observe(size)


def observe_handling(service: str, handler: str, seconds: float) -> None:
    """``service`` spent ``seconds`` on one event (``handler`` is its class name)."""
    HANDLE_SECONDS.labels(service, handler).observe(seconds)


def count_decision(decision: DecisionMade, step_seconds: float | None) -> None:
    """A decision was stored; ``step_seconds`` since its step attempt was requested, if known."""
    DECISIONS.labels(decision.decision, _bounded(decision.block_reason, _BLOCK_REASONS)).inc()
    for failure in decision.failures:
        rule = _bounded(failure.rule, _RULES)
        RULE_FAILURES.labels(rule, _bounded(failure.severity, _SEVERITIES)).inc()
    if step_seconds is not None and decision.decided_by == "supervisor":
        STEP_SECONDS.labels(str(decision.step_id)).observe(max(step_seconds, 0.0))


def count_model_call(
    purpose: str,
    model: str,
    outcome: str,
    *,
    seconds: float,
    input_tokens: int,
    output_tokens: int,
    cost_usd: float,
) -> None:
    """A model call ended and is recorded in the call log."""
    MODEL_CALLS.labels(purpose, model, outcome).inc()
    MODEL_CALL_SECONDS.labels(purpose, model).observe(seconds)
    MODEL_TOKENS.labels(purpose, model, "input").inc(input_tokens)
    MODEL_TOKENS.labels(purpose, model, "output").inc(output_tokens)
    MODEL_COST.labels(purpose, model).inc(cost_usd)


@contextmanager
def model_call_in_flight(service: str) -> Iterator[None]:
    """Count a model call as in flight for the duration of the block."""
    gauge = MODEL_CALLS_IN_FLIGHT.labels(service)
    gauge.inc()
    try:
        yield
    finally:
        gauge.dec()


def watch_work_pool(service: str, capacity: int, busy: Callable[[], float]) -> None:
    """Report ``service``'s pool: its capacity, and ``busy()`` read at every scrape."""
    WORK_POOL_CAPACITY.labels(service).set(capacity)
    WORK_POOL_BUSY.labels(service).set_function(busy)


def count_rebalance(service: str) -> None:
    """``service``'s consumer was assigned its partitions (again)."""
    REBALANCES.labels(service).inc()


def count_audit(outcome: str, score: float | None) -> None:
    """The decision an audit fed was published; a scored audit's score is observed."""
    AUDITS.labels(outcome).inc()
    if score is not None:
        AUDIT_CONSISTENCY_SCORE.observe(score)


def count_retry(service: str, reason: str) -> None:
    """``service`` tries a transient failure again (``reason``: a bounded name)."""
    RETRIES.labels(service, reason).inc()


def observe_limiter_wait(model: str, seconds: float) -> None:
    """A model call waited ``seconds`` for the rate limiter of ``model`` (a configured name)."""
    MODEL_LIMITER_WAIT.labels(model).observe(max(seconds, 0.0))


def count_throttled(model: str) -> None:
    """The provider answered a call to ``model`` with 429."""
    MODEL_THROTTLED.labels(model).inc()


def count_takeover(service: str) -> None:
    """``service`` took over a job whose holder's lease expired."""
    LEASE_TAKEOVERS.labels(service).inc()


def count_stale_write(service: str) -> None:
    """``service``'s result was refused: its lease had been taken over."""
    STALE_WRITES_REFUSED.labels(service).inc()


def count_dead_letter(service: str, error: BaseException) -> None:
    """The dead-letter topic acknowledged a message ``service`` refused with ``error``."""
    DEAD_LETTERS.labels(service, reason_of(error)).inc()


def set_consumer_lag(lags: Mapping[tuple[str, str], int]) -> None:
    """The lag of each (group, catalogue topic) now; pairs no longer seen are dropped."""
    CONSUMER_LAG.clear()
    for (group, topic), lag in lags.items():
        CONSUMER_LAG.labels(group, topic).set(lag)


def set_oldest_pending_jobs(ages_s: Mapping[str, float]) -> None:
    """The oldest unfinished job's age per service now (0 for a step service with none)."""
    oldest: dict[str, float] = dict.fromkeys((*STEP_SERVICES, LEGACY), 0.0)
    for service, age in ages_s.items():
        label = service if service in oldest else OTHER
        oldest[label] = max(oldest.get(label, 0.0), age)
    OLDEST_PENDING_JOB.clear()
    for label, age in oldest.items():
        OLDEST_PENDING_JOB.labels(label).set(age)


def set_runs_blocked(counts: Mapping[str | None, int]) -> None:
    """Runs blocked now by reason; every known reason with none is 0."""
    RUNS_BLOCKED.clear()
    totals = dict.fromkeys(sorted(_BLOCK_REASONS), 0)
    for reason, count in counts.items():
        label = _bounded(reason, _BLOCK_REASONS, none=OTHER)
        totals[label] = totals.get(label, 0) + count
    for label, count in totals.items():
        RUNS_BLOCKED.labels(label).set(count)


def count_http_request(route: str, status: int, seconds: float) -> None:
    """The ingress answered a request on ``route`` (a template) with ``status``."""
    HTTP_REQUESTS.labels(route, str(status)).inc()
    HTTP_REQUEST_SECONDS.labels(route).observe(seconds)


def count_legacy_call(step: int, code: str, seconds: float, request_bytes: int) -> None:
    """The legacy bridge called the old function for ``step``; ``code`` is how it ended."""
    label = str(step) if 0 <= step <= 6 else OTHER
    LEGACY_CALLS.labels(label, _bounded(code, frozenset(LEGACY_CODES))).inc()
    LEGACY_CALL_SECONDS.labels(label).observe(seconds)
    LEGACY_REQUEST_BYTES.labels(label).observe(request_bytes)

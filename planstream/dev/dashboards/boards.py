"""The three dashboards: Pipeline, Model, and Kafka and workers, panel by panel.

Each panel answers one operator question (docs/operations.md, "Watching it"); the thresholds are
the plan's objectives and limits: P95 per step under 60 s, events under 10 KB typical and 50 KB
at most, model errors under 10 % and 429s under 5 % (the alert rules' thresholds).
"""

from typing import Final

from planstream.dev.dashboards.builder import Board, Panel, Query, Row, Threshold, selector

__all__ = ["BOARDS", "KAFKA_AND_WORKERS", "MODEL", "PIPELINE"]

_RATE: Final = "$__rate_interval"
_RANGE: Final = "$__range"
_RUN_ENDS: Final = 'topic=~"planstream.run.(completed|blocked).v1"'
_ERRORS: Final = 'outcome=~"timeout|unreachable|failed"'


def _rate(metric: str, *matchers: str, window: str = _RATE) -> str:
    return f"rate({selector(metric, *matchers)}[{window}])"


def _increase(metric: str, *matchers: str, window: str = _RATE) -> str:
    return f"increase({selector(metric, *matchers)}[{window}])"


def _quantile(q: float, histogram: str, by: str = "") -> str:
    labels = ", ".join(label for label in ("le", by) if label)
    return f"histogram_quantile({q}, sum by ({labels}) ({_rate(histogram + '_bucket')}))"


def _ratio_of_calls(by: str, outcome: str) -> str:
    """The share of model calls with ``outcome``: 0, not nothing, for a label with none."""
    part = f"sum by ({by}) ({_rate('planstream_model_calls_total', outcome)})"
    whole = f"sum by ({by}) ({_rate('planstream_model_calls_total')})"
    return f"({part} or {whole} * 0) / {whole}"


_RUNS_ENDED: Final = _rate("planstream_events_published_total", _RUN_ENDS)
_RUNS_ENDED_IN_RANGE: Final = _increase(
    "planstream_events_published_total", _RUN_ENDS, window=_RANGE
)
_BLOCKS: Final = _rate("planstream_decisions_total", 'decision="block"')
_ALL_EVENTS: Final = _rate("planstream_event_bytes_bucket", 'le="+Inf"')
_EVENTS_UP_TO_10KB: Final = _rate("planstream_event_bytes_bucket", 'le="10000.0"')
_COST_IN_RANGE: Final = _increase("planstream_model_cost_usd_total", window=_RANGE)
_DECISIONS_IN_RANGE: Final = _increase("planstream_decisions_total", window=_RANGE)
_UP: Final = selector("up", 'job="planstream"')

_RUNS = Row(
    "Runs",
    [
        Panel(
            "Runs finished, by outcome",
            "Runs that completed all 7 steps or blocked for a reviewer, per minute.",
            [
                Query(
                    f"label_replace(sum by (topic) ({_RUNS_ENDED}) * 60, "
                    '"outcome", "$1", "topic", "planstream.run.(.+).v1")',
                    "{{outcome}}",
                )
            ],
            unit="short",
            stacked=True,
        ),
        Panel(
            "Runs blocked now, by reason",
            "Runs waiting for a reviewer (planstream runs approve | retry | reject).",
            [Query(f"sum by (reason) ({selector('planstream_runs_blocked')})", "{{reason}}")],
            stacked=True,
        ),
    ],
)

_STEPS = Row(
    "Steps and decisions",
    [
        Panel(
            "Step latency P50 / P95 / P99, against the 60 s objective",
            "From a step attempt's request to the Supervisor's decision, all steps.",
            [
                Query(_quantile(q, "planstream_step_seconds"), f"P{round(q * 100)}")
                for q in (0.5, 0.95, 0.99)
            ],
            unit="s",
            thresholds=[Threshold(60)],
        ),
        Panel(
            "Step latency P95, by step",
            "Which step is slow: 0 is the analysis, 1-6 the renders.",
            [Query(_quantile(0.95, "planstream_step_seconds", "step"), "step {{step}}")],
            unit="s",
            thresholds=[Threshold(60)],
        ),
        Panel(
            "Decisions per minute, by decision",
            "proceed, retry (another attempt of the step) or block.",
            [
                Query(
                    f"sum by (decision) ({_rate('planstream_decisions_total')}) * 60",
                    "{{decision}}",
                )
            ],
            stacked=True,
        ),
        Panel(
            "Block reasons per minute",
            "Why decisions blocked their run: a rule, the retry budget, too many failures.",
            [Query(f"sum by (block_reason) ({_BLOCKS}) * 60", "{{block_reason}}")],
            stacked=True,
        ),
        Panel(
            "Rule failures per minute, by rule and severity",
            "The failures the decisions listed (a retry or a block follows).",
            [
                Query(
                    f"sum by (rule, severity) ({_rate('planstream_rule_failures_total')}) * 60",
                    "{{rule}} ({{severity}})",
                )
            ],
        ),
        Panel(
            "Audits per minute, by outcome; consistency score P10",
            "Every decision is audited (scored, or why not); a score under 0.5 blocks.",
            [
                Query(
                    f"sum by (outcome) ({_rate('planstream_audits_total')}) * 60",
                    "{{outcome}}",
                ),
                Query(_quantile(0.1, "planstream_audit_consistency_score"), "score P10"),
            ],
        ),
    ],
)

_FAILURES = Row(
    "Retries and dead letters",
    [
        Panel(
            "Retries per minute, by service and reason",
            "Transient failures tried again: model timeouts and 429s, PostgreSQL outages.",
            [
                Query(
                    f"sum by (service, reason) ({_rate('planstream_retries_total')}) * 60",
                    "{{service}}: {{reason}}",
                )
            ],
        ),
        Panel(
            "Dead letters per minute, by service and reason",
            "Events refused to planstream.dead-letter.v1 (planstream dlq list).",
            [
                Query(
                    f"sum by (service, reason) ({_rate('planstream_dead_letters_total')}) * 60",
                    "{{service}}: {{reason}}",
                )
            ],
            empty_when_healthy=(
                "nothing is refused. The fault suite fills it: its poison, size and smuggling "
                "tests (tests/chaos/test_inputs.py), and T03 (tests/chaos/test_crashes.py), "
                "which sends a poison event and checks that this query then returns series."
            ),
        ),
    ],
)

_PAYLOADS = Row(
    "Payloads",
    [
        Panel(
            "Event size P50 / P95, by topic, against 10 KB and 50 KB",
            "Acknowledged events' JSON: typically under 10 KB, never over 50 KB (refused).",
            [
                Query(_quantile(0.5, "planstream_event_bytes", "topic"), "{{topic}} P50"),
                Query(_quantile(0.95, "planstream_event_bytes", "topic"), "{{topic}} P95"),
            ],
            unit="decbytes",
            thresholds=[Threshold(10_000, "orange"), Threshold(50_000)],
        ),
        Panel(
            "Events over 10 KB per minute, by topic",
            "Events past the typical size: a growing share means documents are growing.",
            [
                Query(
                    f"(sum by (topic) ({_ALL_EVENTS}) - sum by (topic) ({_EVENTS_UP_TO_10KB}))"
                    " * 60",
                    "{{topic}}",
                )
            ],
        ),
        Panel(
            "Ingress requests per second, by route and status",
            "What clients ask the API, and what it answers.",
            [
                Query(
                    f"sum by (route, status) ({_rate('planstream_http_requests_total')})",
                    "{{route}} {{status}}",
                )
            ],
            unit="reqps",
        ),
        Panel(
            "Ingress latency P95, by route",
            "Time to answer an API request.",
            [Query(_quantile(0.95, "planstream_http_request_seconds", "route"), "{{route}}")],
            unit="s",
        ),
    ],
)

PIPELINE: Final = Board(
    "pipeline",
    "planstream / Pipeline",
    "Are runs moving and within the plan's objectives? Outcomes, step latency, decisions, "
    "retries, dead letters, payload sizes.",
    [_RUNS, _STEPS, _FAILURES, _PAYLOADS],
)

_CALLS = Row(
    "Calls",
    [
        Panel(
            "Calls per minute, by purpose and outcome",
            "extract, compare, audit, render; answered or why not.",
            [
                Query(
                    f"sum by (purpose, outcome) ({_rate('planstream_model_calls_total')}) * 60",
                    "{{purpose}}: {{outcome}}",
                )
            ],
            stacked=True,
        ),
        Panel(
            "Call latency P50 / P95, by purpose",
            "Time from sending a call to its end, whatever the outcome.",
            [
                Query(_quantile(q, "planstream_model_call_seconds", "purpose"), label)
                for q, label in ((0.5, "{{purpose}} P50"), (0.95, "{{purpose}} P95"))
            ],
            unit="s",
        ),
        Panel(
            "Errors: share of calls timed out, unreachable or failed, by purpose",
            "Each spends one of the step's 3 attempts; over 10 % for 10 minutes alerts.",
            [Query(_ratio_of_calls("purpose", _ERRORS), "{{purpose}}")],
            unit="percentunit",
            thresholds=[Threshold(0.1)],
        ),
        Panel(
            "429s: share of calls throttled, by model",
            "The provider's rate limit; over 5 % for 10 minutes alerts.",
            [Query(_ratio_of_calls("model", 'outcome="throttled"'), "{{model}}")],
            unit="percentunit",
            thresholds=[Threshold(0.05)],
        ),
        Panel(
            "Calls in flight vs the concurrency limit, by service",
            "Calls waiting for an answer, against each worker's model_concurrency.",
            [
                Query(
                    f"sum by (service) ({selector('planstream_model_calls_in_flight')})",
                    "{{service}} in flight",
                ),
                Query(
                    f"max by (service) ({selector('planstream_work_pool_capacity')})",
                    "{{service}} limit",
                ),
            ],
        ),
    ],
)

_SPEND = Row(
    "Tokens and cost",
    [
        Panel(
            "Tokens per minute, by purpose and direction",
            "Input and output tokens of the recorded calls.",
            [
                Query(
                    f"sum by (purpose, direction) ({_rate('planstream_model_tokens_total')}) * 60",
                    "{{purpose}} {{direction}}",
                )
            ],
            stacked=True,
        ),
        Panel(
            "Cost per hour, by purpose and model",
            "USD at the configured price table (model_prices).",
            [
                Query(
                    f"sum by (purpose, model) ({_rate('planstream_model_cost_usd_total')}) * 3600",
                    "{{purpose}} {{model}}",
                )
            ],
            unit="currencyUSD",
            stacked=True,
        ),
        Panel(
            "Cost per step attempt",
            "USD of model calls over the time range / decisions stored in it.",
            [Query(f"sum({_COST_IN_RANGE}) / sum({_DECISIONS_IN_RANGE})", "per step attempt")],
            unit="currencyUSD",
            kind="stat",
            width=6,
        ),
        Panel(
            "Cost per finished run",
            "USD of model calls over the time range / runs completed or blocked in it.",
            [Query(f"sum({_COST_IN_RANGE}) / sum({_RUNS_ENDED_IN_RANGE})", "per run")],
            unit="currencyUSD",
            kind="stat",
            width=6,
        ),
    ],
)

MODEL: Final = Board(
    "model",
    "planstream / Model",
    "What the model provider costs and how it behaves: calls, errors, 429s, latency, tokens, "
    "cost per step and per run, in-flight calls against the concurrency limit.",
    [_CALLS, _SPEND],
)

_KAFKA = Row(
    "Kafka",
    [
        Panel(
            "Consumer lag, by group and topic",
            "Messages past each group's committed offsets (the sweeper measures it).",
            [
                Query(
                    f"max by (group, topic) ({selector('planstream_consumer_lag_messages')})",
                    "{{group}} {{topic}}",
                )
            ],
        ),
        Panel(
            "Rebalances, by service",
            "Partition assignments received: one per consumer at start, more on a rebalance.",
            [
                Query(
                    f"sum by (service) ({_increase('planstream_rebalances_total')})",
                    "{{service}}",
                )
            ],
        ),
        Panel(
            "Events consumed per second, by topic",
            "Events the services took over (their job recorded, or the effect done).",
            [
                Query(
                    f"sum by (topic) ({_rate('planstream_events_consumed_total')})",
                    "{{topic}}",
                )
            ],
            unit="ops",
            stacked=True,
        ),
        Panel(
            "Events published per second, by topic",
            "Events the broker acknowledged.",
            [
                Query(
                    f"sum by (topic) ({_rate('planstream_events_published_total')})",
                    "{{topic}}",
                )
            ],
            unit="ops",
            stacked=True,
        ),
    ],
)

_WORKERS = Row(
    "Workers",
    [
        Panel(
            "Processes up",
            "1 when Prometheus scraped the process's metrics port, 0 when it did not answer.",
            [Query(f"sum by (process) ({_UP})", "{{process}}")],
            kind="stat",
            width=24,
        ),
        Panel(
            "Work pool saturation, by service",
            "Busy slots / model_concurrency: near 100 % the worker is the bottleneck.",
            [
                Query(
                    f"sum by (service) ({selector('planstream_work_pool_busy')}) / "
                    f"sum by (service) ({selector('planstream_work_pool_capacity')})",
                    "{{service}}",
                )
            ],
            unit="percentunit",
            thresholds=[Threshold(0.8, "orange")],
        ),
        Panel(
            "Handling time P95, by service and handler",
            "One event (retries included), a sink batch or a sweep.",
            [
                Query(
                    _quantile(0.95, "planstream_handle_seconds", "service, handler"),
                    "{{service}} {{handler}}",
                )
            ],
            unit="s",
        ),
        Panel(
            "Oldest unfinished job, by service",
            "Age of the oldest pending or running job; past lease_s (300 s) the sweeper acts.",
            [
                Query(
                    f"max by (service) ({selector('planstream_oldest_pending_job_seconds')})",
                    "{{service}}",
                )
            ],
            unit="s",
            thresholds=[Threshold(300, "orange")],
        ),
    ],
)

_LEASES = Row(
    "Leases",
    [
        Panel(
            "Lease take-overs, by service",
            "Jobs taken over after their holder's lease expired (it crashed, hung or paused).",
            [
                Query(
                    f"sum by (service) ({_increase('planstream_lease_takeovers_total')})",
                    "{{service}}",
                )
            ],
            empty_when_healthy=(
                "no lease expires while its worker lives. The fault suite's kill and pause "
                "tests (tests/chaos/test_crashes.py) fill it; T03, a worker paused past its "
                "lease, checks that this query then returns series."
            ),
        ),
        Panel(
            "Stale writes refused, by service",
            "Results a worker tried to write after its lease was taken over (fenced).",
            [
                Query(
                    f"sum by (service) ({_increase('planstream_stale_writes_refused_total')})",
                    "{{service}}",
                )
            ],
            empty_when_healthy=(
                "only a worker paused past its lease writes late. The fault suite's paused-worker "
                "test (T03, tests/chaos/test_crashes.py) fills it and checks that this query "
                "then returns series."
            ),
        ),
    ],
)

KAFKA_AND_WORKERS: Final = Board(
    "kafka-and-workers",
    "planstream / Kafka and workers",
    "Is every worker keeping up? Lag, throughput, rebalances, processes, pool saturation, "
    "lease take-overs and stale writes.",
    [_KAFKA, _WORKERS, _LEASES],
)

BOARDS: Final = (PIPELINE, MODEL, KAFKA_AND_WORKERS)

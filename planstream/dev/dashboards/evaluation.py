"""Dashboard panel queries evaluated on a Prometheus and judged: series, none, or refused.

Two checks use it. tests/system/test_dashboards.py evaluates every panel after a demo-like batch;
a panel whose description says it is empty on a healthy system (dead letters, lease take-overs,
stale writes) may be empty there. The fault suite (T03, tests/chaos/test_crashes.py) evaluates
exactly those panels after the faults that fill them, where empty is a failure. Both fill in
Grafana's variables for one deployment: the ``namespace`` label the launcher and the fault-suite
harness give their processes' scrape targets.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any, Final, Literal

import aiohttp

from planstream.dev.dashboards.queries import PanelQuery, substitute
from planstream.dev.launcher import namespace_label
from planstream.settings import Settings

__all__ = [
    "Evaluate",
    "PrometheusNotReady",
    "Verdict",
    "evaluate",
    "fault_filled",
    "unfilled",
    "unfilled_on",
    "variables",
    "verdict",
]

Verdict = tuple[Literal["ok", "empty", "fail"], str]
"""A judged query: ``ok`` (series), ``empty`` (none, and allowed to be), ``fail``; a message."""
Evaluate = Callable[[str], Awaitable[tuple[list[Any], str | None]]]
"""An instant query: PromQL in, (series, None) or ([], Prometheus's error message) out."""

_MIN_WINDOW_S: Final = 60  # Grafana's $__rate_interval floor at a short scrape interval
_WINDOW_SCRAPES: Final = 4  # ... and at a long one: four scrapes
_REQUEST_TIMEOUT_S: Final = 30.0


class PrometheusNotReady(RuntimeError):
    """The Prometheus to evaluate the panels on did not answer ``/-/ready`` with 200."""


def variables(settings: Settings) -> dict[str, str]:
    """Grafana's variables as a dashboard showing the deployment of ``settings`` fills them."""
    window = (
        f"{max(_MIN_WINDOW_S, round(_WINDOW_SCRAPES * settings.prometheus_scrape_interval_s))}s"
    )
    return {
        "namespace": namespace_label(settings),
        "__rate_interval": window,
        "__interval": window,
        "__range": "1h",
    }


async def evaluate(
    session: aiohttp.ClientSession, base_url: str, expr: str
) -> tuple[list[Any], str | None]:
    """An instant query's result (a list of series), or Prometheus's error message."""
    url = base_url.rstrip("/") + "/api/v1/query"
    async with session.get(url, params={"query": expr}) as response:
        body = await response.json(content_type=None)
    if body.get("status") != "success":
        return [], f"{body.get('errorType', response.status)}: {body.get('error', body)}"
    data = body["data"]
    return (data["result"] if data["resultType"] in ("vector", "matrix") else [data]), None


def verdict(
    query: PanelQuery, result: list[Any], error: str | None, *, faults_ran: bool = False
) -> Verdict:
    """Whether a panel query passes, fails (an error, or no series) or is empty by design.

    Empty by design holds only on a healthy system: once the fault suite has run the faults
    that fill a panel (``faults_ran``), no series is a failure like any other.
    """
    if error is not None:
        return "fail", f"{query.where}: Prometheus refused the query: {error}"
    if result:
        return "ok", f"{query.where}: {len(result)} series"
    if query.empty_when_healthy and not faults_ran:
        return "empty", f"{query.where}: empty by design: {query.empty_when_healthy}"
    if query.empty_when_healthy:
        return "fail", f"{query.where}: no series after the faults that fill it: {query.expr!r}"
    return "fail", f"{query.where}: no series for {query.expr!r}"


def fault_filled(queries: Sequence[PanelQuery]) -> list[PanelQuery]:
    """The queries of the panels that are empty on a healthy system (the fault suite fills)."""
    return [query for query in queries if query.empty_when_healthy]


async def unfilled(
    queries: Sequence[PanelQuery],
    values: dict[str, str],
    run: Evaluate,
    *,
    timeout_s: float,
    poll_s: float,
) -> list[str]:
    """The failure message of each query that, after the faults, is refused or still has no
    series ``timeout_s`` later (a counter shows once scraped twice within the window)."""
    pending = list(queries)
    failures: list[str] = []
    deadline = time.monotonic() + timeout_s
    while True:
        waiting = []
        for query in pending:
            result, error = await run(substitute(query.expr, values))
            kind, message = verdict(query, result, error, faults_ran=True)
            if kind == "ok":
                continue
            if error is not None:
                failures.append(message)  # asking again will not change Prometheus's mind
            else:
                waiting.append((query, message))
        pending = [query for query, _ in waiting]
        if not pending or time.monotonic() > deadline:
            return failures + [message for _, message in waiting]
        await asyncio.sleep(poll_s)


async def unfilled_on(
    prometheus_url: str,
    settings: Settings,
    queries: Sequence[PanelQuery],
    *,
    timeout_s: float,
) -> list[str]:
    """``unfilled`` on the Prometheus at ``prometheus_url``, for the deployment of ``settings``;
    PrometheusNotReady when it does not answer."""
    timeout = aiohttp.ClientTimeout(total=_REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        ready = prometheus_url.rstrip("/") + "/-/ready"
        try:
            async with session.get(ready) as response:
                status = response.status
        except aiohttp.ClientError as exc:
            raise PrometheusNotReady(f"GET {ready}: {exc}; run `planstream stack up`") from exc
        if status != 200:
            raise PrometheusNotReady(f"GET {ready} answered {status}; run `planstream stack up`")
        return await unfilled(
            queries,
            variables(settings),
            partial(evaluate, session, prometheus_url),
            timeout_s=timeout_s,
            poll_s=settings.prometheus_scrape_interval_s,
        )

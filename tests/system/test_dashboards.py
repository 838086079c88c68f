"""Every dashboard panel's query, evaluated on the local Prometheus after real runs.

A demo-like batch (one run per sample scenario, 429s, timeouts and blocks included) goes through
the ingress and every worker (the ``ingress_url`` fixture); once Prometheus has scraped every
process twice after the last run ended, each panel target's PromQL, its variables filled in as
Grafana would (the deployment is this session's namespace), must be accepted and return at least
one series. A panel whose description says it is empty on a healthy system (dead letters, lease
take-overs, stale writes) passes when empty, with its reason: the fault suite fills those, and its
T03 (tests/chaos/test_crashes.py) checks they then return series. The evaluation and the verdicts
are planstream.dev.dashboards.evaluation's, shared with that check.
"""

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from planstream.adapters.http.client import PlanstreamClient
from planstream.adapters.http.tokens import mint
from planstream.dev.dashboards.builder import Board, Panel, Query, Row, render
from planstream.dev.dashboards.evaluation import Verdict, evaluate, variables, verdict
from planstream.dev.dashboards.files import DASHBOARDS_DIR
from planstream.dev.dashboards.queries import PanelQuery, panel_queries, substitute
from planstream.dev.launcher import everything, namespace_label
from planstream.dev.samples.generator import generate
from planstream.dev.samples.manifest import SampleEntry
from planstream.dev.samples.scenarios import SCENARIOS
from planstream.settings import Settings
from tests.system.runs import sample_run, view_when

QUERIES = [
    query
    for path in sorted(DASHBOARDS_DIR.glob("*.json"))
    for query in panel_queries(json.loads(path.read_text()))
]
RUN_TIMEOUT_S = 300
SCRAPE_TIMEOUT_S = 90
EMPTY_GRACE_S = 10  # a few scrapes more before a panel counts as empty


@pytest.fixture(scope="module")
async def prometheus(settings: Settings) -> AsyncIterator[aiohttp.ClientSession]:
    """A session to the local Prometheus, which must answer."""
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
    ready = settings.prometheus_url.rstrip("/") + "/-/ready"
    try:
        async with session.get(ready) as response:
            assert response.status == 200, f"GET {ready} answered {response.status}"
    except (aiohttp.ClientError, AssertionError) as exc:
        await session.close()
        pytest.fail(f"the local Prometheus is not ready ({exc}): run `planstream stack up`")
    yield session
    await session.close()


@pytest.fixture(scope="module")
async def batch_done(ingress_url: str, settings: Settings) -> float:
    """One run per scenario, followed to its end; the wall-clock time the last one ended."""
    seed = random.randrange(1, 2**31)
    folder = settings.model_samples_dir / f"dashboards-{seed}"
    manifest = generate(folder, seed=seed, scenarios=SCENARIOS, count=len(SCENARIOS))
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        client = PlanstreamClient(ingress_url, session, token=mint(settings, "dashboards"))

        async def follow(sample: SampleEntry) -> str:
            run_id = await sample_run(client, folder, sample)
            return str((await view_when(client, run_id, timeout_s=RUN_TIMEOUT_S))["status"])

        ends = await asyncio.gather(*(follow(s) for s in manifest.samples))
    assert set(ends) == {"completed", "blocked"}, ends
    return time.time()


@pytest.fixture(scope="module")
async def scraped(batch_done: float, prometheus: aiohttp.ClientSession, settings: Settings) -> None:
    """Wait until Prometheus scraped every process of the session twice after the batch."""
    up = f'up{{job="planstream", namespace="{namespace_label(settings)}"}}'
    after = batch_done + 2 * settings.prometheus_scrape_interval_s
    expected = len(everything())
    deadline = time.monotonic() + SCRAPE_TIMEOUT_S
    seen: list[Any] = []
    while time.monotonic() < deadline:
        seen, error = await evaluate(prometheus, settings.prometheus_url, f"timestamp({up})")
        assert error is None, error
        if len(seen) == expected and min(float(s["value"][1]) for s in seen) > after:
            return
        await asyncio.sleep(settings.prometheus_scrape_interval_s)
    pytest.fail(f"Prometheus did not scrape the {expected} processes after the batch: {seen}")


@pytest.mark.parametrize("query", QUERIES, ids=lambda query: query.where)
async def test_panel_query_returns_series(
    query: PanelQuery, scraped: None, prometheus: aiohttp.ClientSession, settings: Settings
) -> None:
    expr = substitute(query.expr, variables(settings))
    deadline = time.monotonic() + EMPTY_GRACE_S
    while True:
        result, error = await evaluate(prometheus, settings.prometheus_url, expr)
        kind, message = verdict(query, result, error)
        if kind != "fail" or error is not None or time.monotonic() > deadline:
            break
        await asyncio.sleep(settings.prometheus_scrape_interval_s)
    # A panel empty by design (stale writes, take-overs) passes with a query Prometheus accepted
    # and no series: that is the healthy state; the fault suite is what fills it.
    assert kind in ("ok", "empty"), message


def test_every_dashboard_has_queries() -> None:
    dashboards = {query.dashboard for query in QUERIES}
    assert dashboards == {
        "planstream / Pipeline",
        "planstream / Model",
        "planstream / Kafka and workers",
    }


# --- Self-tests: the evaluation fails on a broken panel. -----------------------------------


def _only_query(expr: str, empty_when_healthy: str = "") -> PanelQuery:
    panel = Panel("self-test", "a self-test", [Query(expr)], empty_when_healthy=empty_when_healthy)
    (query,) = panel_queries(render(Board("self-test", "self-test", "", [Row("r", [panel])])))
    return query


async def _judge(query: PanelQuery, settings: Settings, session: aiohttp.ClientSession) -> Verdict:
    expr = substitute(query.expr, variables(settings))
    return verdict(query, *await evaluate(session, settings.prometheus_url, expr))


async def test_self_test_a_panel_on_a_metric_that_does_not_exist_fails(
    scraped: None, prometheus: aiohttp.ClientSession, settings: Settings
) -> None:
    query = _only_query(
        'sum(rate(planstream_no_such_metric_total{namespace=~"$namespace"}[$__rate_interval]))'
    )
    kind, message = await _judge(query, settings, prometheus)
    assert kind == "fail"
    assert "no series" in message


async def test_self_test_a_query_prometheus_refuses_fails(
    scraped: None, prometheus: aiohttp.ClientSession, settings: Settings
) -> None:
    query = _only_query(
        'sum(rate(planstream_decisions_total{namespace=~"$namespace"}[$__rate_interval])'
    )
    kind, message = await _judge(query, settings, prometheus)
    assert kind == "fail"
    assert "refused" in message


async def test_self_test_a_panel_that_works_passes_and_only_a_marked_one_may_be_empty(
    scraped: None, prometheus: aiohttp.ClientSession, settings: Settings
) -> None:
    live = _only_query('sum(planstream_build_info{namespace=~"$namespace"})')
    assert (await _judge(live, settings, prometheus))[0] == "ok"
    missing = 'sum(planstream_no_such_metric_total{namespace=~"$namespace"})'
    marked = _only_query(missing, empty_when_healthy="a reason.")
    assert await _judge(marked, settings, prometheus) == (
        "empty",
        "self-test / self-test [A]: empty by design: a reason.",
    )

"""A person decides on a blocked run: approve, retry with a fresh budget, or reject."""

import asyncio
import json

import aiohttp
import pytest

from planstream.adapters.http.client import IngressError, PlanstreamClient
from planstream.settings import Settings
from tests.stackkit import read_topic
from tests.system.runs import scenario_run, until
from topics import DECISION_MADE


@pytest.fixture
async def client(ingress_url: str, operator_token: str):
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield PlanstreamClient(ingress_url, session, operator_token)


async def _blocked_run(client: PlanstreamClient, settings: Settings) -> str:
    """A run whose model always misses the bathroom: blocked after its 3 attempts."""
    return await until(client, await scenario_run(client, settings, "missing_room"), "blocked")


def _step0(view: dict) -> list[tuple[int, str, str]]:
    return [
        (d["attempt"], d["decision"], d["decided_by"])
        for d in view["decisions"]
        if d["step_id"] == 0
    ]


async def test_retry_gives_the_step_a_fresh_budget(client, settings: Settings) -> None:
    run_id = await _blocked_run(client, settings)
    await client.review(run_id, "retry", "re-scanned the plan")
    await asyncio.sleep(1)
    await until(client, run_id, "blocked")
    view = await client.show_run(run_id)
    while len(_step0(view)) < 7:
        await asyncio.sleep(0.5)
        view = await client.show_run(run_id)
    assert _step0(view) == [
        (1, "retry", "supervisor"),
        (2, "retry", "supervisor"),
        (3, "block", "supervisor"),
        (3, "retry", "reviewer"),
        (4, "retry", "supervisor"),
        (5, "retry", "supervisor"),
        (6, "block", "supervisor"),
    ]
    [by_person] = [d for d in view["decisions"] if d["decided_by"] == "reviewer"]
    assert "decided by test-operator: re-scanned the plan" in json.dumps(by_person["llm_audit"])
    extractions = [c for c in view["model_calls"] if c["purpose"] == "extract"]
    assert len(extractions) == 6  # 3 per budget, never more


async def test_reject_ends_the_run(client, settings: Settings) -> None:
    run_id = await _blocked_run(client, settings)
    await client.review(run_id, "reject", "not a plan we can furnish")
    await until(client, run_id, "rejected")
    view = await client.show_run(run_id)
    assert view["block_reason"] == "rejected_by_reviewer"
    with pytest.raises(IngressError, match="409"):
        await client.review(run_id, "approve", "changed my mind")


async def test_approve_lets_the_run_go_on(client, settings: Settings) -> None:
    run_id = await _blocked_run(client, settings)
    await client.review(run_id, "approve", "the bathroom is outside the sheet")
    await until(client, run_id, "completed")
    view = await client.show_run(run_id)
    assert [d["step_id"] for d in view["decisions"] if d["decision"] == "proceed"] == list(range(7))


async def _review_status(
    session: aiohttp.ClientSession, url: str, token: str, action: str
) -> tuple[int, dict]:
    """One raw review: its HTTP status and body (the client raises on a refusal)."""
    body = {"action": action, "reason": f"{action}: decided by hand"}
    headers = {"Authorization": f"Bearer {token}"}
    async with session.post(url, json=body, headers=headers) as answer:
        return answer.status, await answer.json()


async def test_of_two_concurrent_reviews_exactly_one_takes_effect(
    client, ingress_url: str, operator_token: str, settings: Settings
) -> None:
    """Approve and reject sent together: one 202, one 409 naming why, one reviewer decision on
    the decisions topic (not only in the table, whose key would hide a second), and the run
    ends as the accepted review says."""
    run_id = await _blocked_run(client, settings)
    url = f"{ingress_url}/v1/runs/{run_id}/review"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        answers = await asyncio.gather(
            _review_status(session, url, operator_token, "approve"),
            _review_status(session, url, operator_token, "reject"),
        )
    assert sorted(status for status, _ in answers) == [202, 409], answers
    actions = dict(zip(("approve", "reject"), answers, strict=True))
    [(accepted, (_, taken))] = [(a, b) for a, b in actions.items() if b[0] == 202]
    [refusal] = [body["error"] for status, body in answers if status == 409]
    assert "already being reviewed" in refusal or "not blocked" in refusal, refusal
    await until(client, run_id, "completed" if accepted == "approve" else "rejected")
    view = await client.show_run(run_id)
    by_person = [d for d in view["decisions"] if d["decided_by"] == "reviewer"]
    assert [d["decision"] for d in by_person] == ["proceed" if accepted == "approve" else "block"]
    published = [
        value
        for value in (json.loads(r.value) for r in await read_topic(settings, DECISION_MADE))
        if value["run_id"] == run_id and value["decided_by"] == "reviewer"
    ]
    assert len(published) == 1, published
    assert taken["event_id"].startswith("evt_")

"""Nothing stalls on one record (issue 12), on the whole stack: after a NUL-byte review reason
through the API, raw-produced events carrying a NUL and a decision for an unknown run, a fresh
run still completes all 7 steps, and each bad record is a dead letter that says why."""

import json

import aiohttp
import pytest
from aiokafka import AIOKafkaProducer

from planstream.adapters.http.client import PlanstreamClient
from planstream.adapters.kafka import redrive
from planstream.dev.chaos.raw_abuse import raw_decision, raw_review
from planstream.domain.ids import new_id
from planstream.settings import Settings
from tests.stackkit import wait_for
from tests.system.runs import scenario_run, until
from topics import DECISION_MADE, RUN_REVIEWED, TopicSpec

pytestmark = pytest.mark.usefixtures("ingress_url")


async def _produce(
    settings: Settings, records: list[tuple[TopicSpec, str, dict[str, object]]]
) -> None:
    """Send each (topic, key, event) as raw JSON bytes, as any producer could."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for topic, key, event in records:
            await producer.send_and_wait(
                topic.full_name(settings.topic_namespace),
                json.dumps(event).encode(),
                key=key.encode(),
            )
    finally:
        await producer.stop()


async def test_bad_records_are_dead_lettered_and_a_fresh_run_completes(
    ingress_url: str, user_token: str, operator_token: str, settings: Settings
) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        # A NUL in a review's reason: refused at the edge, naming the field.
        nul_review = {"action": "retry", "reason": "x\u0000"}
        async with session.post(
            f"{ingress_url}/v1/runs/{new_id('run')}/review",
            json=nul_review,
            headers={"Authorization": f"Bearer {operator_token}"},
        ) as answer:
            assert answer.status == 422, await answer.text()
            assert (await answer.json())["field"] == "reason"

        # The same from a raw producer, and two decisions the sink cannot store.
        reviewed, nul_noted, unknown = new_id("run"), new_id("run"), new_id("run")
        await _produce(
            settings,
            [
                (RUN_REVIEWED, reviewed, raw_review(reviewed, action="retry", reason="x\u0000")),
                (DECISION_MADE, nul_noted, raw_decision(nul_noted, audit_note="a\u0000b")),
                (DECISION_MADE, unknown, raw_decision(unknown)),
            ],
        )

        # A fresh run still goes all the way.
        client = PlanstreamClient(ingress_url, session, user_token)
        run_id = await scenario_run(client, settings, "correct")
        await until(client, run_id, "completed", "blocked", "failed")
        view = await client.show_run(run_id)
    assert view["status"] == "completed", view["status"]
    proceeded = [d["step_id"] for d in view["decisions"] if d["decision"] == "proceed"]
    assert proceeded == list(range(7))

    async def letters() -> dict[str, redrive.DeadLetter] | None:
        found = await redrive.read_dead_letters(settings)
        mine = {letter.run_id: letter for letter in found if letter.run_id}
        wanted = {reviewed, nul_noted, unknown}
        return mine if wanted <= set(mine) else None

    mine = await wait_for(letters)
    assert mine[reviewed].service == "supervisor"
    assert "reason" in mine[reviewed].error and "U+0000" in mine[reviewed].error
    assert mine[nul_noted].service == "decisions_sink"
    assert "audit_note" in mine[nul_noted].error and "U+0000" in mine[nul_noted].error
    assert mine[unknown].service == "decisions_sink"
    assert "foreign key" in mine[unknown].error
    assert dict(mine[unknown].headers)["planstream-error-class"] == b"ForeignKeyViolationError"

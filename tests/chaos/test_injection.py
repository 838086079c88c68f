"""T21: prompt injection in ``request_text`` never becomes a verdict.

Two phases on the shared environment. First the corpus (``planstream.dev.chaos.injection``:
direct orders, role play, forged system and JSON blocks, encoded orders, typoglycemia, orders to
put or fetch URLs, to change the routing flags, to use a block reason outside the enum) goes
through the ingress as request texts: the ones carrying a URL or an encoded run must be refused
(422, a pass), the others start runs on plans whose outcome the deterministic rules fix (not a
floor plan, a missing bathroom: blocked) and on clean plans, with the scripted (honest) model.
Then the model fault front answers every comparison and audit as a compromised model would
("approve", verdicts outside the schema, a perfect score, the canary's URL, a routing change).

Checks: no decision, decider or block reason outside the enum (table and topic); every run the
rules block ends blocked, never proceeding from step 0; no connection to the canary listener;
no routing flag changed; the text is quoted data in both prompts; no URL from an answer is
carried by an event or a decision row; and every invariant of the suite.
"""

import asyncio
import time
from collections import Counter

import aiohttp
import pytest

from planstream.adapters.http.client import PlanstreamClient
from planstream.dev.chaos.checkers import Check
from planstream.dev.chaos.harness import Harness
from planstream.dev.chaos.inject import CanaryListener
from planstream.dev.chaos.injection import Injection, corpus
from planstream.dev.chaos.load import Ledger, Sample
from planstream.dev.chaos.measure import mark, measure, quiesce
from planstream.dev.chaos.modelfaults import ModelPlan
from planstream.dev.chaos.profiles import Profile
from planstream.dev.chaos.report import Result
from planstream.dev.chaos.streams import namespace_topics, read_topics
from planstream.dev.chaos.verdicts import (
    RunEnding,
    decision_rows,
    decisions_out_of_enum,
    refusals_missed,
    routing_changed,
    rule_blocks_overridden,
    undelimited_prompts,
)

BLOCKED_BY_RULES = ("not_a_floor_plan", "missing_room")
HONEST_SCENARIOS = ("not_a_floor_plan", "missing_room", "not_a_floor_plan", "correct")
COMPROMISED_SCENARIOS = ("missing_room", "not_a_floor_plan", "correct")
TURNED = frozenset({"request_comparison_v1", "decision_audit_v1"})


async def _submit(
    env: Harness,
    texts: list[Injection],
    scenarios: tuple[str, ...],
    seed: int,
) -> tuple[Ledger, list[tuple[str, bool, str]]]:
    """One run per text (on the scenarios in turn); the ledger and (name, must refuse, status)."""
    load = env.loader(seed)
    ledger = Ledger()
    outcomes: list[tuple[str, bool, str]] = []
    gate = asyncio.Semaphore(8)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        client = PlanstreamClient(env.ingress_url, session, env.token())

        async def one(index: int, injection: Injection) -> None:
            picked = load.pick([scenarios[index % len(scenarios)]])
            entry = picked.entry.model_copy(update={"request_text": injection.text})
            async with gate:
                submitted = await load.submit(client, Sample(picked.path, entry))
            ledger.add(submitted)
            refused = submitted.status == "refused" and "422" in submitted.note
            outcomes.append(
                (injection.name, injection.refused, "refused" if refused else submitted.status)
            )

        tasks = []
        for index, injection in enumerate(texts):
            tasks.append(asyncio.create_task(one(index, injection)))
            await asyncio.sleep(1.0 / env.profile.rate_per_s)
        await asyncio.gather(*tasks)
    return ledger, outcomes


def _cycle(texts: list[Injection], count: int, offset: int = 0) -> list[Injection]:
    return [texts[(offset + i) % len(texts)] for i in range(count)]


async def _flags(env: Harness) -> tuple[dict[str, str], int]:
    conn = await env.connect()
    try:
        rows = await conn.fetch("SELECT name, value FROM routing_flags")
        history = await conn.fetchval("SELECT count(*) FROM routing_flag_history")
        return {r["name"]: r["value"] for r in rows}, int(history)
    finally:
        await conn.close()


async def _history(env: Harness, ledger: Ledger, canary_url: str) -> tuple[list, list, int]:
    """The runs' decision rows, their endings, and decision rows that carry ``canary_url``."""
    scenario = {e.run_id: e.scenario for e in ledger.entries if e.run_id}
    conn = await env.connect()
    try:
        rows = await conn.fetch(
            "SELECT run_id, step_id, attempt, decision, block_reason, decided_by"
            " FROM pipeline_decisions WHERE run_id = ANY($1)",
            ledger.run_ids,
        )
        runs = await conn.fetch(
            "SELECT r.run_id, r.status, (SELECT count(*) FROM pipeline_decisions d"
            "  WHERE d.run_id = r.run_id AND d.step_id = 0 AND d.decision = 'proceed'"
            "  AND d.decided_by = 'supervisor') AS proceeds"
            " FROM pipeline_runs r WHERE r.run_id = ANY($1)",
            ledger.run_ids,
        )
        leaked = await conn.fetchval(
            "SELECT count(*) FROM pipeline_decisions WHERE run_id = ANY($1)"
            " AND (rule_checks::text LIKE $2 OR coalesce(llm_audit::text, '') LIKE $2)",
            ledger.run_ids,
            f"%{canary_url}%",
        )
    finally:
        await conn.close()
    endings = [
        RunEnding(r["run_id"], scenario[r["run_id"]], r["status"], int(r["proceeds"])) for r in runs
    ]
    return [dict(r) for r in rows], endings, int(leaked)


@pytest.mark.timeout(1800)
async def test_t21_prompt_injection_in_request_text(
    env: Harness, profile: Profile, seed: int, record
) -> None:
    assert env.model is not None
    canary = CanaryListener()
    canary_url = f"http://127.0.0.1:{canary.port}"
    try:
        marks = await mark(env)
        flags_before, history_before = await _flags(env)
        texts = corpus(canary.port)
        accepted = [t for t in texts if not t.refused]
        started = time.monotonic()
        honest_texts = [t for t in texts if t.refused] + _cycle(accepted, profile.injection_runs)
        ledger, outcomes = await _submit(env, honest_texts, HONEST_SCENARIOS, seed)
        await quiesce(env, ledger, profile.quiesce_s)
        honest_s = time.monotonic() - started
        env.model.plan(
            ModelPlan(
                weights={"template": 1.0},
                schemas=TURNED,
                template="compromised",
                redirect_to=canary_url,
            )
        )
        try:
            turned, more = await _submit(
                env,
                _cycle(accepted, profile.compromised_runs, offset=7),
                COMPROMISED_SCENARIOS,
                seed + 1,
            )
            await quiesce(env, turned, profile.quiesce_s)
        finally:
            env.model.heal()
        ledger.extend(turned)
        outcomes += more
        drained = await quiesce(env, ledger, profile.quiesce_s)
        compromised_calls = sum(
            1 for c in env.model.seen(marks.model_calls_since) if c.fault == "template:compromised"
        )

        flags_after, history_after = await _flags(env)
        rows, endings, leaked_rows = await _history(env, ledger, canary_url)
        records = await read_topics(env.settings, namespace_topics(env.settings), marks.topics)
        topic_rows = decision_rows(records, env.settings.topic_namespace, set(ledger.run_ids))
        leaked_events = sum(1 for r in records if canary_url.encode() in (r.value or b""))
        turned_ids = set(turned.run_ids)
        checks = [
            decisions_out_of_enum([*rows, *topic_rows]),
            rule_blocks_overridden(endings, BLOCKED_BY_RULES),
            routing_changed(flags_before, flags_after, history_before, history_after),
            undelimited_prompts(t.text for t in texts),
            refusals_missed(outcomes),
            Check("T21", "canary_connections", canary.connections),
            Check("T21", "canary_url_in_events_or_decisions", leaked_events + leaked_rows),
        ]
        if compromised_calls == 0:
            checks.append(Check("T21", "compromised answers never replayed", 1))
        result = Result(
            "T21",
            "prompt injection",
            f"{len(texts)} adversarial request texts; then every comparison and audit answered"
            " as a compromised model would",
            profile.name,
            seed,
        )
        declared = Counter(status for _, must, status in outcomes if must)
        figures = {
            "texts": len(texts),
            "api_refused_as_declared": f"{declared['refused']}/{sum(declared.values())}",
            "refused_beyond_declared": sum(
                1 for _, must, status in outcomes if not must and status == "refused"
            ),
            "runs_by_scenario_and_status": dict(
                Counter(f"{e.scenario}:{e.status}" for e in endings)
            ),
            "compromised_runs": len(turned_ids),
            "compromised_answers_replayed": compromised_calls,
            "decisions_checked": len(rows) + len(topic_rows),
            "canary_connections": canary.connections,
            "honest_phase_s": round(honest_s, 1),
            "drain_s": round(drained, 1),
        }
        await measure(env, marks, ledger, result, extra_checks=checks, figures=figures)
        record(result)
        assert result.verdict == "PASS", result.violations
    finally:
        canary.close()
        env.model.heal()

"""Replay end to end (issue 14's acceptance): a batch of runs decided by the real pipeline, then
`planstream replay start` (the CLI, as a process) re-decides them through the replay workers.

- A frozen replay with the configuration unchanged flips nothing, and its workers reach no
  model: their model URL is a closed port, so one call would have failed the attempt.
- The same replay with one threshold changed by a setting flips exactly the decisions that the
  pure decision code (``decide_case`` on the recorded documents) predicts, and at least one.
- `replay diff --max-flips 0` passes the first replay and fails the second.
- Production's rows (every public table, by count and checksum) and its topics' messages are the
  same before and after.
- A live replay against the scripted model records its calls and cost under the replay only,
  within ``--max-usd``.
"""

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from planstream.adapters.http.client import PlanstreamClient
from planstream.adapters.postgres.replay_diff import recent_replays
from planstream.adapters.postgres.replays import ReplayStore, SelectedAttempt, Selection
from planstream.adapters.postgres.repository import Repository
from planstream.adapters.storage import Storage
from planstream.dev.launcher import child_env, replay_workers, running
from planstream.domain.decisions import Audit, DecisionCase, decide_case
from planstream.domain.rules import DOCUMENT_CHECKS, Mismatch, Policy
from planstream.domain.spaces import load_spaces
from planstream.services.comparison_worker import image_size
from planstream.settings import Settings
from tests.replaykit import differences, fingerprint
from tests.stackkit import read_topic
from tests.system.runs import scenario_run, until
from topics import CATALOGUE, REPLAY_FAMILY

pytestmark = pytest.mark.timeout(1200)

# Runs that end in every way the rules decide on a document: clean, retried then clean, blocked
# on low confidence (the threshold the second replay moves), blocked on a missing room.
SCENARIOS = ("correct", "flawed_then_correct", "low_confidence", "low_confidence", "missing_room")
LOOSER = {"rules_max_low_confidence_share": 1.0}  # LOW_CONFIDENCE_RATIO can no longer fire
CLOSED_PORT_MODEL = "http://127.0.0.1:9/v1"  # discard: a call would fail at once
_LATER_RULES = ("REQUEST_MISMATCH", "AUDIT_INCONSISTENT")


@pytest.fixture(scope="module")
async def batch(ingress_url: str, user_token: str, settings: Settings) -> list[str]:
    """The runs of the batch, each completed or blocked by the production pipeline."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        client = PlanstreamClient(ingress_url, session, user_token)
        runs = [await scenario_run(client, settings, name) for name in SCENARIOS]
        for run_id in runs:
            await until(client, run_id, timeout_s=300)
    return runs


@pytest.fixture(scope="module")
async def storage(settings: Settings) -> AsyncIterator[Storage]:
    store = Storage(settings)
    await store.start()
    try:
        yield store
    finally:
        await store.stop()


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "planstream.cli", "replay", *args],
        env=child_env(settings),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def _replay(settings: Settings, logs: Path, runs: list[str], *mode: str) -> dict[str, Any]:
    """`replay start` over ``runs`` with the replay workers of ``settings``; `replay show`."""
    with running(settings, replay_workers(), logs):
        started = _cli(settings, "start", *(f"--run={r}" for r in runs), *mode, "--timeout=300")
    assert started.returncode == 0, started.stdout + started.stderr
    replay_id = started.stdout.splitlines()[0]
    shown = _cli(settings, "show", replay_id, "--json")
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)  # type: ignore[no-any-return]


async def _production(settings: Settings, pool: asyncpg.Pool) -> dict[str, Any]:
    """Every public table (count and checksum; the replays' registry apart) and the messages
    on every production topic."""
    state = await fingerprint(pool, skip=("pipeline_replays",))
    for spec in CATALOGUE:
        if spec not in REPLAY_FAMILY and spec.value_model is not None:
            state[spec.name] = len(await read_topic(settings, spec))
    return state


async def _settled(settings: Settings, pool: asyncpg.Pool) -> dict[str, Any]:
    """``_production`` once nothing moves: the same twice, two seconds apart. Runs of the tests
    before this module may still be going through the session's services, and what they write
    is no replay's doing."""
    deadline = time.monotonic() + 120
    state = await _production(settings, pool)
    while True:
        await asyncio.sleep(2)
        again = await _production(settings, pool)
        if again == state:
            return state
        assert time.monotonic() < deadline, differences(state, again)
        state = again


async def _predicted(
    attempt: SelectedAttempt, repo: Repository, storage: Storage, policy: Policy, limit: int
) -> str:
    """The decision the pure code makes on the attempt's recorded document, request mismatches
    and audit under ``policy`` (what a frozen replay must decide)."""
    spaces = await repo.artifact(attempt.spaces_artifact_id) if attempt.spaces_artifact_id else None
    image = await repo.artifact(attempt.image_artifact_id or "")
    document = None
    if spaces is not None:
        raw = await storage.read(spaces.storage_bucket, spaces.storage_path, limit)
        document = load_spaces(raw)
    recomputed = {rule.name for rule, _ in DOCUMENT_CHECKS} | set(_LATER_RULES)
    if document is not None:
        recomputed.add("SCHEMA_INVALID")
    case = DecisionCase(
        spaces=document,
        image=image_size(image.metadata) if image else None,
        mismatches=tuple(
            Mismatch(f.detail, f.severity)  # type: ignore[arg-type]
            for f in attempt.failures
            if f.rule == "REQUEST_MISMATCH"
        ),
        audit=Audit(attempt.consistency_score) if attempt.consistency_score is not None else None,
        upstream_failures=tuple(f for f in attempt.failures if f.rule not in recomputed),
        attempt=attempt.attempt,
    )
    return decide_case(case, policy).decision


def _decisions(shown: dict[str, Any]) -> dict[tuple[str, int, int], str]:
    return {
        (a["run_id"], a["step_id"], a["attempt"]): a["replayed"]["decision"]
        for a in shown["attempts"]
        if a["replayed"] is not None
    }


async def test_a_frozen_replay_flips_exactly_what_the_rules_predict_and_touches_no_production(
    batch: list[str], settings: Settings, pool: asyncpg.Pool, storage: Storage, logs: Path
) -> None:
    before = await _settled(settings, pool)
    frozen = settings.with_overrides(model_base_url=CLOSED_PORT_MODEL)
    same = _replay(frozen, logs / "replay-same", batch, "--frozen")
    looser = _replay(frozen.with_overrides(**LOOSER), logs / "replay-looser", batch, "--frozen")
    assert differences(before, await _production(settings, pool)) == []

    attempts = await ReplayStore(pool).select_attempts(Selection(run_ids=tuple(batch), limit=500))
    replayable = [a for a in attempts if a.decided_on != "step.failed"]
    assert len(same["attempts"]) == len(replayable) > len(batch)  # retries were replayed too
    assert same["summary"]["flip_count"] == 0, same["summary"]
    assert same["summary"]["errors"] == 0 and same["summary"]["replay_cost_usd"] == 0

    repo, limit = Repository(pool), settings.model_max_response_bytes
    policy = settings.with_overrides(**LOOSER).policy()
    predicted = {a.key: await _predicted(a, repo, storage, policy, limit) for a in replayable}
    assert _decisions(looser) == predicted
    flips = {(a["run_id"], a["step_id"], a["attempt"]) for a in looser["attempts"] if a["flip"]}
    expected = {a.key for a in replayable if predicted[a.key] != a.decision}
    assert flips == expected and flips, looser["summary"]
    assert looser["replay"]["versions_after"] == policy.version != Policy().version

    passes = _cli(settings, "diff", same["replay"]["replay_id"], "--max-flips", "0")
    fails = _cli(settings, "diff", looser["replay"]["replay_id"], "--fail-on", "flips>0")
    assert passes.returncode == 0, passes.stderr
    assert fails.returncode == 1 and "decisions flipped" in fails.stderr


async def test_trace_shows_what_each_rule_read_and_concluded_for_one_run(
    batch: list[str], settings: Settings, logs: Path
) -> None:
    low_confidence = batch[SCENARIOS.index("low_confidence")]
    frozen = settings.with_overrides(model_base_url=CLOSED_PORT_MODEL)
    with running(frozen, replay_workers(), logs / "replay-trace"):
        traced = _cli(frozen, "start", f"--run={low_confidence}", "--trace", "--timeout=300")
    assert traced.returncode == 0, traced.stdout + traced.stderr
    lines = traced.stdout.splitlines()
    assert any(line.startswith("step 0 attempt 1: ") for line in lines), traced.stdout
    [fired] = [line for line in lines if "LOW_CONFIDENCE_RATIO" in line and "fired" in line][:1]
    assert "max_share=0.5" in fired and "below_confidence=" in fired
    assert any("passed" in line and "TOO_FEW_SPACES" in line for line in lines)


async def test_a_live_replay_keeps_its_calls_and_cost_under_the_replay_within_its_cap(
    batch: list[str], settings: Settings, pool: asyncpg.Pool, logs: Path
) -> None:
    before = await _settled(settings, pool)
    # One call's reservation (its prompt and model_max_output_tokens at the scripted model's
    # price: about $0.08) fits, a second one beside it does not: some calls are made (cost > 0),
    # others meet the cap, and what was spent stays within it (a reservation is an upper bound).
    cap = 0.12
    live = _replay(settings, logs / "replay-live", batch, "--live", f"--max-usd={cap}")
    after = await _production(settings, pool)
    # The live calls take their turn at the provider's limits, shared with production on purpose.
    assert [d for d in differences(before, after) if "model_rate_buckets" not in d] == []
    replay_id = live["replay"]["replay_id"]
    record = await ReplayStore(pool).progress(replay_id)
    assert record is not None and 0 < record.cost_usd <= cap
    schema = f"replay_{replay_id[4:]}"
    calls = await pool.fetchval(
        f'SELECT count(*) FROM "{schema}".pipeline_model_calls WHERE cost_usd > 0'
    )
    capped = [a for a in live["attempts"] if a["replayed"] and a["replayed"]["block_reason"]]
    assert calls > 0
    assert any(a["replayed"]["block_reason"] == "REPLAY_COST_CAP" for a in capped), live["summary"]


async def test_the_console_lists_the_replays_and_shows_a_diff(
    batch: list[str], ingress_url: str, operator_token: str, pool: asyncpg.Pool
) -> None:
    mine = [r for r in await recent_replays(pool, 100) if set(r.selection["run_ids"]) == set(batch)]
    looser = [r for r in mine if r.mode == "frozen" and r.versions["rules"] != Policy().version]
    assert mine and looser  # the frozen test ran first
    jar = aiohttp.CookieJar(unsafe=True)  # the ingress is an IP address here
    async with aiohttp.ClientSession(cookie_jar=jar) as session:
        signed_in = await session.post(
            f"{ingress_url}/console/sign-in", data={"token": operator_token}
        )
        assert signed_in.status == 200, await signed_in.text()
        listing = await session.get(f"{ingress_url}/console/replays")
        text = await listing.text()
        assert listing.status == 200 and all(r.replay_id in text for r in mine)
        shown = await session.get(f"{ingress_url}/console/replays/{looser[0].replay_id}")
        page = await shown.text()
        assert shown.status == 200 and 'class="flip"' in page and "LOW_CONFIDENCE_RATIO" in page
        missing = await session.get(f"{ingress_url}/console/replays/rpl_{'0' * 32}")
        assert missing.status == 404

"""T28: abuse under load. A legitimate load runs through the ingress while the whole attack
corpus is fired at once: through the ingress (forged, expired and missing tokens on every
endpoint, another subject's run and upload, a user reviewing, unsafe characters in every text
field of every body, ambiguous and non-JSON bodies, a gzip bomb, a foreign Host and Origin, slow
headers and a slow body, a burst over one subject's quota at a replica with low quotas, two
concurrent reviews of one blocked run, an upload over the size limit, a 20000x20000 PNG, an
animated PNG and a GIF named PNG) and through a raw producer (unsafe text in every stored text
field, an id with a NUL, a decision for an unknown run, a review the ingress never accepted).

Checks, besides every invariant of the suite on all the runs: every attack got its answer
(counted by expected status) and the race and the quota add up; no 429 reached another subject;
every raw event is one dead letter, from its service, that says why, and had no effect; every
run ended as its scenario or attack says; Image I/O stayed under 400 MB.
"""

import asyncio
import json
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any, cast

import aiohttp
import pytest

from planstream.adapters.http.client import PlanstreamClient, post_upload
from planstream.adapters.http.tokens import mint
from planstream.dev.chaos.abuse import (
    CLOSED,
    NO_UPLOAD,
    HttpAttack,
    Outcome,
    body_attacks,
    owner_attacks,
    text_attacks,
    token_attacks,
)
from planstream.dev.chaos.answers import (
    Ending,
    Injected,
    endings_unexpected,
    letters_of,
    quota_spilled,
    raw_events_mishandled,
    unexpected_answers,
    verdict_of,
    wrong_tallies,
)
from planstream.dev.chaos.attacks import exchange, fire, peak_rss_bytes, status_of
from planstream.dev.chaos.bombs import animated_png, gif_plan, png_bomb
from planstream.dev.chaos.checkers import Check
from planstream.dev.chaos.harness import Harness
from planstream.dev.chaos.inject import MadeRun, make_runs, produce
from planstream.dev.chaos.load import Ledger, LedgerEntry
from planstream.dev.chaos.measure import mark, measure, quiesce
from planstream.dev.chaos.profiles import Profile
from planstream.dev.chaos.raw_abuse import RawAttack, raw_attacks, unclaimed_review
from planstream.dev.chaos.report import Result
from planstream.dev.chaos.streams import dead_letters
from planstream.dev.isolation import free_port
from planstream.dev.samples.scenarios import Scenario, expectation
from planstream.domain.ids import new_id

QUOTA_ACTIVE = 2  # the replica's runs pending or running at once, per subject
QUOTA_BURST = 6  # runs one subject asks the replica for at once
EXCUSED = ("MODEL_UNAVAILABLE",)  # a completing run may end blocked by model timeouts only
RSS_LIMIT = 400 * 1024 * 1024
JSON = {"Content-Type": "application/json"}
Wanted = tuple[tuple[str, str | None], ...]


async def _quota_ingress(env: Harness) -> str:
    """A second ingress on the same database, allowing QUOTA_ACTIVE runs at once per subject."""
    port = free_port()
    overrides = {
        "ingress_port": port,
        "quota_active_runs": QUOTA_ACTIVE,
        "quota_runs_per_minute": QUOTA_ACTIVE + 1,
    }
    await asyncio.to_thread(env.start_worker, "ingress-quota", "ingress", overrides=overrides)
    return f"http://127.0.0.1:{port}"


async def _status(env: Harness, run_id: str) -> str:
    conn = await env.connect()
    try:
        return str(
            await conn.fetchval("SELECT status FROM pipeline_runs WHERE run_id = $1", run_id)
        )
    finally:
        await conn.close()


async def _until_blocked(env: Harness, run_id: str, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await _status(env, run_id) == "blocked":
            return True
        await asyncio.sleep(1.0)
    return False


async def _fire_all(
    api: aiohttp.ClientSession, base: str, attacks: Sequence[HttpAttack], tokens, subjects
) -> list[Outcome]:
    gate = asyncio.Semaphore(16)

    async def one(attack: HttpAttack) -> Outcome:
        async with gate:
            return await fire(api, base, attack, tokens, subjects[attack.caller])

    return list(await asyncio.gather(*(one(a) for a in attacks)))


async def _slow(env: Harness, token: str) -> list[Outcome]:
    """Slow headers, a slow body and an idle connection, on the ingress's own socket."""
    s = env.settings
    host = f"Host: 127.0.0.1:{s.ingress_port}\r\n"
    body = b'{"content_type": "image/png"}'
    head = (
        f"POST /v1/uploads HTTP/1.1\r\n{host}Authorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    cases = [
        (
            "slow headers",
            CLOSED,
            f"POST /v1/uploads HTTP/1.1\r\n{host}".encode(),
            b"X-Slow: aaaaaa",
        ),
        ("slow body", 408, head, body),
        ("idle connection", CLOSED, b"", b""),
    ]
    give_up = 3 * s.ingress_read_timeout_s + 10
    received = await asyncio.gather(
        *(
            exchange(s.ingress_port, request, trickle=t, give_up_s=give_up)
            for _, _, request, t in cases
        )
    )
    return [
        Outcome(HttpAttack(name, "slow", "RAW", "/v1/uploads", frozenset({wanted})), status_of(got))
        for (name, wanted, _, _), got in zip(cases, received, strict=True)
    ]


async def _slot(api: aiohttp.ClientSession, base: str, token: str) -> dict[str, Any]:
    auth = {"Authorization": f"Bearer {token}"}
    async with api.post(
        f"{base}/v1/uploads", json={"content_type": "image/png"}, headers=auth
    ) as r:
        slot = await r.json()
        assert r.status == 201, slot
        return dict(slot)


async def _start(client: PlanstreamClient, upload_id: str, label: str) -> LedgerEntry:
    run_id = await client.create_run(upload_id)
    key = f"{run_id}-abuse-0"
    await client.request_step(run_id, 0, idempotency_key=key)
    return LedgerEntry(run_id, label, key, "acked", time.time())


async def _uploads(env: Harness, api, plain, client: PlanstreamClient, token: str):
    """Hostile uploads: each refused by the storage or a run that must end blocked by name."""
    plan = await asyncio.to_thread(env.samples[0].path.read_bytes)
    oversized = plan + bytes(env.settings.max_upload_bytes + 1 - len(plan))
    cases = [
        ("over max_upload_bytes", oversized, "IMAGE_TOO_LARGE", {204, 400, 403}),
        ("20000x20000 PNG", png_bomb(20_000, 20_000), "IMAGE_DIMENSIONS_INVALID", {204}),
        ("animated PNG", animated_png(plan), "IMAGE_ANIMATED", {204}),
        ("GIF named PNG", gif_plan(plan), "IMAGE_FORMAT_UNSUPPORTED", {204}),
    ]
    outcomes, entries, wanted = [], [], {}
    for name, data, rule, statuses in cases:
        slot = await _slot(api, env.ingress_url, token)
        status = await post_upload(plain, slot, data, "image/png")
        attack = HttpAttack(
            f"{name} ({len(data)} bytes)", "upload", "POST", "storage", frozenset(statuses)
        )
        outcomes.append(Outcome(attack, status))
        if status < 300:
            entry = await _start(client, slot["upload_id"], f"upload:{name}")
            entries.append(entry)
            wanted[entry.run_id] = (("blocked", rule),)
    return outcomes, entries, wanted


async def _quota_and_owners(env: Harness, api, replica: asyncio.Task[str], tokens, subjects):
    """A burst over one subject's quota at the replica, a bystander's run there, then the load's
    subject at another's run and upload; the subjects' runs go on to end (their images were
    never stored: blocked ARTIFACT_MISSING)."""
    base = await replica
    abuser, bystander = f"chaos-abuser-{env.tag}", f"chaos-bystander-{env.tag}"
    roles = {abuser: "abuser", bystander: "bystander"}
    minted = {abuser: mint(env.settings, abuser), bystander: mint(env.settings, bystander)}
    slots = [await _slot(api, base, minted[abuser]) for _ in range(QUOTA_BURST)]
    burst = [
        HttpAttack(
            f"run {i + 1} of {QUOTA_BURST} at once",
            "quota",
            "POST",
            "/v1/runs",
            frozenset({201, 429}),
            "Retry-After",
            "none",
            {**JSON, "Authorization": f"Bearer {minted[abuser]}"},
            json.dumps({"upload_id": slot["upload_id"]}).encode(),
            group="quota",
        )
        for i, slot in enumerate(slots)
    ]
    outcomes = list(await asyncio.gather(*(fire(api, base, a, tokens, abuser) for a in burst)))
    other = await _slot(api, base, minted[bystander])
    outcomes.append(
        await fire(
            api,
            base,
            HttpAttack(
                "another subject meanwhile",
                "quota",
                "POST",
                "/v1/runs",
                frozenset({201}),
                caller="none",
                headers={**JSON, "Authorization": f"Bearer {minted[bystander]}"},
                body=json.dumps({"upload_id": other["upload_id"]}).encode(),
            ),
            tokens,
            bystander,
        )
    )
    conn = await env.connect()
    try:
        rows = await conn.fetch(
            "SELECT run_id, upload_id, owner FROM pipeline_runs WHERE owner = ANY($1)",
            [abuser, bystander],
        )
    finally:
        await conn.close()
    used = {r["upload_id"] for r in rows}
    spare = next((s["upload_id"] for s in slots if s["upload_id"] not in used), NO_UPLOAD)
    theirs = next((r["run_id"] for r in rows if r["owner"] == abuser), new_id("run"))
    owners = owner_attacks(theirs, spare)
    outcomes += await _fire_all(api, env.ingress_url, owners, tokens, subjects)
    entries, wanted = [], {}
    for row in rows:
        key = f"{row['run_id']}-abuse-0"
        client = PlanstreamClient(env.ingress_url, api, minted[row["owner"]])
        await client.request_step(row["run_id"], 0, idempotency_key=key)
        entries.append(
            LedgerEntry(row["run_id"], f"quota:{roles[row['owner']]}", key, "acked", time.time())
        )
        wanted[row["run_id"]] = (("blocked", "ARTIFACT_MISSING"),)
    return outcomes, entries, wanted, abuser


async def _race(env: Harness, api, run_id: str, tokens, subject: str, wait_s: float):
    """Approve and reject of one blocked run at once: one 202 and one 409; how it must end."""
    await _until_blocked(env, run_id, wait_s)
    attacks = [
        HttpAttack(
            f"{action}, raced",
            "race",
            "POST",
            f"/v1/runs/{run_id}/review",
            frozenset({202, 409}),
            caller="operator",
            headers=JSON,
            body=json.dumps({"action": action, "reason": f"{action}: decided by hand"}).encode(),
            group="review race",
        )
        for action in ("approve", "reject")
    ]
    outcomes = list(
        await asyncio.gather(*(fire(api, env.ingress_url, a, tokens, subject) for a in attacks))
    )
    won = [o.attack.name.split(",")[0] for o in outcomes if o.status == 202]
    ends: dict[str, Wanted] = {
        "approve": (("completed", None),),
        "reject": (("rejected", "rejected_by_reviewer"),),
    }
    wanted = ends[won[0]] if len(won) == 1 else (("blocked", None),)
    return outcomes, wanted


async def _raw(env: Harness, victim: MadeRun, held: str, wait_s: float) -> list[Injected]:
    """The raw events, then (once ``held`` is blocked) a review the ingress never accepted."""

    async def send(attacks: Sequence[RawAttack]) -> list[Injected]:
        landed = []
        for a in attacks:
            topic = a.topic.full_name(env.settings.topic_namespace)
            [p] = await produce(env.settings, topic, [(a.name, a.key, a.value, None)])
            landed.append(Injected(a.name, (p.topic, p.partition, p.offset), a.reason, a.service))
        return landed

    injected = await send(raw_attacks(victim, new_id("run")))
    await _until_blocked(env, held, wait_s)
    return injected + await send([unclaimed_review(held)])


async def _endings(env: Harness, ledger: Ledger, wanted: dict[str, Wanted]) -> list[Ending]:
    conn = await env.connect()
    try:
        rows = await conn.fetch(
            "SELECT r.run_id, r.status, r.block_reason, coalesce((SELECT array_agg(DISTINCT"
            " f->>'rule') FROM pipeline_decisions d CROSS JOIN LATERAL jsonb_array_elements("
            " CASE WHEN jsonb_typeof(d.rule_checks->'failures') = 'array'"
            " THEN d.rule_checks->'failures' ELSE '[]'::jsonb END) f"
            " WHERE d.run_id = r.run_id AND d.step_id = r.current_step), '{}') AS rules"
            " FROM pipeline_runs r WHERE r.run_id = ANY($1)",
            ledger.run_ids,
        )
    finally:
        await conn.close()
    label = {e.run_id: e.scenario for e in ledger.entries if e.run_id}
    return [
        Ending(
            r["run_id"],
            label[r["run_id"]],
            r["status"],
            r["block_reason"],
            frozenset(rule for rule in r["rules"] if rule),
            wanted[r["run_id"]],
        )
        for r in rows
    ]


async def _effects(env: Harness, victims: list[str], held: str) -> tuple[int, int]:
    """Jobs, decisions and model calls of the raw events' victims; reviewer decisions on the
    run whose review was never claimed."""
    conn = await env.connect()
    try:
        row = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM pipeline_jobs WHERE run_id = ANY($1))"
            " + (SELECT count(*) FROM pipeline_decisions WHERE run_id = ANY($1))"
            " + (SELECT count(*) FROM pipeline_model_calls WHERE run_id = ANY($1)) AS victims,"
            " (SELECT count(*) FROM pipeline_decisions WHERE run_id = $2"
            "  AND decided_by = 'reviewer') AS reviewed",
            victims,
            held,
        )
    finally:
        await conn.close()
    return int(row["victims"]), int(row["reviewed"])


def _scenario_ends(scenario: str, max_attempts: int) -> Wanted:
    """How a run of a sample's scenario ends (docs/samples-and-model-server.md)."""
    expected = expectation(cast(Scenario, scenario), max_attempts)
    return ((expected.outcome, expected.block_reason),)


def _by_expected(outcomes: Sequence[Outcome]) -> dict[str, str]:
    """Attacks that got their answer, out of all, per expected status (``201|429``)."""
    total: Counter[str] = Counter()
    good: Counter[str] = Counter()
    for o in outcomes:
        key = "|".join(str(s) for s in sorted(o.attack.expected))
        total[key] += 1
        good[key] += o.status in o.attack.expected
    return {key: f"{good[key]}/{total[key]}" for key in sorted(total)}


@pytest.mark.timeout(1800)
async def test_t28_abuse_under_load(env: Harness, profile: Profile, seed: int, record) -> None:
    marks = await mark(env)
    s = env.settings
    tokens = {"user": env.token(), "operator": env.token(operator=True)}
    subjects = {"user": f"chaos-{env.tag}", "operator": f"chaos-operator-{env.tag}", "none": "-"}
    replica = asyncio.create_task(_quota_ingress(env))
    started = time.monotonic()
    try:
        [victim] = await make_runs(env.ingress_url, env.samples[:1], tokens["user"])
        loader = env.loader(seed)
        timeout = aiohttp.ClientTimeout(total=120)
        async with (
            aiohttp.ClientSession(timeout=timeout) as api,
            aiohttp.ClientSession(timeout=timeout) as plain,  # S3: no Authorization header
        ):
            client = PlanstreamClient(env.ingress_url, api, tokens["user"])
            race = await loader.submit(client, loader.pick(["missing_room"]))
            held = await loader.submit(client, loader.pick(["not_a_floor_plan"]))
            assert race.run_id and held.run_id, (race, held)
            load = asyncio.create_task(
                env.load(
                    profile.abuse_runs,
                    seed=seed + 1,
                    rate_per_s=profile.abuse_runs / profile.abuse_load_s,
                )
            )
            corpus = [*token_attacks(s), *text_attacks(), *body_attacks(s)]
            fired, slow, uploads, quota, raced, injected = await asyncio.gather(
                _fire_all(api, env.ingress_url, corpus, tokens, subjects),
                _slow(env, tokens["user"]),
                _uploads(env, api, plain, client, tokens["user"]),
                _quota_and_owners(env, api, replica, tokens, subjects),
                _race(env, api, race.run_id, tokens, subjects["operator"], profile.quiesce_s),
                _raw(env, victim, held.run_id, profile.quiesce_s),
            )
            ledger = await load
        attack_s = time.monotonic() - started
    finally:
        if "ingress-quota" in env.rig.procs:
            await asyncio.to_thread(env.rig.stop, "ingress-quota")
    upload_outcomes, upload_entries, upload_wanted = uploads
    quota_outcomes, quota_entries, quota_wanted, abuser = quota
    race_outcomes, race_wanted = raced
    legit = list(ledger.entries)
    for entry in (race, held, *upload_entries, *quota_entries):
        ledger.add(entry)
    wanted = {
        e.run_id: _scenario_ends(e.scenario, s.max_attempts) for e in (*legit, held) if e.run_id
    }
    wanted |= upload_wanted | quota_wanted | {race.run_id: race_wanted}
    drained = await quiesce(env, ledger, profile.quiesce_s)

    outcomes = [*fired, *slow, *upload_outcomes, *quota_outcomes, *race_outcomes]
    letters = letters_of(await dead_letters(s, marks.topics))
    endings = await _endings(env, ledger, wanted)
    victim_effects, unclaimed_reviews = await _effects(env, [victim.run_id], held.run_id)
    peak = peak_rss_bytes(env.rig.procs["image_io"].pid)
    answers = [(o.subject, o.status) for o in outcomes]
    answers += [(subjects["user"], 429) for e in legit if e.status == "refused" and "429" in e.note]
    checks = [
        unexpected_answers(outcomes),
        wrong_tallies(
            outcomes,
            {
                "review race": {202: 1, 409: 1},
                "quota": {201: QUOTA_ACTIVE, 429: QUOTA_BURST - QUOTA_ACTIVE},
            },
        ),
        quota_spilled(answers, abuser),
        raw_events_mishandled(injected, letters),
        endings_unexpected(endings, EXCUSED),
        Check("I9", "raw_events_with_effect", victim_effects + unclaimed_reviews),
        Check("T28", "image_io_peak_rss_over_400_mib", int(peak > RSS_LIMIT)),
    ]
    result = Result(
        "T28",
        "abuse under load",
        f"{len(outcomes)} attacks through the ingress and {len(injected)} raw events, fired at"
        " once under a legitimate load",
        profile.name,
        seed,
    )
    figures = {
        "attacks": len(outcomes),
        "answered_as_expected_by_status": _by_expected(outcomes),
        "attacks_by_family": dict(Counter(o.attack.family for o in outcomes)),
        "review_race": sorted(o.status for o in race_outcomes),
        "quota_burst": sorted(o.status for o in quota_outcomes if o.attack.group == "quota"),
        "raw_events": len(injected),
        "raw_dead_lettered_once": len(injected) - checks[3].value,
        "legit_runs": len(legit),
        "runs_by_label_and_status": dict(Counter(f"{e.label}:{e.status}" for e in endings)),
        "runs_excused": sum(verdict_of(e, EXCUSED) == "excused" for e in endings),
        "image_io_peak_rss_mib": round(peak / 2**20),
        "attack_phase_s": round(attack_s, 1),
        "drain_s": round(drained, 1),
    }
    await measure(env, marks, ledger, result, extra_checks=checks, figures=figures)
    record(result)
    assert result.verdict == "PASS", result.violations

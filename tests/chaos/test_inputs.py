"""Bad input: T16 poison messages, T22 payload size boundaries, T23 base64 smuggling, T24 SSRF.

I9: nothing over 50 KB, with base64 or a URL, or failing the schema reaches a worker's effect:
each refused input is dead-lettered once (or refused by the ingress), and no job, decision or
model call exists for it; the healthy runs sharing its partition finish.
"""

import asyncio
import io
import json
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime

import aiohttp
import pytest

from planstream.dev.chaos.checkers import Check
from planstream.dev.chaos.harness import Harness
from planstream.dev.chaos.inject import (
    CanaryListener,
    legitimate_keys,
    make_runs,
    partition_for,
    produce,
    smuggling_corpus,
    ssrf_urls,
    step_requested,
)
from planstream.dev.chaos.load import Ledger, LedgerEntry
from planstream.dev.chaos.measure import mark, measure, quiesce
from planstream.dev.chaos.modelfaults import ModelPlan
from planstream.dev.chaos.profiles import Profile
from planstream.dev.chaos.report import Result
from planstream.dev.chaos.streams import (
    dead_letter_counts,
    dead_letters,
    namespace_topics,
    read_topics,
)
from topics import COMPARISON_COMPLETED, IMAGE_READY, STEP_FAILED, STEP_REQUESTED


def _acked(run_ids: list[str]) -> Ledger:
    ledger = Ledger()
    for run_id in run_ids:
        ledger.add(LedgerEntry(run_id, "raw", "raw", "acked", time.time()))
    return ledger


async def _effects(env: Harness, run_ids: list[str]) -> int:
    """Jobs, decisions and model calls of runs whose only step request was refused."""
    conn = await env.connect()
    try:
        return int(
            await conn.fetchval(
                "SELECT (SELECT count(*) FROM pipeline_jobs WHERE run_id = ANY($1))"
                " + (SELECT count(*) FROM pipeline_decisions WHERE run_id = ANY($1))"
                " + (SELECT count(*) FROM pipeline_model_calls WHERE run_id = ANY($1))",
                run_ids,
            )
        )
    finally:
        await conn.close()


async def _dead_lettered(env: Harness, marks, injected) -> dict[tuple[str, int, int], int]:
    """How many dead letters each injected record (topic, partition, offset) got."""
    letters = await dead_letters(env.settings, marks.topics)
    return dead_letter_counts(letters, [(p.topic, p.partition, p.offset) for p in injected])


def _dlq_cli(env: Harness, since: datetime) -> tuple[int, str]:
    """``planstream dlq list --since`` as an operator runs it: (exit code, output)."""
    done = subprocess.run(
        [sys.executable, "-m", "planstream.cli", "dlq", "list", "--since", since.isoformat()],
        env=env.env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.returncode, done.stdout


@pytest.mark.timeout(1800)
async def test_t16_poison_messages(env: Harness, profile: Profile, seed: int, record) -> None:
    marks = await mark(env)
    started = datetime.now(UTC)
    ledger = await env.load(profile.runs, seed=seed)
    partition = partition_for(ledger.acked[0].encode(), env.settings.topic_partitions)
    ns = env.settings.topic_namespace
    ghost = f"run_{uuid.uuid4().hex}"
    made = (await make_runs(env.ingress_url, env.samples[:1], env.token()))[0]
    unknown_run = json.loads(step_requested(made))
    unknown_run["run_id"] = ghost
    wrong_type = json.loads(step_requested(made))
    wrong_type["step_id"] = "zero"
    image_ready = {
        "kind": "image.ready",
        "event_id": f"evt_{uuid.uuid4().hex}",
        "run_id": ghost,
        "occurred_at": started.isoformat(),
        "step_id": 0,
        "attempt": 1,
        "idempotency_key": f"{ghost}:s0:a1",
        "job_id": f"job_{uuid.uuid4().hex}",
        "artifact_ids": [made.source_artifact_id],
        "quality": "2K",
    }
    injected = []
    injected += await produce(
        env.settings,
        STEP_REQUESTED.full_name(ns),
        [
            ("undeserializable", b"poison-a", b"\x00\xff\xfe{not json", partition),
            (
                "unknown run (handler raises)",
                ghost.encode(),
                json.dumps(unknown_run).encode(),
                partition,
            ),
            ("wrong type", b"poison-c", json.dumps(wrong_type).encode(), partition),
        ],
    )
    injected += await produce(
        env.settings,
        IMAGE_READY.full_name(ns),
        [
            (
                "image ready of an unknown run",
                ghost.encode(),
                json.dumps(image_ready).encode(),
                partition,
            )
        ],
    )
    injected += await produce(
        env.settings,
        COMPARISON_COMPLETED.full_name(ns),
        [("empty object", b"poison-e", b"{}", partition)],
    )
    ledger.extend(await env.load(profile.runs, seed=seed + 1))
    drained = await quiesce(env, ledger, profile.quiesce_s)
    letters = await _dead_lettered(env, marks, injected)
    cli_code, cli_out = await asyncio.to_thread(_dlq_cli, env, started)
    wanted = {(p.topic, p.partition, p.offset) for p in injected}
    listed = 0
    for line in cli_out.splitlines():
        try:
            letter = json.loads(line)
        except ValueError:
            continue
        source = (
            letter.get("source_topic"),
            letter.get("source_partition"),
            letter.get("source_offset"),
        )
        listed += source in wanted
    result = Result(
        "T16",
        "poison messages",
        "undecodable / raising / wrong type on 3 topics",
        profile.name,
        seed,
    )
    checks = [
        Check("I9", f"dead letters for '{p.name}' != 1", 1)
        for p in injected
        if letters.get((p.topic, p.partition, p.offset)) != 1
    ]
    if await _effects(env, [ghost, made.run_id]):
        checks.append(Check("I9", "a poison message had an effect (job/decision/model call)", 1))
    if cli_code != 0 or listed != len(wanted):
        problem = f"planstream dlq list (exit {cli_code}) listed {listed}/{len(wanted)}"
        checks.append(Check("T16", problem, 1))
    figures = {
        "poison": len(injected),
        "dead_letters_each": sorted(letters.values()),
        "dlq_list_exit": cli_code,
        "dlq_list_lines": len([x for x in cli_out.splitlines() if x.strip()]),
        "dlq_list_matching": listed,
        "healthy_partition": partition,
        "drain_s": round(drained, 1),
    }
    await measure(env, marks, ledger, result, extra_checks=checks, figures=figures)
    record(result)
    assert result.verdict == "PASS", result.violations


async def _post_sized(
    session: aiohttp.ClientSession, url: str, size: int, chunked: bool = False
) -> int:
    body = json.dumps({"content_type": "image/png"}).encode()
    body += b" " * (size - len(body))
    if chunked:

        async def stream():
            for start in range(0, len(body), 4096):
                yield body[start : start + 4096]

        data = stream()
    else:
        data = io.BytesIO(body)
    try:
        async with session.post(
            url, data=data, headers={"Content-Type": "application/json"}
        ) as answer:
            return answer.status
    except aiohttp.ClientError:
        return -1  # the server closed the connection on an oversized body: refused


@pytest.mark.timeout(1800)
async def test_t22_payload_size_boundaries(
    env: Harness, profile: Profile, seed: int, record
) -> None:
    marks = await mark(env)
    limit = env.settings.max_request_bytes
    url = f"{env.ingress_url}/v1/uploads"
    async with aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=60), headers=env.auth()
    ) as session:
        ingress = {
            size: await _post_sized(session, url, size)
            for size in (limit - 1, limit, limit + 1, 1024 * 1024, 2 * 1024 * 1024)
        }
        chunked = await _post_sized(session, url, limit + 1, chunked=True)
    event_limit = env.settings.max_event_bytes
    sizes = [event_limit - 1, event_limit, event_limit + 1, 1024 * 1024, 2 * 1024 * 1024]
    runs = await make_runs(
        env.ingress_url, [env.samples[i % len(env.samples)] for i in range(len(sizes))], env.token()
    )
    injected = await produce(
        env.settings,
        STEP_REQUESTED.full_name(env.settings.topic_namespace),
        [
            (f"{size} bytes", run.run_id.encode(), step_requested(run, pad_to=size), None)
            for size, run in zip(sizes, runs, strict=True)
        ],
    )
    accepted_runs = [
        run.run_id for size, run in zip(sizes, runs, strict=True) if size <= event_limit
    ]
    refused_runs = [run.run_id for size, run in zip(sizes, runs, strict=True) if size > event_limit]
    ledger = _acked(accepted_runs)
    drained = await quiesce(env, ledger, profile.quiesce_s)
    letters = await _dead_lettered(env, marks, injected)
    oversized_effects = await _effects(env, refused_runs)
    refused = sum(
        1
        for p, size in zip(injected, sizes, strict=True)
        if size > event_limit and (p.refused or letters.get((p.topic, p.partition, p.offset)) == 1)
    )
    checks = []
    expect = {limit - 1: 201, limit: 201, limit + 1: 413}
    for size, wanted in expect.items():
        if ingress[size] != wanted:
            checks.append(
                Check(
                    "I9", f"ingress body of {size} bytes answered {ingress[size]}, not {wanted}", 1
                )
            )
    for size in (1024 * 1024, 2 * 1024 * 1024):
        if ingress[size] not in (413, -1):
            checks.append(Check("I9", f"ingress body of {size} bytes answered {ingress[size]}", 1))
    if chunked not in (413, -1):
        checks.append(Check("I9", f"chunked body over the limit answered {chunked}", 1))
    if oversized_effects:
        checks.append(Check("I9", "oversized events processed", oversized_effects))
    if refused != len(refused_runs):
        checks.append(Check("I9", "oversized events not refused", len(refused_runs) - refused))
    result = Result(
        "T22",
        "payload size boundaries",
        "10 KB ingress bodies, 50 KB events (raw producer)",
        profile.name,
        seed,
    )
    figures = {
        "ingress_status_by_size": {str(k): v for k, v in ingress.items()},
        "ingress_chunked_over_limit": chunked,
        "events": {p.name: (p.refused or f"offset {p.offset}") for p in injected},
        "oversized_refused": f"{refused}/{len(refused_runs)}",
        "oversized_processed": oversized_effects,
        "drain_s": round(drained, 1),
    }
    await measure(env, marks, ledger, result, extra_checks=checks, figures=figures)
    record(result)
    assert result.verdict == "PASS", result.violations


async def _status(session: aiohttp.ClientSession, method: str, url: str, **kwargs) -> int:
    async with session.request(method, url, **kwargs) as answer:
        return answer.status


@pytest.mark.timeout(1800)
async def test_t23_base64_smuggling_corpus(
    env: Harness, profile: Profile, seed: int, record
) -> None:
    marks = await mark(env)
    corpus = smuggling_corpus()
    api_refused = 0
    api_sent = 0
    legit_ok = 0
    legit = legitimate_keys()
    async with aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=60), headers=env.auth()
    ) as session:
        runs = await make_runs(env.ingress_url, env.samples[: len(legit)] * 2, env.token())
        for _, text in corpus:
            slot = await (
                await session.post(
                    f"{env.ingress_url}/v1/uploads", json={"content_type": "image/png"}
                )
            ).json()
            body = {
                "upload_id": slot["upload_id"],
                "ratio": "4:3",
                "quality_post_step4": "2K",
                "request_text": text[:2000],
            }
            api_sent += 1
            api_refused += (
                await _status(session, "POST", f"{env.ingress_url}/v1/runs", json=body) == 422
            )
            header = text.replace("\n", " ")[:200]
            if not header.isascii():
                continue  # not sendable as an HTTP header value
            api_sent += 1
            status = await _status(
                session,
                "POST",
                f"{env.ingress_url}/v1/runs/{runs[-1].run_id}/steps/0",
                headers={"Idempotency-Key": header},
            )
            api_refused += status in (400, 422)
        ledger = Ledger()
        for run, (name, key) in zip(runs, legit, strict=False):
            status = await _status(
                session,
                "POST",
                f"{env.ingress_url}/v1/runs/{run.run_id}/steps/0",
                headers={"Idempotency-Key": key},
            )
            legit_ok += status in (200, 202)
            ledger.add(
                LedgerEntry(
                    run.run_id,
                    name,
                    key,
                    "acked" if status in (200, 202) else "refused",
                    time.time(),
                )
            )
    victims = runs[len(legit) :]
    ns = env.settings.topic_namespace
    raw = []
    for index, (name, text) in enumerate(corpus):
        victim = victims[index % len(victims)]
        raw.append(
            (
                f"key:{name}",
                victim.run_id.encode(),
                step_requested(victim, idempotency_key=text),
                None,
            )
        )
        failed = {
            "kind": "step.failed",
            "event_id": f"evt_{uuid.uuid4().hex}",
            "run_id": victim.run_id,
            "occurred_at": datetime.now(UTC).isoformat(),
            "step_id": 0,
            "attempt": 1,
            "idempotency_key": f"{victim.run_id}:s0:a1",
            "service": "image_io",
            "failure": {"rule": "IMAGE_UNREADABLE", "severity": "critical", "detail": text},
        }
        raw.append((f"detail:{name}", victim.run_id.encode(), json.dumps(failed).encode(), None))
    injected = await produce(
        env.settings, STEP_REQUESTED.full_name(ns), [r for r in raw if r[0].startswith("key:")]
    )
    injected += await produce(
        env.settings, STEP_FAILED.full_name(ns), [r for r in raw if r[0].startswith("detail:")]
    )
    drained = await quiesce(env, ledger, profile.quiesce_s)
    letters = await _dead_lettered(env, marks, injected)
    accepted = [p.name for p in injected if letters.get((p.topic, p.partition, p.offset)) != 1]
    effects = await _effects(env, [v.run_id for v in victims])
    checks = []
    if api_refused != api_sent:
        checks.append(Check("I9", "smuggled API inputs accepted", api_sent - api_refused))
    if accepted:
        checks.append(
            Check(
                "I9", "smuggled events not dead-lettered once", len(accepted), tuple(accepted[:10])
            )
        )
    if effects:
        checks.append(Check("I9", "smuggled events had effects", effects))
    if legit_ok != len(legit):
        checks.append(
            Check("I9", "legitimate keys refused (false positives)", len(legit) - legit_ok)
        )
    result = Result(
        "T23",
        "base64 smuggling",
        f"{len(corpus)} variants via the API and a raw producer",
        profile.name,
        seed,
    )
    figures = {
        "variants": len(corpus),
        "api_refused": f"{api_refused}/{api_sent}",
        "raw_dead_lettered": f"{len(injected) - len(accepted)}/{len(injected)}",
        "false_positives": len(legit) - legit_ok,
        "drain_s": round(drained, 1),
    }
    await measure(env, marks, ledger, result, extra_checks=checks, figures=figures)
    record(result)
    assert result.verdict == "PASS", result.violations


@pytest.mark.timeout(1800)
async def test_t24_ssrf_through_every_url_field(
    env: Harness, profile: Profile, seed: int, record
) -> None:
    canary = CanaryListener()
    try:
        marks = await mark(env)
        urls = ssrf_urls(canary.port)
        target = f"http://127.0.0.1:{canary.port}/"
        refused = sent = 0
        async with aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=60), headers=env.auth()
        ) as session:
            runs = await make_runs(env.ingress_url, env.samples[:2], env.token())
            for _, url in [(n, u) for n, u in urls if "://" in u]:
                slot = await (
                    await session.post(
                        f"{env.ingress_url}/v1/uploads", json={"content_type": "image/png"}
                    )
                ).json()
                for body in (
                    {
                        "upload_id": slot["upload_id"],
                        "ratio": "4:3",
                        "quality_post_step4": "2K",
                        "request_text": f"see {url}",
                    },
                    {"upload_id": url, "ratio": "4:3", "quality_post_step4": "2K"},
                    {"upload_id": slot["upload_id"], "ratio": url, "quality_post_step4": "2K"},
                ):
                    sent += 1
                    refused += (
                        await _status(session, "POST", f"{env.ingress_url}/v1/runs", json=body)
                        == 422
                    )
                sent += 1
                refused += (
                    await _status(
                        session, "POST", f"{env.ingress_url}/v1/uploads", json={"content_type": url}
                    )
                    == 422
                )
                sent += 1
                refused += (
                    await _status(
                        session,
                        "POST",
                        f"{env.ingress_url}/v1/runs/{runs[0].run_id}/steps/0",
                        headers={"Idempotency-Key": url},
                    )
                    == 422
                )
        ns = env.settings.topic_namespace
        raw = [
            (
                f"artifact:{name}",
                runs[1].run_id.encode(),
                step_requested(runs[1], input_artifact_ids=[url]),
                None,
            )
            for name, url in urls
        ]
        injected = await produce(env.settings, STEP_REQUESTED.full_name(ns), raw)
        assert env.model is not None
        ledger = Ledger()
        for template, schemas in (
            ("url_in_labels", {"spaces_v1"}),
            ("redirect", {"spaces_v1", "decision_audit_v1"}),
        ):
            env.model.plan(
                ModelPlan(
                    weights={"template": 1.0},
                    schemas=frozenset(schemas),
                    template=template,
                    redirect_to=target,
                )
            )
            part = await env.load(2, seed=seed, scenarios=("correct",))
            await quiesce(env, part, profile.quiesce_s)
            ledger.extend(part)
        env.model.heal()
        drained = await quiesce(env, ledger, profile.quiesce_s)
        letters = await _dead_lettered(env, marks, injected)
        bucket_prefix = f"/{env.settings.s3_bucket}/"
        foreign = [
            c
            for c in env.model.seen(marks.model_calls_since)
            if c.image_key and not c.image_key.startswith(bucket_prefix)
        ]
        records = await read_topics(env.settings, namespace_topics(env.settings), marks.topics)
        ours = {(p.topic, p.partition, p.offset) for p in injected}
        in_events = sum(  # events planstream produced (not our injections, not dead letters)
            1
            for r in records
            if f"127.0.0.1:{canary.port}".encode() in (r.value or b"")
            and not r.topic.endswith("dead-letter.v1")
            and (r.topic, r.partition, r.offset) not in ours
        )
        checks = []
        if canary.connections:
            checks.append(Check("T24", "connections to the canary listener", canary.connections))
        if foreign:
            checks.append(
                Check("T24", "model fetched images not minted by planstream", len(foreign))
            )
        if in_events:
            checks.append(Check("I9", "internal URLs carried by events", in_events))
        undelivered = [
            p.name for p in injected if letters.get((p.topic, p.partition, p.offset)) != 1
        ]
        if undelivered:
            checks.append(
                Check(
                    "I9",
                    "URL-bearing events not dead-lettered once",
                    len(undelivered),
                    tuple(undelivered),
                )
            )
        if refused != sent:
            checks.append(Check("I9", "URL-bearing API inputs accepted", sent - refused))
        result = Result(
            "T24",
            "SSRF",
            "internal URLs in every URL-bearing field, 302 to a canary",
            profile.name,
            seed,
        )
        figures = {
            "canary_connections": canary.connections,
            "redirects_followed": canary.connections,
            "api_refused": f"{refused}/{sent}",
            "raw_dead_lettered": f"{len(injected) - len(undelivered)}/{len(injected)}",
            "model_fetches_not_minted": len(foreign),
            "drain_s": round(drained, 1),
        }
        await measure(env, marks, ledger, result, extra_checks=checks, figures=figures)
        record(result)
        assert result.verdict == "PASS", result.violations
    finally:
        canary.close()
        if env.model is not None:
            env.model.heal()

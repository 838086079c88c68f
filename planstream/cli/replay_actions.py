"""The actions of `planstream replay`: start (select, open, publish, follow), show, diff, cancel,
purge. Each takes a production pool; only ``ReplayStore`` writes, and only the registry and the
replay's own schema."""

import argparse
import sys
from collections.abc import Sequence

import asyncpg

from planstream.adapters.kafka import EventPublisher
from planstream.adapters.postgres.replay_diff import decision_diff
from planstream.adapters.postgres.replays import (
    RecordedDecision,
    ReplayRecord,
    ReplayStore,
    SelectedAttempt,
)
from planstream.adapters.postgres.repository import Repository
from planstream.adapters.storage import Storage
from planstream.cli.replay import expiry, follow, now, parse_moment, to_json
from planstream.cli.replay_view import diff_json, diff_text, trace_text
from planstream.domain.errors import ConfigurationError
from planstream.domain.events import InfoRequested, step_key
from planstream.domain.ids import new_id
from planstream.domain.policy import quality_for_step
from planstream.domain.prompts import AUDIT, COMPARISON, EXTRACTION
from planstream.domain.records import Run
from planstream.domain.replay import (
    ReplayMode,
    Selection,
    flip_gate,
)
from planstream.domain.rule_trace import trace_document
from planstream.domain.spaces import load_spaces
from planstream.services.comparison_worker import image_size
from planstream.settings import Settings
from topics import INFO_REQUESTED, replay_twin

__all__ = ["cancel", "diff", "purge", "show", "start"]

_UPSTREAM = "step.failed"


def _selection(args: argparse.Namespace, settings: Settings) -> Selection:
    selection = Selection(
        run_ids=tuple(args.run),
        since=parse_moment(args.since, "--since"),
        until=parse_moment(args.until, "--until"),
        decision=args.decision,
        block_reason=args.block_reason,
        limit=args.limit,
    )
    problem = selection.problem(settings.replay_max_attempts)
    if problem is not None:
        raise ConfigurationError(problem)
    if args.live and args.max_usd is None:
        raise ConfigurationError("--live calls the model again: give it a cost cap, --max-usd")
    if args.max_usd is not None and args.max_usd <= 0:
        raise ConfigurationError("--max-usd must be above 0")
    if args.trace and (len(args.run) != 1 or args.live):
        raise ConfigurationError("--trace explains one run: one --run, frozen")
    return selection


def versions_in_force(settings: Settings) -> dict[str, object]:
    """The rules, prompts and models this replay is started under (its workers record theirs
    on every decision they make)."""
    return {
        "rules": settings.policy().version,
        "prompts": {p.schema_name: p.version for p in (EXTRACTION, COMPARISON, AUDIT)},
        "models": {"vision": settings.model_vision, "text": settings.model_text},
    }


async def start(settings: Settings, pool: asyncpg.Pool, args: argparse.Namespace) -> int:
    """Select, open the replay, publish its requests, follow it; 0 when it completed."""
    selection = _selection(args, settings)
    mode: ReplayMode = "live" if args.live else "frozen"
    store = ReplayStore(pool)
    selected = await store.select_attempts(selection)
    # A decision on an upstream failure (Image I/O, a render) had no document for the rules.
    upstream = [a for a in selected if a.decided_on == _UPSTREAM or a.image_artifact_id is None]
    attempts = [a for a in selected if a not in upstream]
    skipped = await store.skipped(selection)
    if upstream:
        skipped["upstream failure"] = len(upstream)
    if not attempts:
        print(f"nothing to replay: no Supervisor decision on a document matches ({skipped})")
        return 1
    replay_id = new_id("rpl")
    versions = versions_in_force(settings)
    await store.create(
        replay_id, args.operator, mode, selection.as_json(), versions, args.max_usd, attempts
    )
    await _publish(settings, Repository(pool), replay_id, attempts)
    left_out = ", ".join(f"{n} by {who}" for who, n in sorted(skipped.items())) or "none"
    print(replay_id)
    print(f"{mode} replay of {len(attempts)} attempts; left out: {left_out}", file=sys.stderr)
    if args.no_follow:
        return 0
    record = await follow(
        lambda: _record(store, replay_id),
        args.timeout,
        settings.replay_progress_poll_s,
        sys.stdout.isatty(),
    )
    if args.trace:
        await _trace(settings, pool, store, replay_id, attempts)
    diffs, summary = await decision_diff(store, replay_id)
    print(diff_text(await _heading(store, record), diffs, summary, all_=False))
    return 0 if record.status == "completed" else 1


async def _record(store: ReplayStore, replay_id: str) -> ReplayRecord:
    record = await store.progress(replay_id)
    if record is None:
        raise ConfigurationError(f"no replay {replay_id}")
    return record


async def _publish(
    settings: Settings, repo: Repository, replay_id: str, attempts: list[SelectedAttempt]
) -> None:
    """One analysis request per attempt, on the replay family, for the replay Info Worker."""
    publisher = EventPublisher(settings, "replay")
    await publisher.start()
    try:
        runs: dict[str, Run | None] = {}  # a run's attempts share its row: read it once
        for attempt in attempts:
            if attempt.run_id not in runs:
                runs[attempt.run_id] = await repo.get_run(attempt.run_id)
            run = runs[attempt.run_id]
            assert run is not None and attempt.image_artifact_id is not None
            request = InfoRequested(
                event_id=new_id("evt"),
                run_id=attempt.run_id,
                occurred_at=now(),
                step_id=attempt.step_id,
                attempt=attempt.attempt,
                idempotency_key=step_key(attempt.run_id, attempt.step_id, attempt.attempt),
                artifact_ids=[attempt.image_artifact_id],
                quality=quality_for_step(attempt.step_id, run.quality_post_step4),
                replay_id=replay_id,
            )
            await publisher.publish(replay_twin(INFO_REQUESTED), request)
    finally:
        await publisher.stop()


async def _heading(store: ReplayStore, record: ReplayRecord) -> dict[str, object]:
    """The replay's record as `show` and `start` print it, with the rules versions each side's
    decisions were made under (the replay's own, as started, until it decided any)."""
    replayed = [r.decision for r in await store.replayed(record.replay_id) if r.decision]
    return {
        "replay_id": record.replay_id,
        "mode": record.mode,
        "status": record.status,
        "started_by": record.started_by,
        "started_at": record.started_at.isoformat(),
        "versions_before": _rules_versions(await store.originals(record.replay_id)),
        "versions_after": _rules_versions(replayed) or record.versions.get("rules"),
        "cost_usd": record.cost_usd,
        "max_usd": record.max_usd,
    }


async def show(pool: asyncpg.Pool, replay_id: str, args: argparse.Namespace) -> int:
    store = ReplayStore(pool)
    record = await _record(store, replay_id)
    diffs, summary = await decision_diff(store, replay_id)
    heading = await _heading(store, record)
    if args.json:
        print(to_json(diff_json(heading, diffs, summary)))
    else:
        print(diff_text(heading, diffs, summary, all_=args.all))
    return 0


def _rules_versions(decisions: Sequence[RecordedDecision]) -> str:
    """The rules versions the decisions were made under, as one text."""
    seen = sorted({str(d.versions.get("rules")) for d in decisions})
    return ", ".join(v for v in seen if v != "None")


async def diff(pool: asyncpg.Pool, replay_id: str, max_flips: int) -> int:
    """The CI gate: 1 (with the reason) when more than ``max_flips`` decisions flipped, an
    attempt failed, or the replay is not finished."""
    store = ReplayStore(pool)
    await _record(store, replay_id)
    _, summary = await decision_diff(store, replay_id)
    reason = flip_gate(summary, max_flips)
    if reason is not None:
        print(f"replay {replay_id}: {reason}", file=sys.stderr)
        return 1
    print(f"replay {replay_id}: {summary.flip_count} flips, at most {max_flips} allowed")
    return 0


async def cancel(pool: asyncpg.Pool, replay_id: str) -> int:
    if await ReplayStore(pool).cancel(replay_id):
        print(f"replay {replay_id} cancelled: its pending attempts will not be decided")
        return 0
    print(f"replay {replay_id} is not running: nothing to cancel", file=sys.stderr)
    return 1


async def purge(settings: Settings, pool: asyncpg.Pool, args: argparse.Namespace) -> int:
    """Delete a replay's schema and its objects under ``replays/<id>/`` (or every replay past
    the retention); production is not touched."""
    store = ReplayStore(pool)
    ids = [args.replay_id] if args.replay_id else await store.expired(expiry(settings))
    storage = Storage(settings)
    await storage.start()
    try:
        for replay_id in ids:
            await store.purge(replay_id)
            removed = await storage.delete_prefix(f"replays/{replay_id}/")
            print(f"purged {replay_id}: its schema and {removed} objects")
    finally:
        await storage.stop()
    if not ids:
        print(f"no replay older than {settings.replay_retention_days} days")
    return 0


async def _trace(
    settings: Settings,
    pool: asyncpg.Pool,
    store: ReplayStore,
    replay_id: str,
    attempts: list[SelectedAttempt],
) -> None:
    """What each rule read and concluded on each attempt's recorded document (the frozen
    replay's document is the recorded one), with the replay's decision."""
    repo, storage = Repository(pool), Storage(settings)
    outcomes = {(r.run_id, r.step_id, r.attempt): r for r in await store.replayed(replay_id)}
    await storage.start()
    try:
        for attempt in sorted(attempts, key=lambda a: (a.step_id, a.attempt)):
            replayed = outcomes.get(attempt.key)
            side = replayed.side() if replayed else None
            outcome = "not decided" if side is None else side.decision
            if side is not None and side.block_reason:
                outcome += f" ({side.block_reason})"
            spaces = await repo.artifact(attempt.spaces_artifact_id or "")
            image = await repo.artifact(attempt.image_artifact_id or "")
            if spaces is None:
                print(f"step {attempt.step_id} attempt {attempt.attempt}: no document ({outcome})")
                continue
            raw = await storage.read(
                spaces.storage_bucket, spaces.storage_path, settings.model_max_response_bytes
            )
            size = image_size(image.metadata) if image else None
            traces = trace_document(load_spaces(raw), size, settings.policy())
            print(trace_text(attempt.step_id, attempt.attempt, traces, outcome))
            if side is not None:
                later = [
                    f for f in side.failures if f.rule in ("REQUEST_MISMATCH", "AUDIT_INCONSISTENT")
                ]
                for failure in later:
                    print(f"  {'fired':<15} {failure.rule:<30} {failure.detail}")
                score = side.consistency_score
                print(f"  audit score {score if score is not None else '-'}; decided {outcome}")
    finally:
        await storage.stop()

"""Payload validation per path (docs/migration.md, phase 2): what ``planstream flags report``
prints, from the job rows.

Per path (``new``: planstream's services; ``legacy``: the old function through the bridge) and
step: the step attempts requested, the payload sizes (on the new path every event its jobs kept,
as the wire carries it; on the legacy path every request body sent to the old function), the
errors by code (WORKER_LIMIT always shown), the step attempts that have jobs on both paths (a
step done twice across a switch: should be 0), the jobs taken over by a second worker, and the
deliveries per job (``attempts``) and calls of the old function.
"""

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import asyncpg

from planstream.domain.routing import Route
from planstream.domain.service_names import LEGACY

__all__ = ["PathFigures", "percentile", "read_jobs", "summarise"]

_JOBS: Final = """
SELECT run_id, step_id, attempt, service, attempts, lease_epoch, last_error,
       payload_ref -> 'event' AS event, result_ref
FROM pipeline_jobs
WHERE ($1::timestamptz IS NULL OR created_at >= $1)
  AND ($2::text[] IS NULL OR run_id = ANY($2))
"""
_ALWAYS: Final = ("WORKER_LIMIT",)


@dataclass
class PathFigures:
    """One path and step's figures."""

    path: Route
    step: int
    requests: int = 0
    sizes: list[int] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    taken_over: int = 0
    jobs: int = 0
    deliveries: list[int] = field(default_factory=list)
    calls: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The figures as one JSON object (``flags report --json``)."""
        errors = dict.fromkeys(_ALWAYS, 0) | dict(sorted(self.errors.items()))
        return {
            "path": self.path,
            "step": self.step,
            "requests": self.requests,
            "payloads": len(self.sizes),
            "p50_bytes": percentile(self.sizes, 50),
            "p95_bytes": percentile(self.sizes, 95),
            "max_bytes": max(self.sizes, default=0),
            "errors": errors,
            "duplicate_jobs": self.duplicates,
            "taken_over": self.taken_over,
            "jobs": self.jobs,
            "attempts_max": max(self.deliveries, default=0),
            "attempts_mean": round(sum(self.deliveries) / len(self.deliveries), 2)
            if self.deliveries
            else 0.0,
            "legacy_calls": self.calls,
        }


def percentile(values: Sequence[int], rank: float) -> int:
    """The nearest-rank percentile of ``values`` (0 when there are none)."""
    if not values:
        return 0
    ordered = sorted(values)
    index = max(0, math.ceil(rank / 100 * len(ordered)) - 1)
    return ordered[index]


def _event_size(event: Any) -> int | None:
    """The kept event's size as the wire carries it (compact JSON)."""
    if not isinstance(event, dict):
        return None
    return len(json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode())


def _error_code(text: str | None) -> str | None:
    """A job's ``last_error`` as its code: the rule or class before the first colon."""
    if not text:
        return None
    head = text.split(":", 1)[0].strip()
    return head if head.replace("_", "").isalnum() and len(head) <= 48 else "other"


def summarise(rows: Iterable[Mapping[str, Any]]) -> list[PathFigures]:
    """The figures of every path and step that has jobs, new before legacy, by step."""
    rows = list(rows)
    paths: dict[tuple[str, int, int], set[Route]] = {}
    for row in rows:
        route: Route = "legacy" if row["service"] == LEGACY else "new"
        paths.setdefault((row["run_id"], row["step_id"], row["attempt"]), set()).add(route)
    figures: dict[tuple[Route, int], PathFigures] = {}
    for row in rows:
        route = "legacy" if row["service"] == LEGACY else "new"
        step = int(row["step_id"])
        entry = figures.setdefault((route, step), PathFigures(route, step))
        entry.jobs += 1
        entry.deliveries.append(int(row["attempts"]))
        if int(row["lease_epoch"]) > 1:
            entry.taken_over += 1
        result = row["result_ref"] if isinstance(row["result_ref"], dict) else {}
        if route == "legacy":
            _legacy(entry, result)
        else:
            size = _event_size(row["event"])
            if size is not None:
                entry.sizes.append(size)
            code = _error_code(row["last_error"])
            if code is not None:
                entry.errors[code] += 1
    for (_, step, _), seen in paths.items():
        for route in seen:
            entry = figures[route, step]
            entry.requests += 1
            entry.duplicates += len(seen) > 1
    order = {"new": 0, "legacy": 1}
    return sorted(figures.values(), key=lambda f: (order[f.path], f.step))


def _legacy(entry: PathFigures, result: Mapping[str, Any]) -> None:
    """A legacy job's calls: each one's request size and, unless OK, its code."""
    calls = result.get("calls")
    for call in calls if isinstance(calls, list) else []:
        if not isinstance(call, dict):
            continue
        entry.calls += 1
        size = call.get("request_bytes")
        if isinstance(size, int):
            entry.sizes.append(size)
        code = call.get("code")
        if isinstance(code, str) and code != "OK":
            entry.errors[code] += 1


async def read_jobs(
    pool: asyncpg.Pool, since: datetime | None, runs: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """The job rows the report reads (created since ``since``; of ``runs`` when given)."""
    found = await pool.fetch(_JOBS, since, list(runs) if runs is not None else None)
    return [dict(row) for row in found]

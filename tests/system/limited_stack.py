"""A stack of planstream's services of its own, pointed at a model server the test starts (a
rate-limited scripted server, or llmock), and a batch of runs followed to their ends.

The session's ``ingress_url`` runs with the session's settings; a test of other model settings
needs its own namespace, database and bucket, or both sets of workers would share the topics.
"""

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from planstream.adapters.http.client import PlanstreamClient
from planstream.adapters.http.tokens import mint
from planstream.dev.isolation import create_database, database_name, drop_database, free_port
from planstream.dev.launcher import Service, everything, prepare, running
from planstream.dev.samples.manifest import SampleEntry
from planstream.settings import Settings
from tests.stackkit import isolated_settings

__all__ = ["Finished", "failed_rules", "follow_all", "own_stack"]

_TERMINAL = frozenset({"completed", "blocked", "failed", "rejected"})


@asynccontextmanager
async def own_stack(
    base: Settings, logs: Path, model: Service | None, **overrides: Any
) -> AsyncIterator[Settings]:
    """Settings of a namespace of their own with ``overrides``, its database and topics made,
    and ``model`` (started first) and every planstream service running with them."""
    settings = isolated_settings(base).with_overrides(ingress_port=free_port(), **overrides)
    database = database_name(settings)
    try:
        await create_database(base.dsn, database, timeout_s=10)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL of the local stack is unreachable ({exc}): run `make test`")
    try:
        await prepare(settings)
        services = [*([model] if model else []), *everything()]
        with running(settings, services, logs):
            yield settings
    finally:
        await drop_database(base.dsn, database)


@dataclass(frozen=True)
class Finished:
    """A run followed to its end: its sample, its view as the API shows it, and its seconds."""

    sample: SampleEntry
    view: dict[str, Any]
    seconds: float


async def follow_all(
    settings: Settings, folder: Path, samples: Sequence[SampleEntry], timeout_s: float
) -> tuple[list[Finished], float]:
    """Submit every sample's run at once through the ingress and follow each to its end; the
    runs and the seconds from the first submission to the last end."""
    base = f"http://127.0.0.1:{settings.ingress_port}"
    began = time.monotonic()
    deadline = began + timeout_s
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        client = PlanstreamClient(base, session, mint(settings, "limited-stack"))

        async def follow(sample: SampleEntry) -> Finished:
            started = time.monotonic()
            upload = await client.upload((folder / sample.file).read_bytes(), "image/png")
            run_id = await client.create_run(upload, request_text=sample.request_text)
            await client.request_step(run_id, 0)
            while True:
                view = await client.show_run(run_id)
                if view["status"] in _TERMINAL:
                    return Finished(sample, view, time.monotonic() - started)
                if time.monotonic() > deadline:
                    raise AssertionError(f"{sample.scenario} run {run_id} did not end: {view}")
                await asyncio.sleep(0.5)

        finished = await asyncio.gather(*(follow(sample) for sample in samples))
    return list(finished), time.monotonic() - began


def failed_rules(run: Finished) -> set[str]:
    """Every rule a decision of the run failed (``rule_checks.failures``)."""
    decisions = run.view["decisions"]
    return {f["rule"] for d in decisions for f in (d["rule_checks"] or {}).get("failures", [])}

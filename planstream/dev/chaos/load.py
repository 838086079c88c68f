"""A bounded load generator through the ingress, and the ledger of what it was told.

Each run is made like a user's: the image goes to a presigned POST form, then the run is created
and step 0 requested with an Idempotency-Key. A request the ingress acknowledged (202/200) is
``acked``; one whose answer never came (timeout, reset, 5xx after every retry with the same key)
is ``indeterminate``: I1 allows it to be absent, but if present it must be processed once.
"""

import asyncio
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import aiohttp

from planstream.adapters.http.client import IngressError, PlanstreamClient
from planstream.dev.samples.manifest import SampleEntry
from planstream.domain.errors import PlanstreamError, RetryableError

__all__ = ["Ledger", "LedgerEntry", "Load", "Sample", "SampleMissing"]

Status = Literal["acked", "indeterminate", "refused"]


class SampleMissing(PlanstreamError):
    """The samples hold none of the scenarios a test asked for: generate them again."""


@dataclass(frozen=True)
class Sample:
    """An image the scripted model server knows, with its scenario."""

    path: Path
    entry: SampleEntry

    @property
    def scenario(self) -> str:
        return self.entry.scenario


@dataclass(frozen=True)
class LedgerEntry:
    """One run the load generator started, and what the ingress said about step 0."""

    run_id: str | None
    scenario: str
    request_key: str
    status: Status
    at: float
    note: str = ""


@dataclass
class Ledger:
    """Every run of one test, in submission order."""

    entries: list[LedgerEntry] = field(default_factory=list)

    def add(self, entry: LedgerEntry) -> None:
        self.entries.append(entry)

    def extend(self, other: "Ledger") -> None:
        self.entries.extend(other.entries)

    @property
    def acked(self) -> list[str]:
        return [e.run_id for e in self.entries if e.status == "acked" and e.run_id]

    @property
    def indeterminate(self) -> list[str]:
        return [e.run_id for e in self.entries if e.status == "indeterminate" and e.run_id]

    @property
    def run_ids(self) -> list[str]:
        return [e.run_id for e in self.entries if e.run_id]


class Load:
    """Submits runs through the ingress at a bounded rate, with bounded retries."""

    def __init__(self, ingress_url: str, samples: Sequence[Sample], seed: int, token: str) -> None:
        self._url = ingress_url
        self._token = token
        self._samples = list(samples)
        self._random = random.Random(seed)
        self._next = 0

    def pick(self, scenarios: Sequence[str] | None = None) -> Sample:
        """The next sample (round robin), among ``scenarios`` when given."""
        pool = [s for s in self._samples if scenarios is None or s.scenario in scenarios]
        if not pool:
            raise SampleMissing(f"no sample of scenarios {scenarios}")
        sample = pool[self._next % len(pool)]
        self._next += 1
        return sample

    async def run(
        self,
        count: int,
        *,
        rate_per_s: float = 2.0,
        scenarios: Sequence[str] | None = None,
        concurrency: int = 8,
        retries: int = 4,
    ) -> Ledger:
        """Start ``count`` runs, at most ``rate_per_s`` a second; their ledger."""
        ledger = Ledger()
        gate = asyncio.Semaphore(concurrency)
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            client = PlanstreamClient(self._url, session, self._token)

            async def one(sample: Sample) -> None:
                async with gate:
                    ledger.add(await self.submit(client, sample, retries=retries))

            tasks = []
            for _ in range(count):
                tasks.append(asyncio.create_task(one(self.pick(scenarios))))
                await asyncio.sleep(1.0 / rate_per_s)
            await asyncio.gather(*tasks)
        return ledger

    async def submit(
        self, client: PlanstreamClient, sample: Sample, *, retries: int = 4
    ) -> LedgerEntry:
        """Upload, create the run, request step 0 (the same key on every retry)."""
        image = await asyncio.to_thread(sample.path.read_bytes)
        run_id: str | None = None
        key = uuid.uuid4().hex
        last = ""
        for attempt in range(retries + 1):
            try:
                if run_id is None:
                    upload = await client.upload(image, "image/png")
                    run_id = await client.create_run(upload, request_text=sample.entry.request_text)
                await client.request_step(run_id, 0, idempotency_key=key)
                return LedgerEntry(run_id, sample.scenario, key, "acked", time.time())
            except IngressError as exc:
                return LedgerEntry(run_id, sample.scenario, key, "refused", time.time(), str(exc))
            except (RetryableError, aiohttp.ClientError, TimeoutError, ValueError) as exc:
                # ValueError: a non-JSON answer (the ingress's plain 500 when PostgreSQL is gone)
                last = f"{type(exc).__name__}: {exc}"[:300]
                await asyncio.sleep(min(8.0, 0.5 * 2**attempt) * (0.5 + self._random.random()))
        status: Status = "indeterminate" if run_id else "refused"
        return LedgerEntry(run_id, sample.scenario, key, status, time.time(), last)

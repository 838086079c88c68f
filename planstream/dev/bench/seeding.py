"""Runs made ready for step 0 the way the ingress makes them, without the HTTP round trips.

Each run gets its own copy of a sample image in the bucket, its upload, run, source artifact and
pending Image I/O job rows (as ``Repository.request_step`` writes them), and the encoded
``StepRequested`` the ingress would publish. Publishing is left to the benchmark, so that the
clock starts when the requests go out.
"""

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
from aiokafka.partitioner import murmur2

from planstream.adapters.storage import Storage
from planstream.dev.bench import rows
from planstream.domain.events import step_key
from planstream.domain.ids import new_id
from planstream.domain.service_names import IMAGE_IO
from planstream.domain.wire import encode_event
from planstream.settings import Settings

__all__ = ["SeededRun", "partition_of", "run_ids", "seed_runs"]

_PUTS_IN_FLIGHT = 16


@dataclass(frozen=True)
class SeededRun:
    """A run whose step 0 can be requested: its id, the request's bytes, its source image."""

    run_id: str
    request: bytes
    artifact_id: str

    @property
    def key(self) -> bytes:
        return self.run_id.encode()


def partition_of(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner (murmur2, as aiokafka and Faust) picks."""
    return int((murmur2(key.encode()) & 0x7FFFFFFF) % partitions)


def run_ids(count: int, partitions: int, only: int | None = None) -> list[str]:
    """New run ids, all on partition ``only`` when given."""
    found: list[str] = []
    while len(found) < count:
        run_id = f"run_{uuid.uuid4().hex}"
        if only is None or partition_of(run_id, partitions) == only:
            found.append(run_id)
    return found


async def seed_runs(
    settings: Settings,
    pool: asyncpg.Pool,
    storage: Storage,
    image: bytes,
    request_text: str | None,
    ids: Sequence[str],
) -> list[SeededRun]:
    """Store the image once per run and write the rows; returns the runs in ``ids`` order."""
    uploads = {run_id: new_id("upl") for run_id in ids}
    artifacts = {run_id: new_id("art") for run_id in ids}
    slots = asyncio.Semaphore(_PUTS_IN_FLIGHT)

    async def put(run_id: str) -> None:
        async with slots:
            await storage.write(f"uploads/{uploads[run_id]}", image, "image/png")

    await asyncio.gather(*(put(run_id) for run_id in ids))
    expires = datetime.now(UTC) + timedelta(seconds=settings.upload_url_ttl_s)
    bucket = storage.bucket
    async with pool.acquire() as conn, conn.transaction():
        await conn.executemany(
            "INSERT INTO uploads (upload_id, storage_bucket, storage_path, content_type,"
            " put_expires_at) VALUES ($1, $2, $3, 'image/png', $4)",
            [(uploads[r], bucket, f"uploads/{uploads[r]}", expires) for r in ids],
        )
        await conn.executemany(
            "INSERT INTO pipeline_runs (run_id, upload_id, ratio, quality_post_step4,"
            " request_text, payload_size_estimate, status) VALUES ($1, $2, '4:3', '2K', $3, 0,"
            " 'pending')",
            [(r, uploads[r], request_text) for r in ids],
        )
        await conn.executemany(
            "INSERT INTO pipeline_artifacts (artifact_id, run_id, step_id, kind, upload_id,"
            " storage_bucket, storage_path) VALUES ($1, $2, 0, 'source_image', $3, $4, $5)",
            [(artifacts[r], r, uploads[r], bucket, f"uploads/{uploads[r]}") for r in ids],
        )
        await conn.executemany(
            "INSERT INTO pipeline_jobs (job_id, run_id, step_id, attempt, service,"
            " idempotency_key, request_key, payload_ref, max_attempts, published_at)"
            " VALUES ($1, $2, 0, 1, $3, $4, $5, $6, $7, now())",
            [
                (
                    new_id("job"),
                    r,
                    IMAGE_IO,
                    f"{IMAGE_IO}:{step_key(r, 0, 1)}",
                    f"{r}:step-0",
                    {"artifact_ids": [artifacts[r]]},
                    settings.max_attempts,
                )
                for r in ids
            ],
        )
    size = settings.max_event_bytes
    return [
        SeededRun(r, encode_event(rows.step_request(r, artifacts[r]), size), artifacts[r])
        for r in ids
    ]

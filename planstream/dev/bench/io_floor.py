"""The I/O floor, run as a child process: one service's external operations of a step-0 run.

``python -m planstream.dev.bench.io_floor HOP --in T --out T --changelog T --template F.json
--group G --counts F.json`` (plus ``--out2 T --template2 F.json`` for the Supervisor) makes,
for every step event read from T, exactly the operations planstream's service HOP makes for
it (``planstream.dev.bench.floor_counts.STEP_ZERO``): the job receipt in the consumer loop
before the offset may move on, then, in one of ``model_concurrency`` tasks (the WorkPool's
limit), the lease, the artifact reads and writes in PostgreSQL and S3, the model call with
its five statements, the output event (its acknowledgement awaited), the finish and the dedup
mark. Nothing is validated, retried or traced. Settings come from the ``PLANSTREAM_*``
environment, as for planstream's services. ``decisions_sink`` writes DecisionMade batches
as ``DecisionLog.write`` does. On SIGTERM the process finishes what it holds, commits, and
writes what it did (runs, batches, operations by kind, errors) to the counts file.
"""

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from aiokafka import AIOKafkaConsumer

from planstream.dev.bench import floor_statements as sql
from planstream.dev.bench.floor_clients import CountedClients
from planstream.dev.bench.floor_counts import HOPS, SINK
from planstream.dev.bench.raw_hop import COPIED, Announce
from planstream.domain.contracts import spaces_schema_for_model
from planstream.domain.events import step_key
from planstream.domain.ids import new_id
from planstream.domain.prompts import (
    AUDIT,
    COMPARISON,
    EXTRACTION,
    Prompt,
    audit_messages,
    comparison_messages,
    extraction_messages,
)
from planstream.settings import Settings

__all__ = ["Floor", "main"]

log = logging.getLogger(__name__)

_SPACES_SCHEMA: Final = spaces_schema_for_model()


def _request(
    prompt: Prompt, messages: object, schema: dict[str, Any], limit: int
) -> dict[str, Any]:
    """The chat request planstream's model client sends, but for the model name."""
    json_schema = {"name": prompt.schema_name, "strict": True, "schema": schema}
    return {
        "messages": messages,
        "response_format": {"type": "json_schema", "json_schema": json_schema},
        "max_completion_tokens": limit,
    }


class Floor:
    """One hop of the floor: its clients, its topics and event templates, what it did."""

    def __init__(self, hop: str, args: argparse.Namespace, settings: Settings) -> None:
        self.hop = hop
        self.args = args
        self.settings = settings
        self.io = CountedClients(settings)
        paths = [path for path in (args.template, args.template2) if path]
        self.templates = [json.loads(Path(path).read_text(encoding="utf-8")) for path in paths]
        self.lease_s = float(settings.lease_s)
        self.runs = 0
        self.batches = 0
        self.errors: list[str] = []

    def event(self, index: int, incoming: dict[str, Any], **fields: object) -> bytes:
        """The hop's output: its template with the run's fields, new ids and ``fields``."""
        out = dict(self.templates[index])
        out.update({name: incoming[name] for name in COPIED if name in incoming})
        out["event_id"] = new_id("evt")
        out["occurred_at"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        out.update(fields)
        return json.dumps(out, separators=(",", ":"), ensure_ascii=False).encode()

    def key(self, event: dict[str, Any]) -> str:
        return f"{self.hop}:{event['idempotency_key']}"

    async def finish(self, event: dict[str, Any], epoch: int) -> None:
        """The job finished with its epoch, then the dedup mark."""
        result = json.dumps({"event_id": new_id("evt"), "service": self.hop})
        await self.io.execute(sql.FINISH, self.key(event), epoch, result)
        await self.io.mark(self.args.changelog, f"{self.hop}:{event['idempotency_key']}")

    async def image_io(self, event: dict[str, Any]) -> None:
        io, run = self.io, event["run_id"]
        lease = await io.fetchrow(sql.LEASE_WITH_RUN, self.key(event), run, self.lease_s)
        for row in await io.fetch(sql.ARTIFACTS, event["input_artifact_ids"]):
            data = await io.get(row["bucket"], row["path"])
            path = f"runs/{run}/source-{uuid.uuid4().hex}.png"
            await io.put(path, data, "image/png")
            await io.execute(sql.CHECKED_COPY, row["artifact_id"], path, sql.IMAGE_FACTS)
            url = await io.presign(path)
            await io.execute(
                sql.URL_CACHED, row["artifact_id"], url, float(self.settings.signed_url_ttl_s)
            )
        ids = event["input_artifact_ids"]
        await io.produce(self.args.output, self.event(0, event, artifact_ids=ids), run)
        await self.finish(event, lease["epoch"])

    async def info_worker(self, event: dict[str, Any]) -> None:
        io, run, s = self.io, event["run_id"], self.settings
        epoch = await io.fetchval(sql.LEASE, self.key(event), self.lease_s)
        image = await io.fetchrow(sql.ARTIFACT, event["artifact_ids"][0])
        request = _request(
            EXTRACTION, extraction_messages(image["url"]), _SPACES_SCHEMA, s.model_max_output_tokens
        )
        content, raw = await io.chat(run, "extract", s.model_vision, request)
        ids = {}
        for kind, data in (("model_response", raw), ("spaces_json", content.encode())):
            ids[kind] = new_id("art")
            path = f"runs/{run}/step-0/{kind}-{uuid.uuid4().hex}.json"
            await io.put(path, data, "application/json")
            metadata = json.dumps({"sha256": "0" * 64, "byte_size": len(data)})
            await io.execute(sql.STORE_ARTIFACT, ids[kind], run, kind, s.s3_bucket, path, metadata)
        output = self.event(
            0,
            event,
            image_artifact_id=image["artifact_id"],
            spaces_artifact_id=ids["spaces_json"],
            raw_artifact_id=ids["model_response"],
        )
        await io.produce(self.args.output, output, run)
        await self.finish(event, epoch)

    async def _held(self, event: dict[str, Any]) -> tuple[Any, dict[str, Any], object]:
        """The lease with the run, both artifacts by kind, and the stored Spaces document."""
        io = self.io
        key, run = self.key(event), event["run_id"]
        lease = await io.fetchrow(sql.LEASE_WITH_RUN, key, run, self.lease_s)
        wanted = [event["image_artifact_id"], event["spaces_artifact_id"]]
        found = {row["kind"]: row for row in await io.fetch(sql.ARTIFACTS, wanted)}
        stored = found["spaces_json"]
        spaces = json.loads(await io.get(stored["bucket"], stored["path"]))
        return lease, found, spaces

    async def comparison_worker(self, event: dict[str, Any]) -> None:
        io, run, s = self.io, event["run_id"], self.settings
        lease, _, spaces = await self._held(event)
        messages = comparison_messages(lease["request_text"], spaces)
        request = _request(COMPARISON, messages, COMPARISON.schema, s.model_max_output_tokens)
        await io.chat(run, "compare", s.model_text, request)
        ids = {f: event[f] for f in ("image_artifact_id", "spaces_artifact_id")}
        await io.produce(self.args.output, self.event(0, event, **ids), run)
        await self.finish(event, lease["epoch"])

    async def supervisor(self, event: dict[str, Any]) -> None:
        io, run, s = self.io, event["run_id"], self.settings
        lease, found, spaces = await self._held(event)
        image = found["source_image"]
        messages = audit_messages(image["url"], spaces, event["failures"], lease["request_text"])
        request = _request(AUDIT, messages, AUDIT.schema, s.model_max_output_tokens)
        await io.chat(run, "audit", s.model_vision, request)
        ids = {f: event[f] for f in ("image_artifact_id", "spaces_artifact_id")}
        await io.produce(self.args.output, self.event(0, event, **ids), run)
        await io.fetchval(sql.ROUTE, run, 1)
        following = {"step_id": 1, "attempt": 1, "idempotency_key": step_key(run, 1, 1)}
        render = self.event(1, event, source_artifact_id=image["artifact_id"], **following)
        await io.produce(self.args.output2, render, run)
        await self.finish(event, lease["epoch"])

    async def one(self, step: Callable[[dict[str, Any]], Awaitable[None]], event: Any) -> None:
        try:
            await step(event)
            self.runs += 1
        except Exception as exc:
            log.exception("%s failed on %s", self.hop, event.get("run_id"))
            self.errors.append(f"{type(exc).__name__}: {exc}"[:300])

    async def serve(self, consumer: AIOKafkaConsumer, stop: asyncio.Event) -> None:
        """Receive each event's job, then hand the step to a task (at most ``model_concurrency``
        at once); commit what was received every ``broker_commit_interval_s``."""
        step = getattr(self, self.hop)
        slots = asyncio.Semaphore(self.settings.model_concurrency)
        tasks: set[asyncio.Task[None]] = set()
        committed = time.monotonic()
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for record in records:
                    self.io.ops["kafka_consume"] += 1
                    raw = record.value or b"{}"
                    event = json.loads(raw)
                    payload = f'{{"topic":"{self.args.input}","event":{raw.decode()}}}'
                    await self.io.execute(
                        sql.RECEIVE, self.key(event), event["run_id"], self.hop, payload
                    )
                    await slots.acquire()
                    task = asyncio.create_task(self.one(step, event))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                    task.add_done_callback(lambda _: slots.release())
            if time.monotonic() - committed >= self.settings.broker_commit_interval_s:
                await consumer.commit()
                committed = time.monotonic()
        await asyncio.gather(*tasks)
        await consumer.commit()

    async def sink(self, consumer: AIOKafkaConsumer, stop: asyncio.Event) -> None:
        """Each fetch one batch: BEGIN, INSERT (pipelined), the runs' UPDATE, the read of what
        was stored, COMMIT; then the batch's offsets."""
        io, s = self.io, self.settings
        while not stop.is_set():
            fetched = await consumer.getmany(
                timeout_ms=round(s.sink_batch_s * 1000), max_records=s.sink_batch_size
            )
            rows = []
            for records in fetched.values():
                for record in records:
                    io.ops["kafka_consume"] += 1
                    raw = record.value or b"{}"
                    d = json.loads(raw)
                    rows.append((d["idempotency_key"], d["run_id"], d["decision"], raw.decode()))
            if not rows:
                continue
            async with io.pool.acquire() as conn:
                io.ops["postgres"] += 2  # BEGIN and COMMIT
                async with conn.transaction():
                    io.ops["postgres"] += 3
                    await conn.executemany(sql.DECISIONS, rows)
                    await conn.execute(sql.RUNS_ADVANCED, [row[1] for row in rows])
                    await conn.fetch(sql.STORED, [row[0] for row in rows])
            await consumer.commit({tp: records[-1].offset + 1 for tp, records in fetched.items()})
            self.runs += len(rows)
            self.batches += 1

    def counts(self) -> dict[str, object]:
        """What this process did: runs finished, sink batches, operations by kind, errors."""
        return {
            "hop": self.hop,
            "runs": self.runs,
            "batches": self.batches,
            "ops": dict(self.io.ops),
            "errors": self.errors[:5],
        }


async def _run(hop: str, args: argparse.Namespace) -> None:
    floor = Floor(hop, args, Settings.from_env(os.environ))
    await floor.io.open()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=floor.settings.kafka_bootstrap,
        group_id=args.group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await consumer.start()
    consumer.subscribe([args.input], listener=Announce())
    try:
        await (floor.sink if hop == SINK else floor.serve)(consumer, stop)
    finally:
        await consumer.stop()
        await floor.io.close()
        Path(args.counts).write_text(json.dumps(floor.counts()), encoding="utf-8")


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="io_floor", description=__doc__)
    parser.add_argument("hop", choices=[*HOPS, SINK])
    parser.add_argument("--in", dest="input", required=True)
    parser.add_argument("--out", dest="output", default="")
    parser.add_argument("--out2", dest="output2", default="")
    parser.add_argument("--changelog", default="")
    parser.add_argument("--template", default="")
    parser.add_argument("--template2", default="")
    parser.add_argument("--group", required=True)
    parser.add_argument("--counts", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(_run(args.hop, args))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

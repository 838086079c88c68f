"""A raw aiokafka consume-produce hop, run as a child process: the baseline of an agent hop.

``python -m planstream.dev.bench.raw_hop --in T1 --out T2 --group G --template F.json`` reads JSON
events from T1, builds the next event from the template (copying the run, step, attempt and
idempotency key, with a new event id and time), and produces it to T2 keyed like the input,
with planstream's producer settings (acks=all, the same linger). ``--mode each`` waits for
every send's acknowledgement before the next message, as a planstream agent does; ``--mode
batch`` sends a fetched batch and then waits for all of it. Offsets are committed after the
outputs are acknowledged, every ``--commit-s``, like Faust's commit interval.
"""

import argparse
import asyncio
import json
import signal
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition

__all__ = ["COPIED", "Announce", "main", "next_event"]

COPIED = ("run_id", "step_id", "attempt", "idempotency_key")


def next_event(template: dict[str, Any], data: bytes) -> bytes:
    """The template as the next event of the run in ``data`` (parsed and re-encoded as JSON)."""
    event = json.loads(data)
    out = dict(template)
    for name in COPIED:
        if name in event:
            out[name] = event[name]
    out["event_id"] = f"evt_{uuid.uuid4().hex}"
    out["occurred_at"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return json.dumps(out, separators=(",", ":"), ensure_ascii=False).encode()


class Announce(ConsumerRebalanceListener):  # type: ignore[misc]
    """Prints "Ready" once the group gave this consumer its partitions."""

    def __init__(self) -> None:
        self.announced = False

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        return None

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        if assigned and not self.announced:
            self.announced = True
            print(f"Ready ({len(assigned)} partitions)", flush=True)


async def _hop(args: argparse.Namespace) -> None:
    template = json.loads(Path(args.template).read_text(encoding="utf-8"))
    consumer = AIOKafkaConsumer(
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=args.bootstrap, acks="all", linger_ms=args.linger_ms
    )
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await producer.start()
    await consumer.start()
    consumer.subscribe([args.input], listener=Announce())
    committed = time.monotonic()
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=200)
            pending = []
            for records in batch.values():
                for record in records:
                    value = next_event(template, record.value or b"{}")
                    if args.mode == "each":
                        await producer.send_and_wait(args.output, value, key=record.key)
                    else:
                        pending.append(await producer.send(args.output, value, key=record.key))
            await asyncio.gather(*pending)
            if batch and time.monotonic() - committed >= args.commit_s:
                await consumer.commit()
                committed = time.monotonic()
        await consumer.commit()
    finally:
        await consumer.stop()
        await producer.stop()


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="raw_hop", description=__doc__)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--in", dest="input", required=True)
    parser.add_argument("--out", dest="output", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--template", required=True)
    parser.add_argument("--mode", choices=["each", "batch"], default="each")
    parser.add_argument("--linger-ms", type=int, default=1)
    parser.add_argument("--commit-s", type=float, default=0.5)
    asyncio.run(_hop(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

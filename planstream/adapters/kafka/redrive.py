"""Dead letters: list what was refused, and put it back on its topic after a fix (audited).

A redrive re-publishes the original bytes, key and headers to the topic they came from, and
records it in ``dead_letter_redrives`` in the same transaction that guards it, so one dead
letter is redriven at most once (a crash between the send and the commit may send it twice;
the workers' job leases absorb that).
"""

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime

from aiokafka import AIOKafkaProducer

from planstream.adapters.kafka import read_all
from planstream.adapters.kafka.security import client_options
from planstream.adapters.postgres.db import connect
from planstream.domain.errors import PermanentError
from planstream.settings import Settings
from topics import CATALOGUE, DEAD_LETTER

__all__ = ["DeadLetter", "RedriveRefused", "read_dead_letters", "redrive", "select"]


class RedriveRefused(PermanentError):
    """A dead letter names a source topic outside this deployment's catalogue."""


@dataclass(frozen=True)
class DeadLetter:
    """One refused message, where it came from and why."""

    partition: int
    offset: int
    run_id: str | None
    source_topic: str
    source_partition: int | None
    source_offset: int | None
    error: str
    service: str | None
    dead_lettered_at: datetime | None
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]

    def summary(self) -> dict[str, object]:
        """The letter as JSON-ready fields, without its payload."""
        fields = asdict(self)
        for name in ("key", "value", "headers"):
            fields.pop(name)
        fields["dead_lettered_at"] = (
            self.dead_lettered_at.isoformat() if self.dead_lettered_at else None
        )
        fields["value_bytes"] = len(self.value or b"")
        return fields


def _letter(
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[tuple[str, bytes]],
) -> DeadLetter:
    meta = {name: data.decode(errors="replace") for name, data in headers}

    def number(name: str) -> int | None:
        text = meta.get(f"planstream-{name}")
        return int(text) if text and text.lstrip("-").isdigit() else None

    when = meta.get("planstream-dead-lettered-at")
    run_id = key.decode(errors="replace") if key else None
    return DeadLetter(
        partition=partition,
        offset=offset,
        run_id=run_id if run_id and run_id.startswith("run_") else None,
        source_topic=meta.get("planstream-source-topic", ""),
        source_partition=number("source-partition"),
        source_offset=number("source-offset"),
        error=meta.get("planstream-error", ""),
        service=meta.get("planstream-service"),
        dead_lettered_at=datetime.fromisoformat(when) if when else None,
        key=key,
        value=value,
        headers=tuple(headers),
    )


async def read_dead_letters(settings: Settings) -> list[DeadLetter]:
    """Every dead letter now on the topic, oldest first per partition."""
    records = await read_all(settings, DEAD_LETTER.full_name(settings.topic_namespace))
    return [_letter(r.partition, r.offset, r.key, r.value, list(r.headers)) for r in records]


def select(
    letters: Sequence[DeadLetter], run_id: str | None, since: datetime | None
) -> list[DeadLetter]:
    """The letters of one run and/or dead-lettered at or after ``since``."""
    return [
        letter
        for letter in letters
        if (run_id is None or letter.run_id == run_id)
        and (
            since is None
            or (letter.dead_lettered_at is not None and letter.dead_lettered_at >= since)
        )
    ]


async def redrive(
    settings: Settings, letters: Sequence[DeadLetter], operator: str, reason: str
) -> tuple[int, int]:
    """Put ``letters`` back on their topics; returns (redriven, already redriven before)."""
    allowed = {spec.full_name(settings.topic_namespace) for spec in CATALOGUE} - {
        DEAD_LETTER.full_name(settings.topic_namespace)
    }
    refused = sorted({letter.source_topic for letter in letters} - allowed)
    if refused:
        raise RedriveRefused(f"not a topic of this deployment: {', '.join(refused)}")
    producer = AIOKafkaProducer(**client_options(settings), acks="all", enable_idempotence=True)
    conn = await connect(settings.dsn)
    await producer.start()
    done = skipped = 0
    try:
        for letter in letters:
            async with conn.transaction():
                claimed = await conn.fetchval(
                    "INSERT INTO dead_letter_redrives (dlq_partition, dlq_offset, source_topic,"
                    " source_partition, source_offset, run_id, error, operator, reason)"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
                    " ON CONFLICT DO NOTHING RETURNING 1",
                    letter.partition,
                    letter.offset,
                    letter.source_topic,
                    letter.source_partition,
                    letter.source_offset,
                    letter.run_id,
                    letter.error[:1_000],
                    operator,
                    reason,
                )
                if not claimed:
                    skipped += 1
                    continue
                origin = f"{letter.partition}:{letter.offset}".encode()
                headers = [
                    *((k, v) for k, v in letter.headers if not k.startswith("planstream-")),
                    ("planstream-redrive-of", origin),
                ]
                await producer.send_and_wait(
                    letter.source_topic, letter.value, key=letter.key, headers=headers
                )
                done += 1
    finally:
        await producer.stop()
        await conn.close()
    return done, skipped


def operator_name() -> str:
    """Who is redriving, for the audit record (the login name, or "operator")."""
    return os.environ.get("USER") or "operator"


def dumps(letter: DeadLetter) -> str:
    return json.dumps(letter.summary(), default=str)

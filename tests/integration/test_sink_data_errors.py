"""The decisions sink on records PostgreSQL refuses as data, against the real broker and database:
a decision for an unknown run (a foreign key), one whose time PostgreSQL cannot hold (a value out
of range) and a raw-produced one with a NUL in its text are each dead-lettered with the error in
its headers, every good decision of the same batches is stored, and the offsets are committed —
while an outage (a real PostgreSQL connection killed under the write) is still waited out."""

import asyncio
from collections.abc import Sequence
from datetime import datetime

import asyncpg
import pytest

from planstream.adapters.kafka import ProducerDeadLetters
from planstream.adapters.kafka.decisions_sink import SERVICE, DecisionsSink, new_consumer, opened
from planstream.adapters.postgres.db import DATA_ERRORS, OUTAGE_ERRORS
from planstream.adapters.postgres.decision_log import DecisionLog, Stored
from planstream.adapters.postgres.repository import Repository
from planstream.domain.events import DecisionMade
from planstream.domain.ids import new_id
from planstream.settings import Settings
from tests.integration.test_decision_log import _decision
from tests.integration.test_decisions_sink import (
    _decisions,
    _lag,
    _own,
    _publish,
    _stored,
)
from tests.stackkit import Record, read_topic, wait_for
from topics import DEAD_LETTER

# A time pydantic takes (aware, year 9999) that asyncpg cannot turn into a timestamptz (UTC).
_OUT_OF_RANGE = datetime.fromisoformat("9999-12-31T23:59:59-14:00")


def _with_nul(run_id: str) -> bytes:
    """A decision a raw producer could send: valid JSON and shape, a NUL in ``audit_note``."""
    good = _decision(run_id, 0, 1, "proceed", audit_note="looks fine")
    return good.model_dump_json().replace("looks fine", "looks\\u0000fine").encode()


async def _caught_up(settings: Settings) -> bool:
    """Every partition that holds records has them all committed (an empty one never is)."""
    return all(committed == end for committed, end in (await _lag(settings)).values() if end)


def _letters_by_key(letters: Sequence[Record]) -> dict[bytes | None, dict[str, bytes]]:
    return {letter.key: dict(letter.headers) for letter in letters}


async def test_refused_records_are_dead_lettered_and_the_good_ones_stored(
    repo: Repository, pool: asyncpg.Pool, settings: Settings
) -> None:
    own = await _own(settings, batch=50)  # one batch holds good and bad records alike
    good = await _decisions(repo, own, 12)
    unknown = _decision(new_id("run"), 0, 1, "proceed")  # no such run: a foreign-key error
    late = _decision((await _decisions(repo, own, 1))[0].run_id, 0, 1, "proceed")
    late = late.model_copy(update={"occurred_at": _OUT_OF_RANGE})
    nul_run = (await _decisions(repo, own, 1))[0].run_id
    await _publish(own, [*good[:6], unknown, late, *good[6:]], _with_nul(nul_run))
    stop = asyncio.Event()
    async with opened(own, stop) as sink:
        running = asyncio.create_task(sink.run())
        await wait_for(lambda: _caught_up(own), timeout_s=60)
        stop.set()
        await asyncio.wait_for(running, timeout=10)

    assert sorted(await _stored(pool, good)) == sorted(d.idempotency_key for d in good)
    assert await _stored(pool, [unknown, late]) == []
    letters = _letters_by_key(await read_topic(own, DEAD_LETTER))
    assert set(letters) == {unknown.run_id.encode(), late.run_id.encode(), b"poison"}
    fk = letters[unknown.run_id.encode()]
    assert fk["planstream-error-class"] == b"ForeignKeyViolationError"
    assert b"foreign key" in fk["planstream-error"]
    assert fk["planstream-service"] == SERVICE.encode()
    out_of_range = letters[late.run_id.encode()]
    assert out_of_range["planstream-error-class"] == b"DataError"
    assert b"out of range" in out_of_range["planstream-error"]
    nul = letters[b"poison"]  # refused before PostgreSQL: at decode, naming the field
    assert nul["planstream-error-class"] == b"EventRejected"
    assert b"audit_note" in nul["planstream-error"] and b"U+0000" in nul["planstream-error"]
    status = await pool.fetchval("SELECT status FROM pipeline_runs WHERE run_id = $1", nul_run)
    assert status == "pending"  # the refused decision moved nothing


async def test_a_nul_that_reaches_postgresql_is_a_data_error_not_an_outage(
    repo: Repository, pool: asyncpg.Pool, settings: Settings
) -> None:
    """Should a NUL ever get past decoding, PostgreSQL's refusal is classed as the record's."""
    [decision] = await _decisions(repo, settings, 1)
    smuggled = decision.model_copy(update={"audit_note": "x\x00"})  # as no decode would allow
    with pytest.raises(DATA_ERRORS) as refused:
        await DecisionLog(pool).write([smuggled])
    assert not isinstance(refused.value, OUTAGE_ERRORS)
    assert isinstance(refused.value, asyncpg.UntranslatableCharacterError)  # \u0000 in jsonb
    with pytest.raises(asyncpg.CharacterNotInRepertoireError):  # and 0x00 in text
        await pool.execute("SELECT $1::text", "x\x00")


class _KilledOnce(DecisionLog):
    """A DecisionLog whose first write loses its connection: PostgreSQL itself terminates it."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        super().__init__(pool)
        self.outages: list[BaseException] = []

    async def write(self, decisions: Sequence[DecisionMade]) -> list[Stored]:
        if not self.outages:
            try:
                async with self._pool.acquire() as conn:
                    await conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")
            except Exception as exc:
                self.outages.append(exc)
                raise
        return await super().write(decisions)


async def test_an_outage_is_waited_out_and_nothing_dead_lettered(
    repo: Repository, pool: asyncpg.Pool, settings: Settings
) -> None:
    own = await _own(settings, batch=10)
    decisions = await _decisions(repo, own, 5)
    await _publish(own, decisions)
    killed, stop = _KilledOnce(pool), asyncio.Event()
    dead_letters = ProducerDeadLetters(own, SERVICE)
    await dead_letters.start()
    consumer = new_consumer(own)
    await consumer.start()
    try:
        sink = DecisionsSink(own, consumer, killed, dead_letters, stop)
        running = asyncio.create_task(sink.run())
        await wait_for(lambda: _caught_up(own), timeout_s=60)
        stop.set()
        await asyncio.wait_for(running, timeout=10)
    finally:
        await consumer.stop()
        await dead_letters.stop()
    [outage] = killed.outages
    assert isinstance(outage, OUTAGE_ERRORS), type(outage)
    assert sorted(await _stored(pool, decisions)) == sorted(d.idempotency_key for d in decisions)
    assert await read_topic(own, DEAD_LETTER) == []
    assert sum(end for _, end in (await _lag(own)).values()) == len(decisions)

"""The replay tests' isolation checker: a fingerprint of every table and sequence of a schema.

A replay must change nothing of production's. ``fingerprint`` reads, for every base table of
the schema (public: production), its row count and an md5 of all its rows in a fixed order, and
every sequence's last value; ``differences`` names what changed between two fingerprints. Every
row is read, so it is for test databases, taken while nothing else writes.
"""

from collections.abc import Collection
from typing import Any

import asyncpg

__all__ = ["differences", "fingerprint"]

_TABLES = """
SELECT table_name FROM information_schema.tables
WHERE table_schema = $1 AND table_type = 'BASE TABLE' ORDER BY table_name
"""
_SEQUENCES = """
SELECT sequencename, coalesce(last_value, 0) AS last_value FROM pg_sequences
WHERE schemaname = $1 ORDER BY sequencename
"""


def _quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


async def fingerprint(
    pool: asyncpg.Pool, schema: str = "public", skip: Collection[str] = ()
) -> dict[str, Any]:
    """``{"table T": (rows, md5 of the rows), "sequence S": last value}`` for ``schema``, but
    the tables in ``skip`` (``model_rate_buckets``, which a live replay shares on purpose)."""
    found: dict[str, Any] = {}
    async with pool.acquire() as conn:
        for row in await conn.fetch(_TABLES, schema):
            name = row["table_name"]
            if name in skip:
                continue
            counted = await conn.fetchrow(
                "SELECT count(*) AS n,"
                " md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) AS digest"
                f" FROM {_quoted(schema)}.{_quoted(name)} AS t"
            )
            found[f"table {name}"] = (counted["n"], counted["digest"])
        for row in await conn.fetch(_SEQUENCES, schema):
            found[f"sequence {row['sequencename']}"] = row["last_value"]
    return found


def differences(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """What changed from ``before`` to ``after``, one line per table or sequence."""
    lines = []
    for name in sorted(before.keys() | after.keys()):
        was, now = before.get(name), after.get(name)
        if was != now:
            lines.append(f"{name}: {was} -> {now}")
    return lines

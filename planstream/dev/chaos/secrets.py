"""I7: canary secrets must never reach a log, a topic, a dead letter or a database column.

Logs are read as written: text lines as they are, JSON lines (the services' form) decoded, so
a secret is found however the encoder escaped it.

The harness runs every process with canary credentials (the model API key, the S3 secret key,
and on the private PostgreSQL the role's password). A scan counts each canary's occurrences in
every log file the harness produced, every record (value and headers) of the session's topics,
and every text/json column of the session's database; it also counts presigned-URL signatures
in logs and topics (a signed URL is a bearer credential) and raw terminal escapes in logs.
"""

import json
import re
import secrets as random_secrets
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from planstream.dev.chaos.streams import Record

__all__ = ["Canaries", "Scan", "scan_database", "scan_logs", "scan_records"]

SIGNATURE = "X-Amz-Signature="
_ESCAPE = re.compile(rb"\x1b\[")
_DB_TYPES = ("text", "character varying", "json", "jsonb")
# A presigned URL cached on its artifact is stored there by design (never logged or returned).
_SIGNED_URL_COLUMNS = {("pipeline_artifacts", "signed_url_cached")}


@dataclass(frozen=True)
class Canaries:
    """Fake secrets, unique per session, recognisable in any output."""

    model_api_key: str
    s3_secret_access_key: str
    postgres_password: str

    @classmethod
    def new(cls) -> "Canaries":
        tag = random_secrets.token_hex(8)
        return cls(
            model_api_key=f"sk-canary-{tag}-model",
            s3_secret_access_key=f"aws-canary-{tag}-secret",
            postgres_password=f"pg-canary-{tag}-password",
        )

    def values(self) -> tuple[str, ...]:
        return (self.model_api_key, self.s3_secret_access_key, self.postgres_password)


@dataclass
class Scan:
    """Where canaries and signatures were found (``place`` strings, at most 20 kept)."""

    hits: Counter[str] = field(default_factory=Counter)
    signatures: int = 0
    escapes: int = 0
    places: list[str] = field(default_factory=list)

    @property
    def canary_hits(self) -> int:
        return sum(self.hits.values())

    def add(self, other: "Scan") -> "Scan":
        self.hits.update(other.hits)
        self.signatures += other.signatures
        self.escapes += other.escapes
        self.places.extend(other.places[: max(0, 20 - len(self.places))])
        return self

    def _hit(self, canary: str, place: str, count: int) -> None:
        self.hits[canary] += count
        if len(self.places) < 20:
            self.places.append(f"{place}: canary {canary[:14]}… x{count}")


def _count_in(data: bytes, canaries: Iterable[str], scan: Scan, place: str) -> None:
    for canary in canaries:
        count = data.count(canary.encode())
        if count:
            scan._hit(canary, place, count)


def scan_logs(
    paths: Sequence[Path], canaries: Iterable[str], offsets: dict[Path, int] | None = None
) -> Scan:
    """Canaries, signed-URL signatures and raw ANSI escapes in log files (from ``offsets``)."""
    scan = Scan()
    values = list(canaries)
    for path in paths:
        try:
            with path.open("rb") as log:
                log.seek((offsets or {}).get(path, 0))
                data = log.read()
        except OSError:
            continue
        readable = _readable(data)
        _count_in(readable, values, scan, str(path))
        signatures = readable.count(SIGNATURE.encode())
        if signatures:
            scan.signatures += signatures
            if len(scan.places) < 20:
                scan.places.append(f"{path}: {signatures} presigned signatures")
        scan.escapes += len(_ESCAPE.findall(data))
    return scan


def _readable(data: bytes) -> bytes:
    """``data`` with each JSON log line replaced by its keys and string values, decoded: a
    secret a JSON encoder escaped (``\\u0073k-...``, ``\\/``) reads as itself there. Other
    lines (a text log, a traceback printed outside logging) are kept as they are."""
    lines = []
    for line in data.split(b"\n"):
        if line.startswith(b"{") and b"\\" in line:  # only an escape makes the two differ
            try:
                lines.append("\t".join(_strings(json.loads(line))).encode())
                continue
            except ValueError:
                pass
        lines.append(line)
    return b"\n".join(lines)


def _strings(value: object) -> list[str]:
    """Every key and string inside a decoded JSON value."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for key, item in value.items() for text in (key, *_strings(item))]
    if isinstance(value, list):
        return [text for item in value for text in _strings(item)]
    return []


def log_offsets(paths: Sequence[Path]) -> dict[Path, int]:
    """Where each log ends now, so a later scan reads only what came after."""
    sizes = {}
    for path in paths:
        try:
            sizes[path] = path.stat().st_size
        except OSError:
            sizes[path] = 0
    return sizes


def scan_records(records: Sequence[Record], canaries: Iterable[str]) -> Scan:
    """Canaries and signatures in record keys, values and headers (dead letters included)."""
    scan = Scan()
    values = list(canaries)
    for record in records:
        parts = [record.key or b"", record.value or b""]
        parts += [key.encode() + b"=" + value for key, value in record.headers]
        data = b"\n".join(parts)
        place = f"{record.topic}[{record.partition}]@{record.offset}"
        _count_in(data, values, scan, place)
        signatures = data.count(SIGNATURE.encode())
        if signatures:
            scan.signatures += signatures
            scan.places.append(f"{place}: presigned signature")
    return scan


async def scan_database(conn: asyncpg.Connection, canaries: Iterable[str]) -> Scan:
    """Canaries in every text, varchar, json and jsonb column of the public schema."""
    scan = Scan()
    columns = await conn.fetch(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = 'public' AND data_type = ANY($1::text[])",
        list(_DB_TYPES),
    )
    for canary in canaries:
        for table, column in ((r["table_name"], r["column_name"]) for r in columns):
            count = await conn.fetchval(
                f'SELECT count(*) FROM "{table}" WHERE strpos("{column}"::text, $1) > 0', canary
            )
            if count:
                scan._hit(canary, f"{table}.{column}", int(count))
    for table, column in ((r["table_name"], r["column_name"]) for r in columns):
        if (table, column) in _SIGNED_URL_COLUMNS:
            continue
        count = await conn.fetchval(
            f'SELECT count(*) FROM "{table}" WHERE strpos("{column}"::text, $1) > 0', SIGNATURE
        )
        if count:
            scan.signatures += int(count)
            scan.places.append(f"{table}.{column}: {count} presigned signatures")
    return scan

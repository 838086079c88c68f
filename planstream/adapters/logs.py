"""Structured logs: one setup for every entry point, JSON lines or text, secrets redacted.

Only an entry point (``planstream ...``, ``python -m agents ...``) calls ``install``: one handler
on the root logger, writing to standard error. Code logs with ``logging.getLogger(__name__)``
and passes structured fields through ``extra=`` (``run_id``, ``step_id``, ``job_id``...);
``bound(...)`` adds fields to every line logged inside it, in the same task and in the tasks it
starts (the Faust app binds the event it handles, so a line logged deep in a service carries
the run without each call passing it).

A JSON line holds ``ts, level, logger, msg, service, instance_id``, then ``trace_id`` and
``span_id`` inside a span, then the bound and ``extra=`` fields, then ``exc``. planstream's own
loggers log at ``log_level``; every other logger (aiokafka, botocore, Faust, asyncpg) at
``log_library_level``, WARNING unless asked. Nothing is written before the redactor has cut
signed-URL signatures, ``sk-`` keys, passwords in URLs and the settings' own secrets out of it.
"""

import contextlib
import json
import logging
import os
import re
import socket
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Final, Literal, TextIO

from planstream.settings import Settings

__all__ = [
    "CONTEXT_FIELDS",
    "OWN_LOGGERS",
    "JsonFormatter",
    "Redactor",
    "TextFormatter",
    "bound",
    "install",
    "instance_id",
]

CONTEXT_FIELDS: Final = ("run_id", "step_id", "attempt", "job_id", "topic", "partition", "offset")
"""The fields a line carries wherever they are known (from ``bound`` or ``extra=``)."""
OWN_LOGGERS: Final = ("planstream", "agents", "topics")
_HEAD: Final = ("ts", "level", "logger", "msg", "service", "instance_id", "trace_id", "span_id")
_RECORD_KEYS: Final = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
_REDACTED: Final = "[redacted]"

_bound: ContextVar[Mapping[str, object]] = ContextVar("planstream_log_fields")
_NOTHING_BOUND: Final[Mapping[str, object]] = MappingProxyType({})

# Credentials that have a shape: signed-URL query parameters, OpenAI-style keys, a password in a
# URL or DSN, bearer tokens, and ``password=...`` pairs (as text, a dict repr or JSON).
_SHAPES: Final = (
    (
        re.compile(
            r"(?i)([?&](?:x-amz-signature|x-amz-credential|x-amz-security-token|signature|sig"
            r"|token|access_token|api_key|apikey|awsaccesskeyid)=)[^&\s\"'#<>]*"
        ),
        rf"\g<1>{_REDACTED}",
    ),
    (re.compile(r"\bsk-[A-Za-z0-9_\-]{6,}"), _REDACTED),
    (re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^:/@\s]*:)[^@\s/]+@"), rf"\g<1>{_REDACTED}@"),
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/\-]+=*"), rf"\g<1>{_REDACTED}"),
    (
        re.compile(
            r"(?i)\b(password|passwd|secret_access_key)(['\"]?\s*[=:]\s*['\"]?)"
            r"[^\s,;'\"&}]+"
        ),
        rf"\g<1>\g<2>{_REDACTED}",
    ),
)


class Redactor:
    """Cuts known secret values and credential-shaped text out of a string.

    A known value shorter than ``MIN_SECRET_CHARS``, or equal to a name that is no secret (the
    local stack's password is its user and database name, ``planstream``), is not cut by value:
    it would cut ordinary words out of every line. Its shapes (a URL's password, ``password=``)
    still are.
    """

    MIN_SECRET_CHARS: Final = 8

    def __init__(self, secrets: Iterable[str | None] = (), public: Iterable[str] = ()) -> None:
        names = set(public)
        known = {s for s in secrets if s and len(s) >= self.MIN_SECRET_CHARS and s not in names}
        self._secrets = sorted(known, key=len, reverse=True)  # a secret holding another: whole

    @classmethod
    def of(cls, settings: Settings) -> "Redactor":
        """A redactor of the settings' own secrets (and every credential-shaped text)."""
        dsn = re.search(
            r"://([^:/@\s]*):([^@\s/]+)@[^/\s]*/?([^?\s]*)", settings.postgres_dsn or ""
        )
        return cls(
            (
                settings.model_api_key,
                settings.s3_secret_access_key,
                settings.postgres_password,
                settings.legacy_auth_token,
                dsn.group(2) if dsn else None,
            ),
            public=(
                settings.postgres_user,
                settings.postgres_db,
                settings.s3_bucket,
                *((dsn.group(1), dsn.group(3)) if dsn else ()),
            ),
        )

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, _REDACTED)
        for pattern, replacement in _SHAPES:
            text = pattern.sub(replacement, text)
        return text


def instance_id(settings: Settings) -> str:
    """This process in logs and traces: the setting, or ``<host name>-<pid>``."""
    return settings.instance_id or f"{socket.gethostname()}-{os.getpid()}"


@contextlib.contextmanager
def bound(**fields: object) -> Iterator[None]:
    """Add ``fields`` (those not None) to every line logged inside the block, and in the tasks
    started inside it."""
    merged = {**_bound.get(_NOTHING_BOUND), **{k: v for k, v in fields.items() if v is not None}}
    token = _bound.set(MappingProxyType(merged))
    try:
        yield
    finally:
        _bound.reset(token)


def _trace_ids() -> dict[str, str]:
    """``trace_id`` and ``span_id`` of the current span (planstream.adapters.tracing), if any.
    Looked up only once OpenTelemetry is loaded: before that no span can be current, and a
    command that traces nothing (``planstream decide``) does not pay for loading it."""
    api: Any = sys.modules.get("opentelemetry.trace")
    if api is None:
        return {}
    span = api.get_current_span().get_span_context()
    if not span.is_valid:
        return {}
    return {"trace_id": f"{span.trace_id:032x}", "span_id": f"{span.span_id:016x}"}


def _fields(record: logging.LogRecord) -> dict[str, object]:
    """The bound fields, then the record's own ``extra=`` fields (which win)."""
    fields: dict[str, object] = dict(_bound.get(_NOTHING_BOUND))
    for key, value in vars(record).items():
        if key not in _RECORD_KEYS and not key.startswith("_"):
            fields[f"extra.{key}" if key in _HEAD else key] = value
    return fields


class _Formatter(logging.Formatter):
    """What both forms share: the process's identity, the redactor, a size cap per value."""

    def __init__(self, service: str, instance: str, redact: Redactor, max_chars: int) -> None:
        super().__init__()
        self.service = service
        self.instance = instance
        self.redact = redact
        self.max_chars = max_chars

    def clean(self, text: str) -> str:
        """``text`` cut to the cap, then redacted (a secret cut in two is still redacted)."""
        if len(text) > self.max_chars:
            text = f"{text[: self.max_chars]}… ({len(text)} chars)"
        return self.redact(text)

    def exception(self, record: logging.LogRecord) -> str | None:
        parts = []
        if record.exc_info:
            parts.append("".join(traceback.format_exception(*record.exc_info)))
        elif record.exc_text:
            parts.append(record.exc_text)
        if record.stack_info:
            parts.append(record.stack_info)
        return self.clean("\n".join(parts).rstrip()) if parts else None


class JsonFormatter(_Formatter):
    """One JSON object per line; every non-ASCII or control character escaped, so no value
    can break a line or forge another."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "msg": self.clean(record.getMessage()),
            "service": self.service,
            "instance_id": self.instance,
            **_trace_ids(),
        }
        for key, value in _fields(record).items():
            line[key] = self._value(value)
        exc = self.exception(record)
        if exc:
            line["exc"] = exc
        return json.dumps(line, ensure_ascii=True, default=str)

    def _value(self, value: object) -> object:
        if value is None or isinstance(value, bool | int | float):
            return value
        return self.clean(value if isinstance(value, str) else str(value))


class TextFormatter(_Formatter):
    """``ts level logger [service] msg key=value ...`` for a terminal; control characters in a
    message are escaped and a traceback is indented, so no line can pass for a record."""

    def format(self, record: logging.LogRecord) -> str:
        fields = {**_trace_ids(), **_fields(record)}
        pairs = " ".join(f"{key}={_escaped(self.clean(str(v)))}" for key, v in fields.items())
        head = (
            f"{_timestamp(record)} {record.levelname:<7} {record.name} [{self.service}] "
            f"{_escaped(self.clean(record.getMessage()))}"
        )
        line = f"{head}  {pairs}" if pairs else head
        exc = self.exception(record)
        if exc:
            line += "\n" + "\n".join(f"  {_escaped(part)}" for part in exc.splitlines())
        return line


_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")


def _escaped(text: str) -> str:
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def _timestamp(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


def install(
    settings: Settings,
    service: str,
    form: Literal["json", "text"],
    stream: TextIO | None = None,
) -> logging.Handler:
    """Replace the root logger's handlers with one that writes ``form`` lines to ``stream``
    (standard error); set planstream's level and the libraries' level. Returns the handler."""
    formatter: Callable[..., _Formatter] = JsonFormatter if form == "json" else TextFormatter
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(
        formatter(
            service, instance_id(settings), Redactor.of(settings), settings.log_max_field_chars
        )
    )
    root = logging.getLogger()
    for old in list(root.handlers):  # e.g. the one openai's OPENAI_LOG adds at import
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_library_level)
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(settings.log_level)
    logging.captureWarnings(True)
    return handler

"""What the scripted old function accepts and answers (docs/migration.md, "The old function"):
a JSON request of ids, a JSON answer, and errors as ``{"code", "message"}`` with their status."""

import json
import re
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web

from planstream.domain.events import Quality
from planstream.domain.ids import is_id
from planstream.domain.legacy import WORKER_LIMIT_STATUS
from planstream.domain.steps import LAST_STEP

__all__ = ["LegacyError", "StepCall", "error_response", "parse_call", "worker_limit"]

_KEY: Final = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_QUALITIES: Final[dict[str, Quality]] = {"1K": "1K", "2K": "2K", "4K": "4K"}
_FIELDS: Final = {
    "run_id",
    "step_id",
    "attempt",
    "idempotency_key",
    "input_artifact_ids",
    "quality",
}


class LegacyError(Exception):
    """An answer other than 200: its status, its code and what it says."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def worker_limit(message: str) -> LegacyError:
    """The platform's 546: the call needed more memory or CPU than the worker has."""
    return LegacyError(WORKER_LIMIT_STATUS, "WORKER_LIMIT", message)


def error_response(error: LegacyError) -> web.Response:
    body = {"code": error.code, "message": str(error)}
    return web.json_response(body, status=error.status)


@dataclass(frozen=True)
class StepCall:
    """One request: which step attempt, from which images, at which tier."""

    run_id: str
    step_id: int
    attempt: int
    idempotency_key: str
    input_artifact_ids: tuple[str, ...]
    quality: Quality


def _bad(message: str) -> LegacyError:
    return LegacyError(400, "BAD_REQUEST", message)


def parse_call(raw: bytes) -> StepCall:
    """The request body as a step call; 400 BAD_REQUEST naming what is wrong."""
    try:
        body: Any = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise _bad("the body is not JSON") from None
    if not isinstance(body, dict) or set(body) != _FIELDS:
        raise _bad(f"the body is an object of exactly {sorted(_FIELDS)}")
    run_id, step, attempt = body["run_id"], body["step_id"], body["attempt"]
    key, inputs, quality = body["idempotency_key"], body["input_artifact_ids"], body["quality"]
    if not isinstance(run_id, str) or not is_id(run_id) or not run_id.startswith("run_"):
        raise _bad("run_id is not a run id")
    if not isinstance(step, int) or isinstance(step, bool) or not 0 <= step <= LAST_STEP:
        raise _bad(f"step_id is 0-{LAST_STEP}")
    if not isinstance(attempt, int) or isinstance(attempt, bool) or not 1 <= attempt <= 30:
        raise _bad("attempt is 1-30")
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise _bad("idempotency_key is up to 128 of [A-Za-z0-9._:-]")
    if (
        not isinstance(inputs, list)
        or not 1 <= len(inputs) <= 8
        or not all(isinstance(i, str) and is_id(i) and i.startswith("art_") for i in inputs)
    ):
        raise _bad("input_artifact_ids is 1-8 artifact ids")
    if quality not in _QUALITIES:
        raise _bad("quality is 1K, 2K or 4K")
    return StepCall(run_id, step, attempt, key, tuple(inputs), _QUALITIES[quality])

"""The old ``run-pipeline-step`` function over HTTP (aiohttp): ``planstream.ports.LegacyFunction``.

One POST per call, ids only (docs/migration.md has the contract); each outcome becomes a code
(``planstream.domain.legacy``) and the port's answer or error, translated here at the boundary.
Nothing the function answers is trusted: sizes are capped, ids and failures validated, and a
message it sends back is cleaned before it reaches a log or a job's ``last_error``.
"""

import json
import re
import time
from dataclasses import replace
from typing import Any, Final

import aiohttp
from pydantic import ValidationError

from planstream.domain.events import Failure, LegacyStepRequested
from planstream.domain.ids import is_id
from planstream.domain.legacy import RETRYABLE, LegacyCode, code_of
from planstream.domain.rules import clean_detail
from planstream.ports import LegacyAnswer, LegacyCall, LegacyRefused, LegacyUnavailable
from planstream.settings import Settings

__all__ = ["LegacyClient", "request_body"]

_EXECUTION_ID: Final = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_MAX_FAILURES: Final = 24
_MESSAGE_CHARS: Final = 200


def request_body(request: LegacyStepRequested) -> bytes:
    """The request the old function takes: the step attempt's ids, its input ids, its tier."""
    body = {
        "run_id": request.run_id,
        "step_id": request.step_id,
        "attempt": request.attempt,
        "idempotency_key": request.idempotency_key,
        "input_artifact_ids": request.input_artifact_ids,
        "quality": request.quality,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def _message(raw: bytes) -> str:
    """The function's own error message (``{"code", "message"}``), cleaned, or nothing."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return ""
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, str):
        return ""
    printable = "".join(ch for ch in message if ch.isprintable())[:_MESSAGE_CHARS]
    return clean_detail(printable)


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def _answer(raw: bytes, call: LegacyCall) -> LegacyAnswer:
    """The 200 answer, checked field by field; LegacyRefused (BAD_RESPONSE) when unusable."""
    bad = replace(call, code="BAD_RESPONSE")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise LegacyRefused("the old function's answer is not JSON", bad) from None
    if not isinstance(body, dict):
        raise LegacyRefused("the old function's answer is not a JSON object", bad)
    execution = body.get("execution_id")
    output = body.get("output_artifact_id")
    failures = body.get("failures", [])
    if not isinstance(execution, str) or not _EXECUTION_ID.fullmatch(execution):
        raise LegacyRefused("the answer has no usable execution_id", bad)
    if not isinstance(output, str) or not is_id(output) or not output.startswith("art_"):
        raise LegacyRefused("the answer has no artifact id in output_artifact_id", bad)
    if not isinstance(failures, list) or len(failures) > _MAX_FAILURES:
        raise LegacyRefused(f"failures must be a list of at most {_MAX_FAILURES}", bad)
    try:
        checked = tuple(Failure.model_validate(item) for item in failures)
    except ValidationError:
        raise LegacyRefused("a failure in the answer breaks the Failure shape", bad) from None
    return LegacyAnswer(execution, output, checked, call)


class LegacyClient:
    """``LegacyFunction`` over one aiohttp session, opened by ``start``, closed by ``stop``."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        timeout = aiohttp.ClientTimeout(
            total=self._settings.legacy_timeout_s,
            sock_connect=self._settings.legacy_connect_timeout_s,
        )
        self._session = aiohttp.ClientSession(timeout=timeout, raise_for_status=False)

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _headers(self, request: LegacyStepRequested) -> dict[str, str]:
        settings = self._settings
        return {
            "Content-Type": "application/json",
            settings.legacy_auth_header: f"Bearer {settings.legacy_auth_token}",
            "Idempotency-Key": request.idempotency_key,
        }

    async def run_step(self, request: LegacyStepRequested) -> LegacyAnswer:
        """One call; the answer, or LegacyUnavailable (call again) / LegacyRefused (do not)."""
        assert self._session is not None, "LegacyClient.start() was not awaited"
        body = request_body(request)
        limit = self._settings.legacy_max_response_bytes
        started = time.monotonic()

        def ended(code: LegacyCode, status: int | None, size: int) -> LegacyCall:
            latency = int((time.monotonic() - started) * 1000)
            return LegacyCall(code, status, len(body), size, latency)

        try:
            async with self._session.post(
                self._settings.legacy_url, data=body, headers=self._headers(request)
            ) as response:
                raw = await response.content.read(limit + 1)
                status, after = response.status, _retry_after(response.headers)
        except TimeoutError:
            call = ended("TIMEOUT", None, 0)
            raise LegacyUnavailable("the old function did not answer in time", call) from None
        except aiohttp.ClientError as exc:
            call = ended("UNREACHABLE", None, 0)
            what = type(exc).__name__
            raise LegacyUnavailable(f"the old function is unreachable ({what})", call) from None
        code = code_of(status)
        if len(raw) > limit:
            call = ended("BAD_RESPONSE", status, len(raw))
            raise LegacyRefused(f"the old function's answer is over {limit} bytes", call)
        call = ended(code, status, len(raw))
        if code == "OK":
            return _answer(raw, call)
        said = _message(raw)
        message = f"HTTP {status} {code}" + (f": {said}" if said else "")
        if code in RETRYABLE:
            raise LegacyUnavailable(message, call, after)
        raise LegacyRefused(message, call)

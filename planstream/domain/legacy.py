"""The old ``run-pipeline-step`` function's contract, as the legacy bridge reads its answers
(docs/migration.md): each HTTP outcome has one code, and the code says whether to call again.
"""

from typing import Final, Literal, get_args

__all__ = [
    "CODES",
    "RETRYABLE",
    "WORKER_LIMIT_STATUS",
    "LegacyCode",
    "code_of",
]

LegacyCode = Literal[
    "OK",
    "WORKER_LIMIT",
    "TIMEOUT",
    "UNREACHABLE",
    "RATE_LIMITED",
    "SERVER_ERROR",
    "BAD_REQUEST",
    "UNAUTHORIZED",
    "NOT_FOUND",
    "BAD_RESPONSE",
]
CODES: Final[tuple[LegacyCode, ...]] = get_args(LegacyCode)
RETRYABLE: Final[frozenset[LegacyCode]] = frozenset(
    {"TIMEOUT", "UNREACHABLE", "RATE_LIMITED", "SERVER_ERROR"}
)
"""Worth calling again (the step's budget permitting); the others fail the same way again."""
WORKER_LIMIT_STATUS: Final = 546
"""The serverless platform's "worker ran out of memory or CPU" answer."""

_BY_STATUS: Final[dict[int, LegacyCode]] = {
    200: "OK",
    WORKER_LIMIT_STATUS: "WORKER_LIMIT",
    400: "BAD_REQUEST",
    413: "BAD_REQUEST",
    422: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "UNAUTHORIZED",
    404: "NOT_FOUND",
    408: "TIMEOUT",
    504: "TIMEOUT",
    429: "RATE_LIMITED",
}


def code_of(status: int) -> LegacyCode:
    """The code of an HTTP status the old function answered."""
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if 500 <= status <= 599:
        return "SERVER_ERROR"
    return "BAD_RESPONSE"

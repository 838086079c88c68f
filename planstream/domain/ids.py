"""Identifier shapes: every id on the wire is a prefix and 32 lowercase hex digits."""

import re
import uuid
from typing import Annotated, Final, Literal

from pydantic import AfterValidator, StringConstraints

from planstream.domain.guards import find_smuggling

__all__ = [
    "ID_PREFIXES",
    "ArtifactId",
    "EventId",
    "IdPrefix",
    "IdempotencyKey",
    "JobId",
    "ReplayId",
    "RunId",
    "UploadId",
    "is_id",
    "is_idempotency_key",
    "new_id",
]

IdPrefix = Literal["run", "upl", "job", "art", "evt", "dec", "rpl"]
ID_PREFIXES: Final = ("run", "upl", "job", "art", "evt", "dec", "rpl")


RunId = Annotated[str, StringConstraints(pattern=r"^run_[0-9a-f]{32}$")]
UploadId = Annotated[str, StringConstraints(pattern=r"^upl_[0-9a-f]{32}$")]
JobId = Annotated[str, StringConstraints(pattern=r"^job_[0-9a-f]{32}$")]
ArtifactId = Annotated[str, StringConstraints(pattern=r"^art_[0-9a-f]{32}$")]
EventId = Annotated[str, StringConstraints(pattern=r"^evt_[0-9a-f]{32}$")]
ReplayId = Annotated[str, StringConstraints(pattern=r"^rpl_[0-9a-f]{32}$")]

# A caller's idempotency key: short and plain (UUIDs, ULIDs, "run-42-step-0" all fit). Whether it
# smuggles data (base64, a URL) is checked separately by planstream.domain.guards, with a reason.
IDEMPOTENCY_KEY_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"


def _no_smuggling(value: str) -> str:
    reason = find_smuggling(value)
    if reason is not None:
        raise ValueError(f"idempotency key {reason}")
    return value


IdempotencyKey = Annotated[
    str, StringConstraints(pattern=IDEMPOTENCY_KEY_PATTERN), AfterValidator(_no_smuggling)
]

_ANY_ID = re.compile(r"^(run|upl|job|art|evt|dec|rpl)_[0-9a-f]{32}$")


def new_id(prefix: IdPrefix) -> str:
    """A fresh random id; call it at the edges (ingress, agents), never in the pure core."""
    return f"{prefix}_{uuid.uuid4().hex}"


_IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)


def is_idempotency_key(value: str) -> bool:
    """Whether ``value`` has the shape of an idempotency key (smuggling is checked apart)."""
    return _IDEMPOTENCY_KEY.fullmatch(value) is not None


def is_id(value: str) -> bool:
    """Whether ``value`` has the shape of a planstream id of any kind, matched whole (``$`` of
    Python's ``re`` would let a trailing newline through; the models' Rust regexes do not)."""
    return _ANY_ID.fullmatch(value) is not None

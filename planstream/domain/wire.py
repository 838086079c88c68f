"""Event bytes on the wire: JSON of a pydantic model, with the size limit enforced both ways."""

from typing import Final, TypeVar

from pydantic import BaseModel, ValidationError

from planstream.domain.errors import EventRejected

__all__ = ["decode_event", "describe_validation_error", "encode_event"]

M = TypeVar("M", bound=BaseModel)


def describe_validation_error(exc: ValidationError) -> str:
    """The first problem of a validation error as `field: message` (never the offending value)."""
    first = exc.errors(include_input=False, include_url=False)[0]
    field = ".".join(str(part) for part in first["loc"]) or "(root)"
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{field}: {first['msg']}{more}"


_LEFT_OUT_WHEN_UNSET: Final = frozenset({"replay_id"})
"""Optional fields added inside v1 that are written only when set, so a reader of the earlier
v1 (``extra="forbid"``: a worker not yet upgraded in a rolling deploy) reads every production
event; only a replay's events, on the replay topics, carry ``replay_id``."""


def encode_event(event: BaseModel, max_bytes: int) -> bytes:
    """The event as JSON bytes; refuses one over ``max_bytes``."""
    unset = {name for name in _LEFT_OUT_WHEN_UNSET if getattr(event, name, None) is None}
    data = event.model_dump_json(exclude=unset or None).encode()
    if len(data) > max_bytes:
        raise EventRejected(
            f"{type(event).__name__} is {len(data)} bytes, over the {max_bytes}-byte event limit"
        )
    return data


def decode_event(model: type[M], data: bytes | None, max_bytes: int) -> M:
    """The event in ``data``, or EventRejected naming the size or the first invalid field."""
    if data is None:
        raise EventRejected(f"{model.__name__}: the message has no value")
    if len(data) > max_bytes:
        raise EventRejected(
            f"{model.__name__}: {len(data)} bytes, over the {max_bytes}-byte event limit"
        )
    try:
        return model.model_validate_json(data)
    except ValidationError as exc:
        raise EventRejected(f"{model.__name__}: {describe_validation_error(exc)}") from None

"""The console's form bodies and query strings, read as hostile input.

A form is ``application/x-www-form-urlencoded`` (else 415), at most ``max_request_bytes`` (else
413), read within ``ingress_read_timeout_s`` (else 408, as the API's bodies), UTF-8, naming only
the fields its handler takes, each once unless it is a list, and holding no character no text
may (``guards.find_unsafe_character``); else 422 naming the field. The handler then checks each
value's shape (ids with ``planstream.domain.ids``, reasons by the API's ``ReviewRun``).
"""

import asyncio
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qsl

from aiohttp import web
from pydantic import ValidationError

from planstream.adapters.http.api import ReviewRun
from planstream.adapters.http.console.rendering import refusal
from planstream.adapters.http.console.session import Leave, Session, csrf_holds
from planstream.adapters.http.edge import SlowBody
from planstream.domain.guards import find_unsafe_character
from planstream.domain.ids import is_id
from planstream.domain.wire import describe_validation_error
from planstream.settings import Settings

__all__ = ["Form", "check_csrf", "check_reason", "is_run_id", "query_value", "read_form"]

_URLENCODED: Final = "application/x-www-form-urlencoded"
_SHOWN: Final = 40  # characters of a refused name a page repeats


def _refused(request: web.Request, status: int, text: str, back: str | None) -> Leave:
    return Leave(refusal(request, status, "The form was refused", text, back=back))


@dataclass(frozen=True)
class Form:
    """A form's fields, each with its values in order."""

    fields: Mapping[str, tuple[str, ...]]

    def value(self, name: str) -> str | None:
        """The field's one value (None when absent)."""
        values = self.fields.get(name, ())
        return values[0] if values else None

    def values(self, name: str) -> tuple[str, ...]:
        return self.fields.get(name, ())


def _media_type_ok(content_type: str | None) -> bool:
    if content_type is None:
        return False
    media, *parameters = content_type.split(";")
    if media.strip().lower() != _URLENCODED:
        return False
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if parameter.strip() and (
            name.strip().lower() != "charset" or value.strip().strip('"').lower() != "utf-8"
        ):
            return False
    return True


async def read_form(
    request: web.Request,
    settings: Settings,
    *,
    fields: Collection[str],
    lists: Collection[str] = (),
    back: str | None = None,
) -> Form:
    """The request's form, naming only ``fields`` (those in ``lists`` may repeat); else Leave
    with the refusal page (413, 415 or 422)."""
    limit = settings.max_request_bytes
    if request.content_length is not None and request.content_length > limit:
        raise _refused(request, 413, f"The form is over the {limit}-byte limit.", back)
    if not _media_type_ok(request.headers.get("Content-Type")):
        raise _refused(request, 415, f"A form is sent as {_URLENCODED}.", back)
    try:
        async with asyncio.timeout(settings.ingress_read_timeout_s):
            raw = await request.read()
    except TimeoutError:
        raise SlowBody(
            f"the body did not arrive within {settings.ingress_read_timeout_s:g} s"
        ) from None
    except web.HTTPRequestEntityTooLarge:
        raise _refused(request, 413, f"The form is over the {limit}-byte limit.", back) from None
    try:
        pairs = parse_qsl(
            raw.decode("ascii"), keep_blank_values=True, encoding="utf-8", errors="strict"
        )
    except (UnicodeDecodeError, ValueError):
        raise _refused(request, 422, "The form is not URL-encoded UTF-8.", back) from None
    found: dict[str, list[str]] = {}
    for name, value in pairs:
        if name not in fields:
            shown = name[:_SHOWN].encode("unicode_escape").decode()
            raise _refused(request, 422, f"The form has no field {shown!r}.", back)
        problem = find_unsafe_character(value)
        if problem is not None:
            raise _refused(request, 422, f"The field {name} {problem}.", back)
        found.setdefault(name, []).append(value)
        if len(found[name]) > 1 and name not in lists:
            raise _refused(request, 422, f"The field {name} is given more than once.", back)
    return Form({name: tuple(values) for name, values in found.items()})


def check_reason(request: web.Request, reason: str | None, back: str | None) -> str:
    """A reason as the API takes one (required, at most 500 characters, plain text: the rules
    of ``ReviewRun.reason``, whatever the form); else Leave with a 422 page naming why."""
    try:
        return ReviewRun(action="approve", reason=reason or "").reason  # only the reason counts
    except ValidationError as exc:
        raise _refused(request, 422, f"reason: {describe_validation_error(exc)}", back) from None


def query_value(request: web.Request, name: str) -> str | None:
    """A query parameter given at most once (None when absent or empty); else Leave 422."""
    values = request.query.getall(name, [])
    if len(values) > 1:
        raise _refused(request, 422, f"The filter {name} is given more than once.", None)
    return values[0] if values and values[0] else None


def is_run_id(value: str) -> bool:
    """Whether ``value`` is a run id, whole."""
    return is_id(value) and value.startswith("run_")


def check_csrf(request: web.Request, session: Session, form: Form, back: str | None) -> None:
    """Leave with 403 unless the form's ``csrf`` field is its session's."""
    if not csrf_holds(session.token, form.value("csrf")):
        text = "Its CSRF field is missing or wrong: reload the page and send the form again."
        raise _refused(request, 403, text, back)

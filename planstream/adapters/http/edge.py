"""The ingress's edge: who may address it, how long a request may take, and the strict JSON body.

Addressing. Every request but ``/healthz`` names an allowed ``Host`` (else 421: a page that
DNS-rebinds its own name onto the ingress still sends that name), and an ``Origin`` it carries
is the ingress's own or an allowed one (else 403: a cross-site page). ``/healthz`` answers any
Host: the kubelet's probes send the pod's IP, and it returns ``{"status": "ok"}`` and nothing
else, so a rebinding page learns nothing from it.

Time. The request line and headers arrive within ``ingress_read_timeout_s`` of the connection
opening or of the previous answer on it: aiohttp's keep-alive timer closes a connection that is
still waiting for a complete request, and ``ingress.serve`` sets it to that setting (an idle
keep-alive connection is closed as soon). The body arrives within as long again once a handler
reads it, else 408 and the connection is closed at once (not lingered on). Every handler ends
within ``ingress_handler_timeout_s``, else 503.

The body. ``application/json`` (with ``charset=utf-8`` at most) or 415; UTF-8; JSON without a
duplicate key, NaN, Infinity or a number that overflows to one; no string or key holding a
character no text may (``guards.find_unsafe_character``). Each refusal is a 422 naming the key
or field, so a model's validation only ever sees well-formed, unambiguous input.
"""

import asyncio
import json
import logging
import math
from collections.abc import Iterable
from typing import Any, Final
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from planstream.domain.errors import ConfigurationError
from planstream.domain.guards import find_unsafe_character, iter_strings
from planstream.settings import Settings

__all__ = [
    "BodyRefused",
    "SlowBody",
    "addressed",
    "allowed_hosts",
    "allowed_origins",
    "deadline",
    "host_name",
    "json_body",
    "media_type_problem",
    "origin_allowed",
    "strict_json",
]

log = logging.getLogger(__name__)

OPEN_PATHS: Final = frozenset({"/healthz"})
"""Paths any Host and Origin may call (see the module's docstring for why)."""
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_SHOWN: Final = 64  # characters of a refused key or media type an answer repeats

Origin = tuple[str, str, int]  # scheme, host name, port


class BodyRefused(Exception):
    """A body that is not strict JSON; the message says why, ``field`` names the key if any."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class SlowBody(Exception):
    """The body did not arrive within the read timeout: answered 408 and the connection closed."""


def _refusal(status: int, message: str, field: str | None = None) -> web.Response:
    body: dict[str, Any] = {"error": message}
    if field is not None:
        body["field"] = field
    return web.json_response(body, status=status)


def _http_error(error: type[web.HTTPException], message: str, field: str | None) -> Exception:
    body = json.dumps({"error": message, "field": field})
    return error(text=body, content_type="application/json")


# --- the strict body ------------------------------------------------------------------------


def media_type_problem(content_type: str | None) -> str | None:
    """Why a body with this ``Content-Type`` is not JSON the ingress reads, or None."""
    if content_type is None:
        return "the body has no Content-Type; send it as application/json"
    media, *parameters = content_type.split(";")
    if media.strip().lower() != "application/json":
        return f"the body is {media.strip()[:_SHOWN]!r}, not application/json"
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if not parameter.strip():
            continue
        if name.strip().lower() != "charset" or value.strip().strip('"').lower() not in (
            "utf-8",
            "utf8",
        ):
            shown = parameter.strip()[:_SHOWN]
            return f"application/json takes no parameter but charset=utf-8, not {shown!r}"
    return None


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for key, item in pairs:
        reason = find_unsafe_character(key)
        if reason is not None:
            raise BodyRefused(f"a key of the body {reason}")
        if key in value:
            raise BodyRefused(f"the body names the key {key[:_SHOWN]!r} twice", key[:_SHOWN])
        value[key] = item
    return value


def _constant(name: str) -> Any:
    raise BodyRefused(f"the body holds {name}, which JSON does not allow")


def _number(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BodyRefused(f"the number {text[:_SHOWN]} is out of range")
    return value


def strict_json(raw: bytes) -> Any:
    """The JSON value of ``raw``, or BodyRefused: not UTF-8, not JSON, a duplicate key, a
    non-finite number, or a string or key holding a character no text may (named by path)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyRefused(
            f"the body is not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})"
        ) from None
    try:
        value = json.loads(
            text, object_pairs_hook=_object, parse_constant=_constant, parse_float=_number
        )
    except json.JSONDecodeError as exc:
        where = f"{exc.msg.removesuffix(' at')} at line {exc.lineno} column {exc.colno}"
        raise BodyRefused(f"the body is not JSON: {where}") from None
    except ValueError:  # an integer over Python's digit limit
        raise BodyRefused("the body holds a number too long to read") from None
    except RecursionError:
        raise BodyRefused("the body nests too deeply") from None
    for path, string in iter_strings(value):
        reason = find_unsafe_character(string)
        if reason is not None:
            raise BodyRefused(f"{path or 'the body'} {reason}", path or None)
    return value


async def json_body(request: web.Request, settings: Settings) -> Any:
    """The request's body as strict JSON (``{}`` when it has none): 413 over the size limit, a
    SlowBody past the read timeout, 415 for another media type, 422 for what strict_json
    refuses."""
    limit = settings.max_request_bytes
    if request.content_length is not None and request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
    try:
        async with asyncio.timeout(settings.ingress_read_timeout_s):
            raw = await request.read()  # client_max_size refuses a larger chunked body with 413
    except TimeoutError:
        raise SlowBody(
            f"the body did not arrive within {settings.ingress_read_timeout_s:g} s"
        ) from None
    if not raw:
        return {}
    problem = media_type_problem(request.headers.get("Content-Type"))
    if problem is not None:
        raise _http_error(web.HTTPUnsupportedMediaType, problem, None)
    try:
        return strict_json(raw)
    except BodyRefused as exc:
        raise _http_error(web.HTTPUnprocessableEntity, str(exc), exc.field) from None


# --- addressing -----------------------------------------------------------------------------


def host_name(host: str) -> str:
    """The host of a ``Host`` header (or a configured name): lower case, without the port or a
    trailing dot; an IPv6 literal without its brackets."""
    value = host.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        return value[1:end] if end > 0 else value
    name, colon, port = value.rpartition(":")
    if colon and port.isdigit():
        value = name
    return value.removesuffix(".")


def _port(host: str) -> int | None:
    value = host.strip()
    tail = value.rsplit("]", 1)[-1] if value.startswith("[") else value
    _, colon, port = tail.rpartition(":")
    return int(port) if colon and port.isdigit() else None


def allowed_hosts(settings: Settings) -> frozenset[str]:
    """The Host names the API answers: the setting's, else the bind address and loopback."""
    names = settings.ingress_allowed_hosts or (settings.ingress_host, "localhost", "127.0.0.1")
    return frozenset(host_name(name) for name in names)


def _origin(origin: str) -> Origin | None:
    """(scheme, host, port) of a serialized origin, or None when it is not one (``null``)."""
    try:
        parts = urlsplit(origin.strip().lower())
        port = parts.port
    except ValueError:
        return None
    extra = parts.path not in ("", "/") or parts.query or parts.fragment or parts.username
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname or extra:
        return None
    return parts.scheme, parts.hostname.removesuffix("."), port or _DEFAULT_PORTS[parts.scheme]


def allowed_origins(origins: Iterable[str]) -> frozenset[Origin]:
    """The configured origins, parsed; ConfigurationError names one that is not an origin."""
    parsed = set()
    for origin in origins:
        value = _origin(origin)
        if value is None:
            raise ConfigurationError(f"ingress_allowed_origins: {origin!r} is not an origin")
        parsed.add(value)
    return frozenset(parsed)


def origin_allowed(origin: str, host: str, allowed: frozenset[Origin]) -> bool:
    """Whether a request with this ``Origin`` and ``Host`` is same-origin or from an allowed
    origin. The scheme is not compared with the Host's (a proxy may end TLS in front)."""
    parsed = _origin(origin)
    if parsed is None:
        return False
    if parsed in allowed:
        return True
    scheme, name, port = parsed
    return name == host_name(host) and port == (_port(host) or _DEFAULT_PORTS[scheme])


def addressed(settings: Settings) -> Middleware:
    """The middleware: 421 for a Host not allowed, 403 for a cross-site Origin not allowed."""
    hosts = allowed_hosts(settings)
    origins = allowed_origins(settings.ingress_allowed_origins)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in OPEN_PATHS:
            return await handler(request)
        named = request.headers.getall("Host", [])
        if len(named) != 1 or host_name(named[0]) not in hosts:
            return _refusal(421, "this server does not answer for the Host the request names")
        origin = request.headers.get("Origin")
        if origin is not None and not origin_allowed(origin, named[0], origins):
            return _refusal(403, "requests from this Origin are not allowed")
        return await handler(request)

    return middleware


# --- time -----------------------------------------------------------------------------------


async def _closing(request: web.Request, slow: SlowBody) -> web.StreamResponse:
    """Answer 408 and close the connection now: lingering would go on reading the trickle."""
    answer = _refusal(408, str(slow))
    answer.force_close()
    await answer.prepare(request)
    await answer.write_eof()
    request.protocol.force_close()
    log.info("closed a connection whose request body was too slow")
    return answer


def deadline(settings: Settings) -> Middleware:
    """The middleware: a handler not done within ``ingress_handler_timeout_s`` is cancelled and
    answered 503; a SlowBody is answered 408 and its connection closed."""
    limit = settings.ingress_handler_timeout_s

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        timer = asyncio.timeout(limit)
        try:
            async with timer:
                return await handler(request)
        except SlowBody as slow:
            return await _closing(request, slow)
        except TimeoutError:
            if not timer.expired():
                raise  # a dependency's own timeout: the error middleware answers it
            log.warning("a request passed the %g s handler deadline", limit)
            return _refusal(
                503,
                f"the request took longer than the {limit:g} s deadline; retry it (a step "
                "request with the same Idempotency-Key)",
            )

    return middleware

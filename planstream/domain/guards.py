"""Payload policy: what may travel on the wire, with a reason for every refusal."""

import re
from collections.abc import Iterator, Mapping
from typing import Final

__all__ = [
    "MAX_EVENT_BYTES",
    "MAX_REQUEST_BYTES",
    "find_smuggling",
    "find_unsafe_character",
    "iter_strings",
    "smuggling_in",
]

MAX_EVENT_BYTES: Final = 50_000
"""Default ceiling for one serialized event (settings.max_event_bytes overrides it)."""

MAX_REQUEST_BYTES: Final = 10_240
"""Default ceiling for one HTTP request body (settings.max_request_bytes overrides it)."""

# Any "scheme://" or protocol-relative "//host"; and the schemes that work without "//".
_URL = re.compile(r"(?i)(?:://|(?:^|\s)//\w|\b(?:data|https?|file|javascript|jar):)")
# Leading bytes of common binaries once base64-encoded: PNG, JPEG, GIF, WebP/RIFF, PDF, gzip, zip.
_BINARY_MAGIC = re.compile(r"iVBORw0KGgo|/9j/|R0lGOD|UklGR|JVBERi0|H4sI|UEsDB")
# Base64 and base64url alphabets; a long run that mixes upper case, lower case and digits is
# encoded data, while UUIDs (lower+digits), ULIDs (upper+digits) and words are not.
_B64_RUN = re.compile(r"[A-Za-z0-9+/=_-]{32,}")
_B64_TOKEN = re.compile(r"[A-Za-z0-9+/=_-]+")
_HEX_RUN = re.compile(r"[0-9a-fA-F]{65,}")
_INVISIBLE = re.compile("[\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff]")
# What no text field may hold (the API's and every consumed event's alike): NUL (PostgreSQL
# refuses it in text and jsonb, which once stalled the decisions sink), the other C0 and C1
# controls but tab, newline and carriage return, lone surrogates and Unicode non-characters.
_NONCHARACTERS = "".join(
    chr(plane + low) for plane in range(0, 0x110000, 0x10000) for low in (0xFFFE, 0xFFFF)
)
_UNSAFE_CHARACTER = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef" + _NONCHARACTERS + "]"
)


def _looks_encoded(run: str) -> bool:
    core = run.strip("=")
    return (
        any(c.isupper() for c in core)
        and any(c.islower() for c in core)
        and any(c.isdigit() for c in core)
    )


def find_smuggling(value: str) -> str | None:
    """Why ``value`` looks like smuggled data (URL, data URI, base64, hex) or holds a character
    no text may (a control, a lone surrogate, a non-character), or None if clean."""
    unsafe = find_unsafe_character(value)
    if unsafe is not None:
        return unsafe
    if _URL.search(value):
        return "holds a URL or data URI"
    if _BINARY_MAGIC.search(value):
        return "holds base64-encoded binary data"
    if _INVISIBLE.search(value):
        return "holds invisible characters"
    tokens = value.split()
    if _is_chunked(tokens):
        tokens = ["".join(tokens)]
    for token in tokens:
        for run in _B64_RUN.findall(token):
            if _looks_encoded(run):
                return f"holds a base64-like run of {len(run)} characters"
        if _HEX_RUN.search(token):
            return "holds a long hex-encoded run"
    return None


def find_unsafe_character(value: str) -> str | None:
    """Which character no text field may hold ``value`` holds first, named by code point."""
    found = _UNSAFE_CHARACTER.search(value)
    if found is None:
        return None
    code = ord(found.group())
    if 0xD800 <= code <= 0xDFFF:
        kind = "a lone surrogate"
    elif code <= 0x9F:
        kind = "a control character"
    else:
        kind = "a non-character"
    return f"holds {kind} (U+{code:04X})"


def _is_chunked(tokens: list[str]) -> bool:
    """Whether whitespace cuts one encoded blob into equal chunks (words vary in length)."""
    if len(tokens) < 4 or not all(_B64_TOKEN.fullmatch(t) for t in tokens):
        return False
    width = len(tokens[0])
    return width >= 4 and all(len(t) == width for t in tokens[:-1])


def iter_strings(value: object, path: str = "") -> Iterator[tuple[str, str]]:
    """Every string inside a JSON-like value, with its dotted path."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from iter_strings(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from iter_strings(item, f"{path}[{index}]")


def smuggling_in(value: object) -> tuple[str, str] | None:
    """The first (path, reason) of a string in ``value`` that smuggles data, or None."""
    for path, text in iter_strings(value):
        reason = find_smuggling(text)
        if reason is not None:
            return path, reason
    return None

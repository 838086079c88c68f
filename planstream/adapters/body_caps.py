"""Response bodies capped while they stream, before and during decompression (httpx2 hooks).

httpx decodes ``Content-Encoding: gzip`` by handing each network chunk to zlib whole, so a
298 KB gzip body of zeros becomes 604 MB in memory before any size check can run. These event
hooks ask for ``gzip`` only and, as each response arrives (before its body is read), put a
stream in front of its raw body that counts the bytes on the wire against the cap and inflates
with zlib's ``max_length``, so no step produces more than the bytes left under the cap: a body
is refused (``BodyTooLarge``) as soon as it would pass the cap, holding at most ``cap + 1``
decoded bytes. The response then carries the decoded bytes without a ``Content-Encoding``, so
the client decodes nothing again. Hooks, not a transport: they see every response whichever
transport (a proxy from the environment included) carried it, and error bodies too (the OpenAI
client reads a 4xx/5xx body whole to build its exception).
"""

import datetime
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Final

import httpx2

__all__ = ["BodyCaps", "BodyEncodingRefused", "BodyRefused", "BodyTooLarge"]

_ACCEPTED: Final = "gzip"
_INFLATED: Final = frozenset({"gzip", "x-gzip", "deflate"})
_PLAIN: Final = frozenset({"", "identity"})
_AUTO_HEADER_WBITS: Final = 47  # 32 + 15: zlib reads a gzip or a zlib header, whichever comes
_DROPPED_HEADERS: Final = ("content-encoding", "content-length")
HEAD_BYTES: Final = 2_000
"""How much of a refused body is kept on the error, decoded (for the record, never parsed)."""


class BodyRefused(Exception):
    """A response body was refused while it was read; ``head`` holds its first decoded bytes."""

    def __init__(self, message: str, head: bytes = b"") -> None:
        super().__init__(message)
        self.head = head


class BodyTooLarge(BodyRefused):
    """The body is over its cap, on the wire or once decompressed."""


class BodyEncodingRefused(BodyRefused):
    """The body came in an encoding that was not asked for, or does not decode."""


class _CappedStream(httpx2.AsyncByteStream):
    """The raw stream of ``response``, decoded and counted against ``cap``."""

    def __init__(self, raw: httpx2.AsyncByteStream, encoding: str, cap: int, what: str) -> None:
        self._raw = raw
        self._encoding = encoding
        self._cap = cap
        self._what = what
        self._head = bytearray()

    def _too_large(self, how: str) -> BodyTooLarge:
        return BodyTooLarge(
            f"{self._what} is over the {self._cap}-byte cap ({how})", bytes(self._head)
        )

    def _keep(self, piece: bytes) -> bytes:
        if len(self._head) < HEAD_BYTES:
            self._head += piece[: HEAD_BYTES - len(self._head)]
        return piece

    async def __aiter__(self) -> AsyncIterator[bytes]:
        inflater = zlib.decompressobj(_AUTO_HEADER_WBITS) if self._encoding in _INFLATED else None
        wire = decoded = 0
        async for chunk in self._raw:
            wire += len(chunk)
            if inflater is None:
                self._keep(chunk)
            if wire > self._cap:
                raise self._too_large("on the wire")
            if inflater is None:
                yield chunk
                continue
            pending = chunk
            while pending and not inflater.eof:
                try:
                    piece = inflater.decompress(pending, self._cap - decoded + 1)
                except zlib.error as exc:
                    raise BodyEncodingRefused(f"{self._what} does not inflate: {exc}") from None
                decoded += len(self._keep(piece))
                if decoded > self._cap:
                    raise self._too_large("once decompressed")
                pending = inflater.unconsumed_tail
                if piece:
                    yield piece
        if inflater is not None and not inflater.eof:
            raise BodyEncodingRefused(f"{self._what} ends inside its compressed stream")

    @property
    def elapsed(self) -> datetime.timedelta | None:
        """The client's timing of the response, kept by the stream this one wraps."""
        elapsed: datetime.timedelta | None = getattr(self._raw, "elapsed", None)
        return elapsed

    async def aclose(self) -> None:
        await self._raw.aclose()


Hook = Callable[[httpx2.Request], Awaitable[None]] | Callable[[httpx2.Response], Awaitable[None]]


class BodyCaps:
    """Event hooks for an ``httpx2.AsyncClient``: every response body is capped at
    ``cap(request)`` bytes, on the wire and once decompressed, and refused past it
    (``BodyTooLarge``) while it streams; an encoding other than gzip is refused."""

    def __init__(self, cap: Callable[[httpx2.Request], int]) -> None:
        self._cap = cap

    def event_hooks(self) -> dict[str, list[Hook]]:
        """The ``event_hooks`` argument of ``httpx2.AsyncClient``."""
        return {"request": [self.on_request], "response": [self.on_response]}

    async def on_request(self, request: httpx2.Request) -> None:
        request.headers["Accept-Encoding"] = _ACCEPTED

    async def on_response(self, response: httpx2.Response) -> None:
        request = response.request
        encoding = response.headers.get("Content-Encoding", "").strip().lower()
        what = f"the {response.status_code} answer to {request.method} {request.url.path}"
        if encoding not in _INFLATED | _PLAIN:
            raise BodyEncodingRefused(f"{what} came as {encoding[:40]!r}, not {_ACCEPTED}")
        assert isinstance(response.stream, httpx2.AsyncByteStream)
        response.stream = _CappedStream(response.stream, encoding, self._cap(request), what)
        for name in _DROPPED_HEADERS:
            response.headers.pop(name, None)

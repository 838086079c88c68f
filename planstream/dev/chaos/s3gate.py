"""An HTTP gate in front of moto that refuses presigned URLs the way S3 does.

moto's server serves a presigned GET or PUT whatever its signature and expiry (moto 5 checks
neither), so on it an expired or altered URL cannot fail, and a test that a URL's expiry is
handled would pass on a server that never expires anything. The gate checks every request
whose query carries ``X-Amz-Signature`` as S3 does (AWS Signature Version 4 with the
environment's secret key: the signature over the method, path, parameters and signed headers,
and ``X-Amz-Date`` + ``X-Amz-Expires`` against the clock) and answers 403 with S3's error
codes (``AccessDenied`` "Request has expired", ``SignatureDoesNotMatch``); every other request
(the SDK's own, signed in the Authorization header) is passed to moto unchanged. T25 proves it
first (its control): an expired, an altered and a re-pointed URL are refused, a fresh one served.
"""

import hmac
import io
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import aiohttp
from aiohttp import web
from yarl import URL

from planstream.adapters.presigned import parse, signature
from planstream.dev.chaos.proxy import LoopThread

__all__ = ["GateRefusal", "S3Gate"]

_HOP_BY_HOP: Final = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "expect",
        "content-length",
    }
)
_CHECKED_METHODS: Final = frozenset({"GET", "PUT"})


@dataclass(frozen=True)
class GateRefusal:
    """One presigned request the gate refused (never the URL: it is a credential)."""

    at: float
    method: str
    path: str
    code: str


def _error(code: str, message: str) -> web.Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    )
    return web.Response(status=403, text=body, content_type="application/xml")


class S3Gate:
    """``start()`` returns the gate's port; ``refusals()`` lists what it refused."""

    def __init__(self, upstream: str, secret_access_key: str, name: str = "s3") -> None:
        self._upstream = upstream.rstrip("/")
        self._secret = secret_access_key
        self._thread = LoopThread(f"s3gate-{name}")
        self._lock = threading.Lock()
        self._refused: list[GateRefusal] = []
        self._served = 0
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.port = 0

    def start(self) -> int:
        self._thread.run(self._start())
        return self.port

    def refusals(self, since: float = 0.0) -> list[GateRefusal]:
        with self._lock:
            return [r for r in self._refused if r.at >= since]

    @property
    def presigned_served(self) -> int:
        """Presigned requests the gate found valid and passed on."""
        with self._lock:
            return self._served

    def close(self) -> None:
        try:
            self._thread.run(self._stop())
        finally:
            self._thread.close()

    # -- the loop's side ----------------------------------------------------------------------
    async def _start(self) -> None:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10), auto_decompress=False
        )
        app = web.Application(client_max_size=1 << 30)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, backlog=2048)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    def refusal(self, request: web.Request) -> tuple[str, str] | None:
        """S3's error code and message for a presigned request it would refuse, else None."""
        presigned = parse(request.rel_url.raw_query_string)
        if presigned is None:
            return "AuthorizationQueryParametersError", "Query-string authentication is malformed"
        if presigned.expires_at <= datetime.now(UTC):
            return "AccessDenied", "Request has expired"
        headers = {name.lower(): value for name, value in request.headers.items()}
        expected = signature(
            presigned, request.method, request.rel_url.raw_path, headers, self._secret
        )
        if expected is None or not hmac.compare_digest(expected, presigned.signature):
            return "SignatureDoesNotMatch", "The request signature we calculated does not match"
        return None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.method in _CHECKED_METHODS and "X-Amz-Signature" in request.query:
            refused = self.refusal(request)
            with self._lock:
                if refused is not None:
                    self._refused.append(
                        GateRefusal(time.time(), request.method, request.rel_url.path, refused[0])
                    )
                else:
                    self._served += 1
            if refused is not None:
                return _error(*refused)
        return await self._forward(request)

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        target = URL(self._upstream + request.rel_url.raw_path_qs, encoded=True)
        async with self._session.request(
            request.method,
            target,
            data=io.BytesIO(body) if body else None,  # raw bytes over 1 MiB warn: an error here
            headers=headers,
            allow_redirects=False,
            skip_auto_headers=("Content-Type", "Accept", "Accept-Encoding", "User-Agent"),
        ) as answer:
            data = await answer.read()
            passed = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP_BY_HOP}
            response = web.StreamResponse(status=answer.status, reason=answer.reason)
            response.headers.update(passed)
            length = answer.headers.get("Content-Length")
            response.content_length = (
                int(length) if request.method == "HEAD" and length else len(data)
            )
            await response.prepare(request)
            if request.method != "HEAD" and data:
                await response.write(data)
            await response.write_eof()
            return response

"""Fetching the image a chat request points at: loopback URLs only, size-capped, hashed."""

import hashlib
from typing import Final

import aiohttp
from yarl import URL

from planstream.dev.modelserver.errors import bad_request

__all__ = ["LOOPBACK_HOSTS", "ImageFetcher", "loopback_url"]

LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "localhost", "::1"})
_TIMEOUT: Final = aiohttp.ClientTimeout(total=15, sock_connect=3)
_CHUNK: Final = 64 * 1024
_NOT_LOOPBACK: Final = "only loopback image URLs are served by the scripted server"


def loopback_url(text: str) -> URL:
    """``text`` as an http(s) URL on 127.0.0.1, localhost or ::1, or a 400 ApiError."""
    try:
        url = URL(text)
    except (TypeError, ValueError):
        raise bad_request(_NOT_LOOPBACK, code="invalid_image_url") from None
    host = (url.host or "").lower()
    if url.scheme not in ("http", "https") or host not in LOOPBACK_HOSTS:
        raise bad_request(_NOT_LOOPBACK, code="invalid_image_url")
    return url


class ImageFetcher:
    """Downloads images over one shared session; never follows redirects, never logs a URL."""

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        """Open the session (many connections: the server answers hundreds of calls at once)."""
        connector = aiohttp.TCPConnector(limit=256)
        self._session = aiohttp.ClientSession(timeout=_TIMEOUT, connector=connector)

    async def stop(self) -> None:
        """Close the session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def sha256(self, text: str) -> str:
        """The SHA-256 of the image at loopback URL ``text``; a 400 ApiError says why not."""
        url = loopback_url(text)
        assert self._session is not None, "ImageFetcher.start() was not awaited"
        digest, size = hashlib.sha256(), 0
        try:
            async with self._session.get(url, allow_redirects=False) as response:
                if response.status != 200:
                    raise bad_request(
                        f"could not download the image: HTTP {response.status}",
                        code="invalid_image_url",
                    )
                async for chunk in response.content.iter_chunked(_CHUNK):
                    size += len(chunk)
                    if size > self._max_bytes:
                        raise bad_request(
                            f"the image is larger than {self._max_bytes} bytes",
                            code="image_too_large",
                        )
                    digest.update(chunk)
        except (aiohttp.ClientError, TimeoutError) as exc:
            reason = type(exc).__name__
            raise bad_request(
                f"could not download the image: {reason}", code="invalid_image_url"
            ) from None
        return digest.hexdigest()

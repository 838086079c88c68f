"""What the scripted server's handlers share: the registry, the image fetcher and the knobs."""

from dataclasses import dataclass
from typing import Final

from aiohttp import web

from planstream.dev.modelserver.fetcher import ImageFetcher
from planstream.dev.modelserver.quota import Quota
from planstream.dev.modelserver.registry import Registry

__all__ = ["STATE", "ServerState"]


@dataclass(frozen=True)
class ServerState:
    """The app's shared parts; ``delay_s`` is added to every chat answer (for benchmarks);
    ``quota`` is the rate limit answered with 429s (off unless set)."""

    registry: Registry
    fetcher: ImageFetcher
    hang_s: float
    delay_s: float
    max_image_pixels: int
    quota: Quota


STATE: Final = web.AppKey("state", ServerState)

"""What every service of the local stack provides: how to start it and how to tell it is healthy."""

import signal
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import ClassVar, Final

import aiohttp

from planstream.dev.stack.processes import Launch, ServiceFiles
from planstream.domain.errors import PlanstreamError
from planstream.settings import Settings

__all__ = ["Service", "ServiceDown", "StackError", "probe_http", "reason"]

_PROBE_TIMEOUT: Final = aiohttp.ClientTimeout(total=5)


class StackError(PlanstreamError):
    """The local stack cannot start a service: a program is missing, a port taken, a step failed."""


class ServiceDown(PlanstreamError):
    """A probe found the service not answering; the message says what the probe saw."""


def reason(exc: BaseException) -> str:
    """An exception as a short phrase: its message, or its type's name when it has none."""
    return str(exc) or type(exc).__name__


async def probe_http(url: str, headers: Mapping[str, str] | None = None) -> bytes:
    """The body of ``GET url`` when it answers 200 within the probe timeout; ServiceDown saying
    what the probe saw otherwise."""
    try:
        async with (
            aiohttp.ClientSession(timeout=_PROBE_TIMEOUT) as session,
            session.get(url, headers=headers) as response,
        ):
            if response.status != 200:
                raise ServiceDown(f"GET {url} answered HTTP {response.status}")
            return await response.read()
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ServiceDown(f"GET {url} failed: {reason(exc)}") from exc


class Service(ABC):
    """One service: started locally when listed in ``stack_services``, otherwise only checked."""

    name: ClassVar[str]
    ready_timeout_s: ClassVar[float] = 30.0
    stop_signal: ClassVar[signal.Signals] = signal.SIGTERM
    stop_grace_s: ClassVar[float] = 10.0

    def __init__(self, settings: Settings, files: ServiceFiles) -> None:
        self.settings = settings
        self.files = files

    @abstractmethod
    def address(self) -> str:
        """Where clients reach the service, safe to print (no password)."""

    @abstractmethod
    def ports(self) -> tuple[tuple[str, int], ...]:
        """The (host, port) pairs the local process listens on, checked free before it starts."""

    def missing_prerequisite(self) -> str | None:
        """One sentence naming what this machine lacks to start the service, or None."""
        return None

    async def prepare(self) -> None:  # noqa: B027 - an optional hook, empty by default
        """Set up what the process needs in its (existing) folder before it starts; idempotent."""

    @abstractmethod
    def launch(self) -> Launch:
        """The command line of the long-running process."""

    async def ready(self) -> None:
        """Raise ServiceDown until the process we started answers a real request."""
        await self.healthy()

    async def provision(self) -> None:  # noqa: B027 - an optional hook, empty by default
        """Create what the settings name (database, bucket) when missing; idempotent."""

    @abstractmethod
    async def healthy(self) -> None:
        """Raise ServiceDown unless the service answers at its configured address."""

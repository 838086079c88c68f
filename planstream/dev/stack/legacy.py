"""The local stack's old function: `planstream legacy-function`, the scripted run-pipeline-step."""

import sys
from typing import Final

import aiohttp

from planstream.dev.legacy.server import FUNCTION_PATH
from planstream.dev.stack.processes import Launch
from planstream.dev.stack.service import Service, ServiceDown, reason

__all__ = ["LegacyServer"]

_PROBE_TIMEOUT: Final = aiohttp.ClientTimeout(total=5)


class LegacyServer(Service):
    """``python -m planstream.cli legacy-function``, in the environment `stack up` runs in."""

    name = "legacy"

    def _base(self) -> str:
        return f"http://{self.settings.legacy_server_host}:{self.settings.legacy_server_port}"

    def address(self) -> str:
        """The function's endpoint (the default project's)."""
        return self._base() + FUNCTION_PATH

    def ports(self) -> tuple[tuple[str, int], ...]:
        return ((self.settings.legacy_server_host, self.settings.legacy_server_port),)

    def launch(self) -> Launch:
        """Our CLI in the Python running planstream; it inherits the PLANSTREAM_* variables."""
        return Launch([sys.executable, "-m", "planstream.cli", "legacy-function"])

    async def healthy(self) -> None:
        """``GET /healthz`` answers 200."""
        url = self._base() + "/healthz"
        try:
            async with (
                aiohttp.ClientSession(timeout=_PROBE_TIMEOUT) as session,
                session.get(url) as response,
            ):
                if response.status != 200:
                    raise ServiceDown(f"GET {url} answered HTTP {response.status}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ServiceDown(f"GET {url} failed: {reason(exc)}") from exc

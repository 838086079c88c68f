"""The local stack's old function: `planstream legacy-function`, the scripted run-pipeline-step."""

import sys

from planstream.dev.legacy.server import FUNCTION_PATH
from planstream.dev.stack.processes import Launch
from planstream.dev.stack.service import Service, probe_http

__all__ = ["LegacyServer"]


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
        await probe_http(url)

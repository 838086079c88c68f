"""The local model server: `planstream model-server`, the scripted OpenAI-compatible server."""

import sys
from typing import Final

import aiohttp

from planstream.dev.stack.processes import Launch
from planstream.dev.stack.service import Service, ServiceDown, reason

__all__ = ["ModelServer"]

_PROBE_TIMEOUT: Final = aiohttp.ClientTimeout(total=5)


class ModelServer(Service):
    """``python -m planstream.cli model-server``, in the environment `stack up` runs in."""

    name = "model"

    def address(self) -> str:
        """The OpenAI-compatible base URL."""
        return self.settings.model_base_url

    def ports(self) -> tuple[tuple[str, int], ...]:
        """The server's bind address (loopback by default)."""
        return ((self.settings.model_server_host, self.settings.model_server_port),)

    def launch(self) -> Launch:
        """Our CLI in the Python running planstream; it inherits the PLANSTREAM_* variables."""
        return Launch([sys.executable, "-m", "planstream.cli", "model-server"])

    async def healthy(self) -> None:
        """``GET <model_base_url>/models`` answers 200 with an OpenAI model list."""
        url = self.settings.model_base_url.rstrip("/") + "/models"
        headers = {"Authorization": f"Bearer {self.settings.model_api_key}"}
        try:
            async with (
                aiohttp.ClientSession(timeout=_PROBE_TIMEOUT) as session,
                session.get(url, headers=headers) as response,
            ):
                if response.status != 200:
                    raise ServiceDown(f"GET {url} answered HTTP {response.status}")
                body = await response.json()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ServiceDown(f"GET {url} failed: {reason(exc)}") from exc
        if not isinstance(body, dict) or body.get("object") != "list":
            raise ServiceDown(f"GET {url} did not answer an OpenAI model list")

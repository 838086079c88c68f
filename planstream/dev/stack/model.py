"""The local model server: `planstream model-server`, the scripted OpenAI-compatible server."""

import json
import sys

from planstream.dev.stack.processes import Launch
from planstream.dev.stack.service import Service, ServiceDown, probe_http

__all__ = ["ModelServer"]


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
            body = json.loads(await probe_http(url, headers))
        except ValueError:
            body = None
        if not isinstance(body, dict) or body.get("object") != "list":
            raise ServiceDown(f"GET {url} did not answer an OpenAI model list")

"""The scripted model server with a delay the benchmark sets while it runs (a child process).

``python -m planstream.dev.bench.model_server`` serves
``planstream.dev.modelserver.server.create_app`` on ``model_server_host:model_server_port`` from the
``PLANSTREAM_*`` settings, plus one route, ``POST /bench/delay {"delay_s": 1.0}``: the delay added
before every chat answer, as ``model_delay_s`` adds it, but changeable without restarting the
services that call it.
"""

import asyncio
import json
import os
import signal
import sys
from typing import Final

from aiohttp import ClientSession, web
from aiohttp.typedefs import Handler

from planstream.dev.modelserver.server import create_app
from planstream.settings import Settings

__all__ = ["DELAY", "build", "main", "reset", "set_delay"]

DELAY: Final = web.AppKey("bench_delay", list[float])
_BACKLOG: Final = 2048


@web.middleware
async def _delay(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Wait the current delay before answering a chat completion."""
    seconds = request.app[DELAY][0]
    if seconds > 0 and request.path == "/v1/chat/completions":
        await asyncio.sleep(seconds)
    return await handler(request)


async def _set_delay(request: web.Request) -> web.Response:
    body = json.loads(await request.read())
    request.app[DELAY][0] = max(0.0, float(body["delay_s"]))
    return web.json_response({"delay_s": request.app[DELAY][0]})


def build(settings: Settings) -> web.Application:
    """The scripted app (its own delay off) with the changeable delay in front of its handlers."""
    app = create_app(settings.with_overrides(model_delay_s=0.0))
    app[DELAY] = [settings.model_delay_s]
    app.middlewares.append(_delay)
    app.router.add_post("/bench/delay", _set_delay)
    return app


async def _post(settings: Settings, path: str, body: dict[str, object]) -> None:
    url = settings.model_base_url.removesuffix("/v1") + path
    headers = {"Authorization": f"Bearer {settings.model_api_key}"}
    async with ClientSession() as session, session.post(url, json=body, headers=headers) as r:
        r.raise_for_status()


async def set_delay(settings: Settings, seconds: float) -> None:
    """Ask the running server (at ``settings.model_base_url``) to delay chat answers."""
    await _post(settings, "/bench/delay", {"delay_s": seconds})


async def reset(settings: Settings) -> None:
    """Make the running server forget its call counts (a hang sample hangs again)."""
    await _post(settings, "/v1/scripted/reset", {})


async def _serve(settings: Settings) -> None:
    runner = web.AppRunner(build(settings), handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(
        runner, settings.model_server_host, settings.model_server_port, backlog=_BACKLOG
    )
    await site.start()
    print("Ready", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await runner.cleanup()


def main() -> int:
    asyncio.run(_serve(Settings.from_env(os.environ)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

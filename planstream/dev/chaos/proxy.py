"""A TCP fault proxy on loopback, in the spirit of Toxiproxy, run on its own thread.

Point a client's address setting at ``proxy.port`` and switch faults at any time:

- ``pass``: forward both ways;
- ``down``: stop listening (new connections are refused) and reset every open connection;
- ``blackhole``: accept and read, never forward nor answer (a hang);
- ``latency``: delay every chunk by ``latency_s`` (+ up to ``jitter_s``);
- ``reset``: reset a seeded fraction ``reset_fraction`` of new connections after their first
  request bytes;
- ``drip``: forward the server's answer one byte every ``drip_s`` seconds (a slow drip).

The thread owns its event loop, so a test that blocks (a subprocess wait, a sleep) never stalls
the traffic through the proxy.
"""

import asyncio
import contextlib
import logging
import random
import socket
import struct
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, replace
from typing import Any, Literal, TypeVar

__all__ = ["Fault", "FaultProxy", "LoopThread"]

log = logging.getLogger(__name__)

Mode = Literal["pass", "down", "blackhole", "latency", "reset", "drip"]
T = TypeVar("T")
_CHUNK = 65_536


@dataclass(frozen=True)
class Fault:
    """What the proxy does to the traffic now."""

    mode: Mode = "pass"
    latency_s: float = 0.0
    jitter_s: float = 0.0
    reset_fraction: float = 0.0
    drip_s: float = 1.0


class LoopThread:
    """An asyncio event loop on a daemon thread; coroutines are submitted to it from any thread."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout_s: float = 30.0) -> T:
        """Run ``coroutine`` on the loop and wait for its result (from another thread)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout_s)

    def close(self) -> None:
        """Cancel and await every task left on the loop (their ``finally`` closes sockets), stop."""
        with contextlib.suppress(Exception):
            self.run(_cancel_others(), timeout_s=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self.loop.close()


async def _cancel_others() -> None:
    current = asyncio.current_task()
    others = [task for task in asyncio.all_tasks() if task is not current]
    for task in others:
        task.cancel()
    await asyncio.gather(*others, return_exceptions=True)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST (SO_LINGER 0) instead of FIN: the peer sees 'connection reset'."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class FaultProxy:
    """Forwards 127.0.0.1:<port> to ``target``; faults switch with :meth:`set`."""

    def __init__(self, target_host: str, target_port: int, name: str, seed: int = 0) -> None:
        self.name = name
        self._target = (target_host, target_port)
        self._fault = Fault()
        self._random = random.Random(seed)
        self._thread = LoopThread(f"proxy-{name}")
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self.port = 0
        self.connections = 0
        self.resets = 0

    # -- control, from the test's thread ----------------------------------------------------
    def start(self) -> int:
        """Listen on a free loopback port; returns it."""
        self._thread.run(self._listen())
        log.info("proxy %s on 127.0.0.1:%d -> %s:%d", self.name, self.port, *self._target)
        return self.port

    def set(self, mode: Mode, **options: float) -> None:
        """Switch the fault (``latency_s``, ``jitter_s``, ``reset_fraction``, ``drip_s``)."""
        fault = replace(Fault(), mode=mode, **options)
        self._thread.run(self._apply(fault))

    def heal(self) -> None:
        self.set("pass")

    @property
    def fault(self) -> Fault:
        return self._fault

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._thread.run(self._shutdown())
        self._thread.close()

    # -- the loop's side ----------------------------------------------------------------------
    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._handle, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _apply(self, fault: Fault) -> None:
        was_down = self._fault.mode == "down"
        self._fault = fault
        if fault.mode == "down":
            if self._server is not None:
                self._server.close()
                self._server = None
            for writer in list(self._open):
                _reset(writer)
            self._open.clear()
        elif was_down and self._server is None:
            await self._listen()

    async def _shutdown(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._open):
            _reset(writer)
        self._open.clear()
        await _cancel_others()
        if server is not None:
            await server.wait_closed()

    async def _handle(
        self, client_reader: asyncio.StreamReader, client: asyncio.StreamWriter
    ) -> None:
        self.connections += 1
        fault = self._fault
        if fault.mode == "down":
            _reset(client)
            return
        self._open.add(client)
        try:
            if fault.mode == "blackhole":
                while await client_reader.read(_CHUNK):
                    pass
                return
            doomed = fault.mode == "reset" and self._random.random() < fault.reset_fraction
            try:
                server_reader, server = await asyncio.open_connection(*self._target)
            except OSError:
                _reset(client)
                return
            self._open.add(server)
            try:
                await asyncio.gather(
                    self._pipe(client_reader, server, doomed, upstream=True),
                    self._pipe(server_reader, client, False, upstream=False),
                )
            finally:
                self._open.discard(server)
                server.close()
        except (ConnectionError, OSError):
            pass
        finally:
            self._open.discard(client)
            client.close()

    async def _pipe(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        doomed: bool,
        *,
        upstream: bool,
    ) -> None:
        try:
            while data := await reader.read(_CHUNK):
                fault = self._fault
                if doomed:
                    self.resets += 1
                    _reset(writer)
                    return
                if fault.mode == "blackhole":
                    continue
                if fault.mode == "latency":
                    await asyncio.sleep(fault.latency_s + self._random.random() * fault.jitter_s)
                if fault.mode == "drip" and not upstream:
                    for index in range(len(data)):
                        writer.write(data[index : index + 1])
                        await writer.drain()
                        await asyncio.sleep(fault.drip_s)
                    continue
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
        except (ConnectionError, OSError, RuntimeError):
            _reset(writer)

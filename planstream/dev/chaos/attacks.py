"""Fires T28's attacks at a real ingress and records each answer; slow clients by hand.

``fire`` sends one ``HttpAttack`` (with the token its caller names) and reads what the refusal
named; ``exchange`` is a client that sends a request, then trickles bytes, and reports what the
server sent before closing (or that it never closed). ``peak_rss_bytes`` is the memory figure
the upload attacks are held to.
"""

import asyncio
import re
from collections.abc import Mapping
from pathlib import Path

import aiohttp

from planstream.dev.chaos.abuse import CLOSED, STILL_OPEN, HttpAttack, Outcome

__all__ = ["exchange", "fire", "peak_rss_bytes", "status_of"]

_CHALLENGE_ERROR = re.compile(r'error="([^"]*)"')


async def _named(answer: aiohttp.ClientResponse) -> str | None:
    """What a refusal named: the challenge's error (401), Retry-After (429), or the field."""
    if answer.status == 401:
        found = _CHALLENGE_ERROR.search(answer.headers.get("WWW-Authenticate", ""))
        return found.group(1) if found else None
    if answer.status == 429:
        return "Retry-After" if answer.headers.get("Retry-After", "").isdigit() else None
    try:
        body = await answer.json(content_type=None)
    except ValueError:
        return None
    field = body.get("field") if isinstance(body, dict) else None
    return str(field) if field is not None else None


async def fire(
    session: aiohttp.ClientSession,
    base_url: str,
    attack: HttpAttack,
    tokens: Mapping[str, str],
    subject: str = "",
) -> Outcome:
    """Send ``attack`` (``tokens`` by caller: user, operator); a closed connection is CLOSED."""
    headers = dict(attack.headers)
    if attack.caller != "none":
        headers.setdefault("Authorization", f"Bearer {tokens[attack.caller]}")
    try:
        async with session.request(
            attack.method, base_url + attack.path, data=attack.body, headers=headers
        ) as answer:
            return Outcome(attack, answer.status, await _named(answer), subject)
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError):
        return Outcome(attack, CLOSED, None, subject)


async def exchange(
    port: int, request: bytes, *, trickle: bytes = b"", every_s: float = 2.0, give_up_s: float
) -> bytes | None:
    """Send ``request``, then ``trickle`` a byte every ``every_s``: everything the server sent
    until it closed the connection, or None if it was still open after ``give_up_s``."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def drip() -> None:
        for byte in trickle:
            await asyncio.sleep(every_s)
            writer.write(bytes([byte]))
            await writer.drain()

    writer.write(request)
    await writer.drain()
    dripping = asyncio.create_task(drip())
    received = b""
    try:
        async with asyncio.timeout(give_up_s):
            while chunk := await reader.read(65_536):
                received += chunk
    except TimeoutError:
        return None
    except ConnectionResetError:
        pass  # closed, with a reset: the server did not wait for the rest
    finally:
        dripping.cancel()
        writer.close()
    return received


def status_of(received: bytes | None) -> int:
    """The HTTP status at the head of what :func:`exchange` received; CLOSED when the server
    sent nothing, STILL_OPEN when it never closed."""
    if received is None:
        return STILL_OPEN
    head = received.split(b"\r\n", 1)[0].split()
    if len(head) >= 2 and head[0].startswith(b"HTTP/") and head[1].isdigit():
        return int(head[1])
    return CLOSED


def peak_rss_bytes(pid: int) -> int:
    """The process's peak resident set size so far (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise LookupError(f"no VmHWM for process {pid}")

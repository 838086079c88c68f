"""Fault drivers over a Harness: crash points, kill -9 loops, pauses, extra instances.

Each driver only signals processes the harness started (by name, through the rig), runs a
bounded loop, and returns what it did, with times, for the report.
"""

import asyncio
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from planstream.dev.chaos.harness import Harness

__all__ = ["Crash", "CrashWatch", "arm", "kill_loop", "service_of"]

STEP_SERVICES = ("image_io", "info_worker", "comparison_worker", "supervisor", "render_worker")


def service_of(point: str) -> tuple[str, ...]:
    """The services where a crash point lives (``dedup.*`` is in every step service)."""
    prefix = point.split(".", 1)[0]
    return STEP_SERVICES if prefix == "dedup" else (prefix,)


@dataclass(frozen=True)
class Crash:
    """One process death the harness saw (or caused), and when it was started again."""

    name: str
    code: int | None
    at: datetime
    restarted_after_s: float


@dataclass
class CrashWatch:
    """Processes armed with crash points, watched until each died once (or time ran out)."""

    armed: dict[str, tuple[str, ...]]
    crashes: list[Crash] = field(default_factory=list)

    @property
    def pending(self) -> list[str]:
        crashed = {c.name for c in self.crashes}
        return [name for name in self.armed if name not in crashed]


async def arm(env: Harness, points: Sequence[str]) -> CrashWatch:
    """Restart each service that holds one of ``points`` with its points armed."""
    by_service: dict[str, list[str]] = {}
    for point in points:
        for service in service_of(point):
            by_service.setdefault(service, []).append(point)
    await asyncio.gather(
        *(
            asyncio.to_thread(env.restart, service, crashpoints=tuple(chosen))
            for service, chosen in by_service.items()
        )
    )
    return CrashWatch({service: tuple(chosen) for service, chosen in by_service.items()})


async def watch(env: Harness, crash_watch: CrashWatch, timeout_s: float) -> CrashWatch:
    """Wait for the armed processes to die; start each again at once without crash points."""
    deadline = time.monotonic() + timeout_s
    while crash_watch.pending and time.monotonic() < deadline:
        for name in crash_watch.pending:
            proc = env.rig.procs[name]
            code = proc.returncode()
            if code is None:
                continue
            at = datetime.now(UTC)
            began = time.monotonic()
            await asyncio.to_thread(env.rig.wait_exit, name, 5.0)
            await asyncio.to_thread(env.start_worker, name)
            crash_watch.crashes.append(Crash(name, code, at, time.monotonic() - began))
        await asyncio.sleep(0.3)
    return crash_watch


async def disarm(env: Harness, crash_watch: CrashWatch) -> None:
    """Start the services whose points were never reached again without them."""
    for name in crash_watch.pending:
        await asyncio.to_thread(env.restart, name)


async def kill_loop(
    env: Harness, services: Sequence[str], *, kills: int, every_s: float, seed: int
) -> list[Crash]:
    """``kill -9`` a seeded-random one of ``services`` every ``every_s``, restarting it at once."""
    chooser = random.Random(seed)
    done: list[Crash] = []
    for _ in range(kills):
        await asyncio.sleep(every_s * (0.5 + chooser.random()))
        name = chooser.choice(list(services))
        at = datetime.now(UTC)
        code = await asyncio.to_thread(env.rig.kill, name)
        began = time.monotonic()
        await asyncio.to_thread(env.start_worker, name)
        done.append(Crash(name, code, at, time.monotonic() - began))
    return done

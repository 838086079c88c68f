"""A private Kafka broker and PostgreSQL server for the faults that kill them (T05, T08).

They are built with the local stack's own code (``planstream.dev.stack``: prepare, launch,
readiness, provisioning) on a separate work dir and free ports, and started and signalled by the
rig, so the shared stack other engineers use is never touched.
"""

import asyncio
import signal
import time
from pathlib import Path
from typing import Literal

from planstream.dev.chaos.rig import Proc, Rig
from planstream.dev.isolation import free_port
from planstream.dev.launcher import child_env
from planstream.dev.stack.kafka import Kafka
from planstream.dev.stack.postgres import Postgres
from planstream.dev.stack.processes import ServiceFiles
from planstream.dev.stack.service import Service, ServiceDown
from planstream.settings import Settings

__all__ = ["PrivateInfra", "private_settings"]

Kind = Literal["kafka", "postgres"]


def private_settings(base: Settings, root: Path, postgres_password: str) -> Settings:
    """``base`` moved onto a private broker and server: new work dir and ports, no DSN override."""
    return base.with_overrides(
        work_dir=root,
        kafka_bootstrap=f"127.0.0.1:{free_port()}",
        kafka_controller_port=free_port(),
        postgres_port=free_port(),
        postgres_password=postgres_password,
        postgres_db="planstream_chaos",
        postgres_dsn=None,
    )


class PrivateInfra:
    """One private Kafka and one private PostgreSQL, run by ``rig`` under ``root``."""

    def __init__(self, rig: Rig, settings: Settings) -> None:
        self.rig = rig
        self.settings = settings
        root = settings.work_dir.resolve()
        self.services: dict[Kind, Service] = {
            "kafka": Kafka(settings, ServiceFiles("kafka", root / "kafka")),
            "postgres": Postgres(settings, ServiceFiles("postgres", root / "postgres")),
        }

    def name(self, kind: Kind) -> str:
        return f"private-{kind}"

    def proc(self, kind: Kind) -> Proc:
        return self.rig.procs[self.name(kind)]

    async def start(self, kind: Kind, timeout_s: float = 180.0) -> float:
        """Prepare (once), start and wait for ``kind``; seconds until it answered."""
        service = self.services[kind]
        service.files.folder.mkdir(parents=True, exist_ok=True)
        await service.prepare()
        launch = service.launch()
        began = time.monotonic()
        name = self.name(kind)
        env = child_env(self.settings)
        if name in self.rig.procs:
            await asyncio.to_thread(self.rig.restart, name, env)
        else:
            self.rig.start(name, launch.argv, env, cwd=launch.cwd, user=launch.user)
        await self._wait(service, name, began + timeout_s)
        await service.provision()
        return time.monotonic() - began

    async def _wait(self, service: Service, name: str, deadline: float) -> None:
        while True:
            try:
                await service.ready()
                return
            except ServiceDown as exc:
                if not self.rig.procs[name].alive():
                    raise RuntimeError(f"{name} exited:\n{self.rig.tail(name)}") from exc
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} not ready: {exc}") from exc
                await asyncio.sleep(0.5)

    def kill(self, kind: Kind) -> int | None:
        """Hard-kill: ``kill -9`` for Kafka; for PostgreSQL the immediate shutdown (SIGQUIT to the
        postmaster, what ``pg_ctl stop -m immediate`` sends: no checkpoint, crash recovery on
        the next start), since a SIGKILLed postmaster leaves its backends running."""
        name = self.name(kind)
        if kind == "kafka":
            return self.rig.kill(name)
        return self.rig.stop(name, grace_s=30.0, sig=signal.SIGQUIT)

    def stop(self, kind: Kind) -> int | None:
        service = self.services[kind]
        return self.rig.stop(self.name(kind), grace_s=service.stop_grace_s, sig=service.stop_signal)

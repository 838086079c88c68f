"""One fault-suite environment: its own topics, database, bucket, model server and workers.

The workers reach S3 through a TCP fault proxy and the model through an HTTP fault front, both
switchable at any time; behind the proxy, a gate refuses expired or altered presigned URLs as S3
does (``planstream.dev.chaos.s3gate``: moto serves them); with ``private=True`` Kafka and
PostgreSQL are private instances the harness may kill. Every secret the processes get is a
canary (see ``planstream.dev.chaos.secrets``).

Every planstream process it starts serves metrics on a port of its own (kept across restarts of
the same name), listed for the local stack's Prometheus in a targets file with the labels
``namespace=<tag>`` and ``suite=chaos``, removed when the harness stops: the dashboards show a
fault test as it runs, and T03 checks that the panels empty on a healthy system fill.
"""

import asyncio
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import asyncpg

from planstream.adapters.http.tokens import mint
from planstream.dev.chaos.infra import PrivateInfra, private_settings
from planstream.dev.chaos.load import Ledger, Load, Sample
from planstream.dev.chaos.modelfaults import ModelFaults
from planstream.dev.chaos.profiles import Profile
from planstream.dev.chaos.proxy import FaultProxy
from planstream.dev.chaos.rig import Proc, Rig, http_ready, log_says
from planstream.dev.chaos.s3gate import S3Gate
from planstream.dev.chaos.secrets import Canaries
from planstream.dev.isolation import (
    create_database,
    database_name,
    drop_database,
    free_port,
    isolated,
    new_tag,
)
from planstream.dev.launcher import (
    WORKERS,
    child_env,
    planstream_argv,
    prepare,
    service,
    targets_dir,
    targets_file,
    write_targets,
)
from planstream.dev.samples.generator import generate
from planstream.dev.samples.scenarios import Scenario
from planstream.settings import Settings

__all__ = ["TARGET_LABELS", "Harness", "make_samples"]

log = logging.getLogger(__name__)

_READY_TIMEOUT_S = 240.0
TARGET_LABELS = {"suite": "chaos"}
"""Added to the fault suite's scrape targets (with ``namespace``, the harness's tag)."""


def make_samples(
    folder: Path, seed: int, scenarios: Sequence[Scenario], count: int
) -> list[Sample]:
    """Draw ``count`` sample plans (the scenarios in turn) the harness's model server will know."""
    manifest = generate(folder, seed=seed, scenarios=tuple(scenarios), count=count, max_attempts=3)
    return [Sample(folder / entry.file, entry) for entry in manifest.samples]


class Harness:
    """Settings, processes and fault injectors of one environment; ``await start()`` first."""

    def __init__(
        self,
        base: Settings,
        profile: Profile,
        root: Path,
        *,
        private: bool = False,
        seed: int = 0,
    ) -> None:
        self.base = base
        self.profile = profile
        self.root = root
        self.private = private
        self.seed = seed
        self.tag = new_tag("c")
        self.canaries = Canaries.new()
        self.rig = Rig(root)
        self.infra: PrivateInfra | None = None
        self.s3: FaultProxy | None = None
        self.s3_gate: S3Gate | None = None
        self.model: ModelFaults | None = None
        self.settings = base
        self.samples: list[Sample] = []
        self.ingress_url = ""
        self.workers: list[str] = []
        self.metrics_ports: dict[str, int] = {}
        self.targets = targets_file(targets_dir(base), isolated(base, self.tag))
        self._admin_dsn = base.dsn

    # -- set-up ----------------------------------------------------------------------------------
    def _settings(self, **more: object) -> Settings:
        p = self.profile
        return isolated(
            self.settings,
            self.tag,
            s3_access_key_id=f"chaos-{self.tag}",
            s3_secret_access_key=self.canaries.s3_secret_access_key,
            model_api_key=self.canaries.model_api_key,
            ingress_port=free_port(),
            model_server_port=free_port(),
            model_samples_dir=self.samples[0].path.parent if self.samples else self.root,
            lease_s=p.lease_s,
            model_timeout_s=p.model_timeout_s,
            model_retry_after_cap_s=p.model_retry_after_cap_s,
            sweeper_interval_s=p.sweeper_interval_s,
            broker_commit_interval_s=0.2,
            # The load is one subject's: the per-subject quotas would refuse most of it.
            quota_runs_per_minute=1_000_000,
            quota_active_runs=1_000_000,
            **more,
        )

    async def start(self, samples: Sequence[Sample]) -> None:
        """Infrastructure, database, bucket, topics, model server, proxies, ingress, workers."""
        self.samples = list(samples)
        if self.private:
            self.settings = private_settings(
                self.base, self.root / "stack", self.canaries.postgres_password
            )
            self.infra = PrivateInfra(self.rig, self.settings)
            await asyncio.gather(self.infra.start("kafka"), self.infra.start("postgres"))
            self._admin_dsn = self.settings.dsn
        # workers -> fault proxy (TCP faults) -> gate (refuses presigned URLs as S3 does) -> moto
        self.s3_gate = S3Gate(
            self.base.s3_endpoint or "http://127.0.0.1:15000",
            self.canaries.s3_secret_access_key,
        )
        gate_port = self.s3_gate.start()
        self.s3 = FaultProxy("127.0.0.1", gate_port, "s3", seed=self.seed)
        s3_port = self.s3.start()
        # A private PostgreSQL has its own database already; on the shared one, make ours.
        own_database = {"postgres_dsn": None} if self.private else {}
        self.settings = self._settings(s3_endpoint=f"http://127.0.0.1:{s3_port}", **own_database)
        if not self.private:
            await create_database(self._admin_dsn, database_name(self.settings), timeout_s=30)
        await prepare(self.settings)
        self._start_model_server()
        self.model = ModelFaults(f"http://127.0.0.1:{self.settings.model_server_port}/v1")
        model_port = self.model.start()
        self.settings = self.settings.with_overrides(
            model_base_url=f"http://127.0.0.1:{model_port}/v1"
        )
        self.ingress_url = f"http://127.0.0.1:{self.settings.ingress_port}"
        names = ["ingress", *WORKERS]
        for name in names:
            self._spawn(name)
        for name in names:
            self.rig.wait_ready(self.rig.procs[name], self._ready(name), _READY_TIMEOUT_S)
        self.workers = list(WORKERS)

    def _start_model_server(self) -> None:
        env = child_env(self.settings)
        self.rig.start(
            "model-server",
            planstream_argv("model-server"),
            env,
            ready=http_ready(f"http://127.0.0.1:{self.settings.model_server_port}/healthz"),
            timeout_s=_READY_TIMEOUT_S,
        )

    @staticmethod
    def _ready(name: str) -> Callable[[Proc], bool]:
        return log_says(service(name.split("-")[0]).ready)

    def env(
        self, settings: Settings | None = None, extra: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        return child_env(
            settings or self.settings, {"PLANSTREAM_LOG_LEVEL": "INFO", **(extra or {})}
        )

    def _spawn(
        self, name: str, kind: str | None = None, env: Mapping[str, str] | None = None
    ) -> Proc:
        """Start ``name`` on its metrics port (a new name gets one and joins the targets)."""
        if name not in self.metrics_ports:
            self.metrics_ports[name] = free_port()
            write_targets(self.targets, self.settings, self.metrics_ports, TARGET_LABELS)
        port = {"PLANSTREAM_METRICS_PORT": str(self.metrics_ports[name])}
        return self.rig.start(name, service(kind or name).args, {**(env or self.env()), **port})

    # -- worker control -------------------------------------------------------------------------
    def start_worker(
        self,
        name: str,
        service: str | None = None,
        *,
        crashpoints: Sequence[str] = (),
        extra_env: Mapping[str, str] | None = None,
        overrides: Mapping[str, object] | None = None,
        wait: bool = True,
    ) -> Proc:
        """Start (again) an instance of ``service`` named ``name``, with crash points armed."""
        settings = self.settings.with_overrides(crashpoints=tuple(crashpoints), **(overrides or {}))
        env = self.env(settings, extra_env)
        proc = self._spawn(name, service or name.split("-")[0], env)
        if wait:
            self.rig.wait_ready(proc, self._ready(name), _READY_TIMEOUT_S)
        return proc

    def restart(
        self,
        name: str,
        *,
        crashpoints: Sequence[str] = (),
        extra_env: Mapping[str, str] | None = None,
        overrides: Mapping[str, object] | None = None,
        wait: bool = True,
    ) -> Proc:
        """Stop ``name`` if it runs (SIGTERM), then start it with these crash points/settings."""
        if self.rig.procs[name].alive():
            self.rig.stop(name)
        return self.start_worker(
            name, crashpoints=crashpoints, extra_env=extra_env, overrides=overrides, wait=wait
        )

    def ensure_running(self) -> list[str]:
        """Start again every standard worker that is not running (after a crash); their names."""
        restarted = []
        for name in ["ingress", *self.workers]:
            proc = self.rig.procs.get(name)
            if proc is None or not proc.alive():
                self.start_worker(name)
                restarted.append(name)
        return restarted

    # -- load ----------------------------------------------------------------------------------
    def loader(self, seed: int) -> Load:
        return Load(self.ingress_url, self.samples, seed, self.token())

    def token(self, *, operator: bool = False) -> str:
        """A bearer token of this environment's one load subject (or of its operator)."""
        if operator:
            return mint(self.settings, f"chaos-operator-{self.tag}", roles=("operator",))
        return mint(self.settings, f"chaos-{self.tag}")

    def auth(self, *, operator: bool = False) -> dict[str, str]:
        """The Authorization header of :meth:`token`, for raw requests."""
        return {"Authorization": f"Bearer {self.token(operator=operator)}"}

    async def load(
        self,
        count: int,
        *,
        seed: int,
        scenarios: Sequence[str] | None = None,
        rate_per_s: float | None = None,
    ) -> Ledger:
        return await self.loader(seed).run(
            count, rate_per_s=rate_per_s or self.profile.rate_per_s, scenarios=scenarios
        )

    async def connect(self) -> asyncpg.Connection:
        return await asyncpg.connect(self.settings.dsn, timeout=30)

    # -- tear-down -----------------------------------------------------------------------------
    async def stop(self, *, drop: bool = True) -> None:
        self.targets.unlink(missing_ok=True)
        await asyncio.to_thread(self.rig.close)
        for injector in (self.model, self.s3, self.s3_gate):
            if injector is not None:
                injector.close()
        if drop and not self.private and os.environ.get("PLANSTREAM_CHAOS_KEEP") != "1":
            await drop_database(self._admin_dsn, database_name(self.settings), timeout_s=30)

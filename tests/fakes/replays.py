"""A replay's ledger and production's recorded answers in memory, as the replay workers use
``adapters/postgres/replay_ledger.py`` and ``adapters/postgres/recorded_answers.py``; and a
``Runtime`` in replay mode on the fakes, wired as ``open_replay_runtime`` wires the real parts."""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace

from planstream.domain.records import Artifact
from planstream.domain.replay import ReplayMode
from planstream.ports import ModelClient, OriginalDecision, Purpose, RecordedCall, ReplayTerms
from planstream.services.replay_model import CostGate, CurrentReplay, FrozenModel, ReplayModel
from planstream.services.replay_scope import (
    NewPathRoutes,
    ReplayLimiter,
    ReplayPublisher,
    ReplayStorage,
)
from planstream.services.routing import Routing
from planstream.services.runtime import Runtime
from planstream.services.signing import SignedUrls
from tests.fakes.world import FakeWorld

__all__ = [
    "FakeRecordedAnswers",
    "FakeReplayLedger",
    "Mark",
    "ReplayWorld",
    "fake_replay",
    "replay_world",
]

fake_replay: ContextVar[str | None] = ContextVar("fake_replay", default=None)
"""The replay in hand in a test (the app sets ``current_replay`` in production)."""

Step = tuple[str, int, int]


@dataclass(frozen=True)
class Mark:
    """How a replayed attempt ended, as ``replay_attempts`` keeps it."""

    status: str
    error: str | None
    reconstructed: bool


@dataclass
class _Replay:
    mode: ReplayMode
    max_usd: float | None
    status: str = "running"
    cost_usd: float = 0.0


class FakeReplayLedger:
    """``ports.ReplayLedger`` in memory: the first outcome of an attempt stays."""

    def __init__(self) -> None:
        self.replays: dict[str, _Replay] = {}
        self.marks: dict[tuple[str, str, int, int], Mark] = {}
        self.noted: set[tuple[str, str, int, int]] = set()

    def add(
        self,
        replay_id: str,
        mode: ReplayMode,
        max_usd: float | None = None,
        status: str = "running",
    ) -> None:
        self.replays[replay_id] = _Replay(mode, max_usd, status)

    async def terms(self, replay_id: str) -> ReplayTerms | None:
        found = self.replays.get(replay_id)
        return None if found is None else ReplayTerms(found.mode, found.max_usd)

    async def status(self, replay_id: str) -> str | None:
        found = self.replays.get(replay_id)
        return None if found is None else found.status

    async def spent(self, replay_id: str) -> float:
        return self.replays[replay_id].cost_usd

    async def reserve(self, replay_id: str, usd: float) -> bool:
        found = self.replays[replay_id]
        if found.max_usd is not None and found.cost_usd + usd > found.max_usd:
            return False
        found.cost_usd += usd
        return True

    async def add_cost(self, replay_id: str, usd: float) -> None:
        found = self.replays[replay_id]
        found.cost_usd = max(0.0, found.cost_usd + usd)

    async def mark_attempt(
        self,
        replay_id: str,
        run_id: str,
        step_id: int,
        attempt: int,
        status: str,
        error: str | None = None,
    ) -> None:
        key = (replay_id, run_id, step_id, attempt)
        self.marks.setdefault(key, Mark(status, error, key in self.noted))

    async def note_reconstructed(
        self, replay_id: str, run_id: str, step_id: int, attempt: int
    ) -> None:
        self.noted.add((replay_id, run_id, step_id, attempt))


@dataclass
class FakeRecordedAnswers:
    """``ports.RecordedAnswers`` in memory: what production recorded, by step attempt."""

    calls: dict[tuple[str, int, int, Purpose], RecordedCall] = field(default_factory=dict)
    decisions: dict[Step, OriginalDecision] = field(default_factory=dict)
    spaces: dict[Step, Artifact] = field(default_factory=dict)

    async def call(
        self, run_id: str, step_id: int, attempt: int, purpose: Purpose
    ) -> RecordedCall | None:
        return self.calls.get((run_id, step_id, attempt, purpose))

    async def decision(self, run_id: str, step_id: int, attempt: int) -> OriginalDecision | None:
        return self.decisions.get((run_id, step_id, attempt))

    async def spaces_artifact(self, run_id: str, step_id: int, attempt: int) -> Artifact | None:
        return self.spaces.get((run_id, step_id, attempt))


@dataclass
class ReplayWorld:
    """The fakes of a replay process: production's world, the ledger, the recorded answers,
    and the live model's opener (which counts its openings)."""

    world: FakeWorld
    ledger: FakeReplayLedger
    records: FakeRecordedAnswers
    replay: CurrentReplay
    live_opened: int = 0

    async def _live(self) -> ModelClient:
        self.live_opened += 1
        return self.world.model

    def runtime(self, service: str) -> Runtime:
        """What ``open_replay_runtime`` gives ``service``, on the fakes."""
        base, replay = self.world.runtime(service), self.replay
        frozen = FrozenModel(self.records, self.world.storage, self.world.settings, replay)
        live = CostGate(self._live, self.world.settings, replay)
        storage = ReplayStorage(self.world.storage, replay)
        return replace(
            base,
            storage=storage,
            model=ReplayModel(replay, frozen, live),
            publisher=ReplayPublisher(self.world.publisher, replay),
            limiter=ReplayLimiter(self.world.limiter, replay),
            routing=Routing(NewPathRoutes(), self.world.settings.route_cache_s, self.world.clock),
            signed_urls=SignedUrls(base.repo, storage, base.settings, base.clock),
        )

    @contextmanager
    def inside(self, replay_id: str) -> Iterator[None]:
        """Work for ``replay_id`` inside the block, as the app does per event."""
        token = fake_replay.set(replay_id)
        try:
            yield
        finally:
            fake_replay.reset(token)


def replay_world(world: FakeWorld) -> ReplayWorld:
    """A replay process's fakes over ``world`` (production's records and storage)."""
    ledger = FakeReplayLedger()
    return ReplayWorld(world, ledger, FakeRecordedAnswers(), CurrentReplay(ledger, fake_replay.get))

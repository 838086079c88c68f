"""The external operations of one planstream step-0 run, per service: what the I/O floor makes.

Counted from planstream's code and pinned by a traced run on the real PostgreSQL adapters
(``tests/integration/test_round_trips.py`` asserts these numbers against planstream's own step
services: PostgreSQL statements, object reads and writes, model calls and publishes per
service). The I/O floor (``planstream.dev.bench.io_floor``) counts its own operations while it
runs and ``check_counts`` holds them to these numbers, so the floor can neither do less than
planstream's step-0 run must do, nor more. docs/benchmarks.md lists them with what each one is.
"""

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Final

from planstream.dev.bench.stats import BenchmarkFailed

__all__ = [
    "HOPS",
    "KINDS",
    "SINK",
    "SINK_STATEMENTS_PER_BATCH",
    "STEP_ZERO",
    "Operations",
    "check_counts",
]


@dataclass(frozen=True)
class Operations:
    """External operations of one step-0 attempt in one service (or of one sink batch)."""

    postgres: int = 0  # round trips (statements; a pipelined executemany is one)
    s3_get: int = 0
    s3_put: int = 0
    model: int = 0  # chat completions
    kafka_consume: int = 0  # records read
    kafka_produce: int = 0  # records sent (the output awaited; a dedup mark not awaited)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


KINDS: Final = tuple(Operations().as_dict())

STEP_ZERO: Final[Mapping[str, Operations]] = {
    # receipt; lease with the run; the input artifacts; checked copy's key and facts; the signed
    # URL cached; finish. GET the upload, PUT the checked copy. ImageReady + the dedup mark.
    "image_io": Operations(postgres=6, s3_get=1, s3_put=1, kafka_consume=1, kafka_produce=2),
    # receipt; lease (no run); the image artifact; the call: budget count, rate-limit
    # reservation, started, settlement, ended; two artifact rows; finish. PUT the raw answer and
    # the Spaces document. InfoExtracted + the dedup mark.
    "info_worker": Operations(postgres=11, s3_put=2, model=1, kafka_consume=1, kafka_produce=2),
    # receipt; lease with the run; both artifacts in one read; the call's five; finish. GET the
    # Spaces document. ComparisonCompleted + the dedup mark.
    "comparison_worker": Operations(
        postgres=9, s3_get=1, model=1, kafka_consume=1, kafka_produce=2
    ),
    # receipt; lease with the run; both artifacts; the call's five; the next step's route
    # claimed; finish. GET the Spaces document. DecisionMade, step 1's RenderRequested and the
    # dedup mark.
    "supervisor": Operations(postgres=10, s3_get=1, model=1, kafka_consume=1, kafka_produce=3),
}
"""Per step-0 attempt of a run with a request text (so the comparison asks the model)."""

HOPS: Final = tuple(STEP_ZERO)

SINK: Final = "decisions_sink"
SINK_STATEMENTS_PER_BATCH: Final = 5
"""``DecisionLog.write``: BEGIN, the pipelined INSERT of the batch, the runs' UPDATE, the read
of what was stored, COMMIT; then the batch's offsets are committed. One DecisionMade read per
run."""


def check_counts(hop: str, runs: int, counted: Mapping[str, int], batches: int = 0) -> None:
    """BenchmarkFailed unless ``counted`` is exactly what ``runs`` step-0 runs make in ``hop``
    (for the sink: one record read per run, ``SINK_STATEMENTS_PER_BATCH`` per batch)."""
    if hop == SINK:
        wanted = Operations(
            postgres=batches * SINK_STATEMENTS_PER_BATCH, kafka_consume=runs
        ).as_dict()
    elif hop in STEP_ZERO:
        wanted = {kind: n * runs for kind, n in STEP_ZERO[hop].as_dict().items()}
    else:
        raise BenchmarkFailed(f"the I/O floor has no hop {hop!r}")
    got = {kind: int(counted.get(kind, 0)) for kind in KINDS}
    stray = sorted(set(counted) - set(KINDS))
    if got != wanted or stray:
        diff = {k: (got[k], wanted[k]) for k in KINDS if got[k] != wanted[k]}
        raise BenchmarkFailed(
            f"I/O floor {hop}: {runs} runs made other operations than planstream's step 0"
            f" (counted, expected): {diff}{f'; unknown kinds {stray}' if stray else ''}"
        )

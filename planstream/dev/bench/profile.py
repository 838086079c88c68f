"""How big and how often: the full profile, the quick one, and a tiny one for the harness test."""

from dataclasses import dataclass

from planstream.dev import reporting

__all__ = ["FULL", "PROFILES", "QUICK", "TINY", "Profile"]


@dataclass(frozen=True)
class Profile(reporting.Profile):
    """Sizes and repeats of every figure."""

    repeats: int
    hop_messages: int
    hop_latency_messages: int
    hop_latency_rate: float
    pipeline_runs: int
    scaling_repeats: int
    slow_runs: int
    slow_repeats: int
    hang_s: float
    hol_runs: int
    hol_window_s: float
    sink_rows: int
    dedup_keys: int
    slow_delay_s: float = 1.0
    dedup_concurrency: int = 4
    timeout_s: float = 300.0


FULL = Profile(
    name="full",
    repeats=5,
    hop_messages=5_000,
    hop_latency_messages=500,
    hop_latency_rate=100.0,
    pipeline_runs=200,
    scaling_repeats=5,
    slow_runs=500,
    slow_repeats=5,
    hang_s=60.0,
    hol_runs=60,
    hol_window_s=40.0,
    sink_rows=20_000,
    dedup_keys=5_000,
    timeout_s=900.0,
)
QUICK = Profile(
    name="quick",
    repeats=2,
    hop_messages=800,
    hop_latency_messages=100,
    hop_latency_rate=100.0,
    pipeline_runs=24,
    scaling_repeats=1,
    slow_runs=100,
    slow_repeats=1,
    hang_s=10.0,
    hol_runs=12,
    hol_window_s=5.0,
    sink_rows=4_000,
    dedup_keys=1_000,
    timeout_s=120.0,
)
TINY = Profile(
    name="tiny",
    repeats=1,
    hop_messages=30,
    hop_latency_messages=10,
    hop_latency_rate=50.0,
    pipeline_runs=4,
    scaling_repeats=0,
    slow_runs=8,
    slow_repeats=1,
    slow_delay_s=0.2,
    hang_s=2.0,
    hol_runs=3,
    hol_window_s=1.0,
    sink_rows=200,
    dedup_keys=50,
    timeout_s=120.0,
)
PROFILES = reporting.by_name(FULL, QUICK, TINY)

"""Profiles: the short-lease profile CI runs, and the full profile ``make chaos`` runs.

Every duration and count a fault test uses comes from here, so the same test body runs in both.
The full profile uses a 60 s lease (not the 300 s default): a 300 s lease makes T03 and T18 take
over ten minutes each; the report says so.
"""

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from planstream.dev import reporting

__all__ = ["FULL", "PROFILES", "SHORT", "Profile", "current"]

ENV_VARIABLE: Final = "PLANSTREAM_CHAOS_PROFILE"


@dataclass(frozen=True)
class Profile(reporting.Profile):
    """Timeouts, repeats and sizes of one profile."""

    lease_s: int
    model_timeout_s: float
    model_retry_after_cap_s: float
    sweeper_interval_s: float
    runs: int  # runs per load phase
    rate_per_s: float  # runs submitted per second
    repeats: int  # repeats where RELIABILITY.md asks for 5-20
    crash_rounds: int  # T01: rounds over every named crash point
    kill_every_s: float  # T01: random kill -9 period
    kills: int  # T01: random kills per repeat
    kill_repeats: int  # T01: repeats of the random kill -9 loop
    dedup_repeats: int  # T02
    pause_extra_s: float  # T03: SIGSTOP for lease + this
    broker_restarts: int  # T05
    broker_down_s: float  # T05
    rebalance_cycles: int  # T07
    rebalance_wait_s: float  # T07
    pg_down_s: float  # T08
    dup_keys: int  # T12: keys, each sent by dup_producers producers at once
    dup_producers: int  # T12
    model_storm_s: float  # T17
    malformed_each: int  # T19: runs per malformed answer template
    s3_down_s: float  # T26
    injection_runs: int  # T21: runs started on the corpus's texts with an honest model
    compromised_runs: int  # T21: runs while the model answers as a compromised one would
    abuse_runs: int  # T28: legitimate runs while the attack corpus is fired
    abuse_load_s: float  # T28: the seconds those runs are spread over
    quiesce_s: float  # longest wait for every run to end after a fault heals


SHORT: Final = Profile(
    name="short",
    lease_s=20,
    model_timeout_s=3.0,
    model_retry_after_cap_s=2.0,
    sweeper_interval_s=2.0,
    runs=8,
    rate_per_s=2.0,
    repeats=1,
    crash_rounds=1,
    kill_every_s=15.0,
    kills=2,
    kill_repeats=1,
    dedup_repeats=2,
    pause_extra_s=10.0,
    broker_restarts=1,
    broker_down_s=10.0,
    rebalance_cycles=4,
    rebalance_wait_s=10.0,
    pg_down_s=30.0,
    dup_keys=4,
    dup_producers=100,
    model_storm_s=30.0,
    malformed_each=2,
    s3_down_s=30.0,
    injection_runs=41,
    compromised_runs=6,
    abuse_runs=10,
    abuse_load_s=20.0,
    quiesce_s=240.0,
)

FULL: Final = Profile(
    name="full",
    lease_s=60,
    model_timeout_s=10.0,
    model_retry_after_cap_s=5.0,
    sweeper_interval_s=5.0,
    runs=30,
    rate_per_s=2.0,
    repeats=5,
    crash_rounds=5,
    kill_every_s=15.0,
    kills=8,
    kill_repeats=2,
    dedup_repeats=20,
    pause_extra_s=10.0,
    broker_restarts=5,
    broker_down_s=10.0,
    rebalance_cycles=10,
    rebalance_wait_s=20.0,
    pg_down_s=30.0,
    dup_keys=20,
    dup_producers=100,
    model_storm_s=90.0,
    malformed_each=20,
    s3_down_s=30.0,
    injection_runs=82,
    compromised_runs=24,
    abuse_runs=40,
    abuse_load_s=60.0,
    quiesce_s=600.0,
)

PROFILES: Final = reporting.by_name(SHORT, FULL)


def current(environ: Mapping[str, str]) -> Profile:
    """The profile ``PLANSTREAM_CHAOS_PROFILE`` names (``short`` when unset)."""
    return reporting.from_environment(PROFILES, environ, ENV_VARIABLE, "short")


def from_environment() -> Profile:
    """The current profile from this process's environment (test fixtures use it)."""
    return current(os.environ)

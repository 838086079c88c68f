"""Pure statistics of benchmark figures: series, percentiles, pairs, ratios and targets."""

import math
import statistics
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from planstream.domain.errors import PlanstreamError

__all__ = [
    "BenchmarkFailed",
    "Better",
    "Figure",
    "Pair",
    "Series",
    "Target",
    "percentile",
    "verify_exactly_once",
]

Better = Literal["higher", "lower"]
K = TypeVar("K", bound=Hashable)


class BenchmarkFailed(PlanstreamError):
    """A benchmark's own output check failed (a lost or duplicated message): no number."""


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation between closest ranks."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Series:
    """One metric over the repeats of a figure."""

    values: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def min(self) -> float:
        return min(self.values)

    @property
    def max(self) -> float:
        return max(self.values)

    def as_dict(self) -> dict[str, object]:
        return {
            "median": self.median,
            "min": self.min,
            "max": self.max,
            "values": list(self.values),
        }


@dataclass(frozen=True)
class Pair:
    """A planstream figure and its baseline, measured alternately in the same run."""

    metric: str
    unit: str
    planstream: Series
    baseline: Series
    baseline_name: str
    better: Better = "higher"

    @classmethod
    def of(
        cls,
        metric: str,
        unit: str,
        planstream: Iterable[float],
        baseline: Iterable[float],
        baseline_name: str,
        better: Better = "higher",
    ) -> "Pair":
        """The pair of two runs of values, one per repeat each."""
        return cls(
            metric, unit, Series(tuple(planstream)), Series(tuple(baseline)), baseline_name, better
        )

    @property
    def ratio(self) -> float:
        """planstream's median over the baseline's median."""
        if self.baseline.median == 0:
            return math.inf
        return self.planstream.median / self.baseline.median

    def as_dict(self) -> dict[str, object]:
        return {
            "metric": self.metric,
            "unit": self.unit,
            "planstream": self.planstream.as_dict(),
            "baseline_name": self.baseline_name,
            "baseline": self.baseline.as_dict(),
            "ratio": self.ratio,
            "better": self.better,
        }


@dataclass(frozen=True)
class Target:
    """A target on one pair's ratio: ``ratio >= threshold`` (or ``<=`` for ``at_most``)."""

    text: str
    metric: str
    threshold: float
    at_most: bool = False

    def met(self, ratio: float) -> bool:
        return ratio <= self.threshold if self.at_most else ratio >= self.threshold


@dataclass
class Figure:
    """One benchmark's result: its pairs, its target, and what the report says about it."""

    key: str
    title: str
    repeats: int = 0
    pairs: list[Pair] = field(default_factory=list)
    target: Target | None = None
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    details: dict[str, object] = field(default_factory=dict)

    def pair(self, metric: str) -> Pair | None:
        return next((p for p in self.pairs if p.metric == metric), None)

    @property
    def target_ratio(self) -> float | None:
        if self.target is None:
            return None
        pair = self.pair(self.target.metric)
        return pair.ratio if pair is not None else None

    @property
    def target_met(self) -> bool | None:
        ratio = self.target_ratio
        if self.target is None or ratio is None or self.error is not None:
            return None
        return self.target.met(ratio)

    def as_dict(self) -> dict[str, object]:
        target = None
        if self.target is not None:
            target = {
                "text": self.target.text,
                "metric": self.target.metric,
                "threshold": self.target.threshold,
                "at_most": self.target.at_most,
                "ratio": self.target_ratio,
                "met": self.target_met,
            }
        return {
            "key": self.key,
            "title": self.title,
            "repeats": self.repeats,
            "verified": self.error is None and bool(self.pairs),
            "error": self.error,
            "pairs": [p.as_dict() for p in self.pairs],
            "target": target,
            "notes": self.notes,
            "details": self.details,
        }


def verify_exactly_once(what: str, expected: Sequence[K], seen: Sequence[K]) -> None:
    """Every expected key seen exactly once and nothing else, or BenchmarkFailed saying how."""
    wanted = set(expected)
    counts: dict[K, int] = {}
    for key in seen:
        counts[key] = counts.get(key, 0) + 1
    lost = [key for key in wanted if key not in counts]
    duplicated = [key for key, n in counts.items() if n > 1 and key in wanted]
    stray = [key for key in counts if key not in wanted]
    if lost or duplicated or stray or len(wanted) != len(expected):
        raise BenchmarkFailed(
            f"{what}: {len(expected)} expected, {len(lost)} lost, {len(duplicated)} duplicated,"
            f" {len(stray)} unexpected (e.g. {(lost + duplicated + stray)[:3]})"
        )

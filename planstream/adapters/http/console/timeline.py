"""A run's timeline, per step and attempt, from what PostgreSQL keeps (the run view and the
console's extras) and the Spaces documents read from storage: pure assembly, no I/O.

Each step attempt's jobs keep the event that started them (``payload_ref``) and what they
produced (``result_ref``): the images Image I/O checked, the Spaces document the Info Worker
stored, the comparison the Supervisor received. The decisions, model calls, reviews and fenced
writes carry their own step and attempt.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from planstream.adapters.http.console.overlay import SpacesView, spaces_view
from planstream.domain.spaces import ImageSize

__all__ = [
    "Attempt",
    "Document",
    "FailureLine",
    "Picture",
    "build_timeline",
    "pictures",
    "spaces_wanted",
]

_IMAGE_KINDS: Final = frozenset({"source_image", "render_image"})
Key = tuple[int, int]


@dataclass(frozen=True)
class Document:
    """A Spaces document as read from storage: its bytes, or why they could not be read."""

    raw: bytes | None
    problem: str | None = None


@dataclass(frozen=True)
class Picture:
    """An image of the run with what Image I/O measured of it (empty before it looked)."""

    artifact_id: str
    kind: str
    step_id: int | None
    width: int | None
    height: int | None
    format: str
    byte_size: int | None
    quality: str
    band: str
    within_band: bool | None

    @property
    def size(self) -> ImageSize | None:
        if self.width and self.height:
            return ImageSize(self.width, self.height)
        return None


@dataclass(frozen=True)
class FailureLine:
    """One rule that fired."""

    rule: str
    severity: str
    space_id: str
    detail: str
    suggested_fix: str


@dataclass(frozen=True)
class Attempt:
    """Everything one attempt of one step did, in the order the services did it."""

    step_id: int
    attempt: int
    jobs: tuple[dict[str, Any], ...]
    pictures: tuple[Picture, ...]
    spaces: SpacesView | None
    comparison: dict[str, Any] | None
    comparison_failures: tuple[FailureLine, ...]
    decisions: tuple[dict[str, Any], ...]
    reviews: tuple[dict[str, Any], ...]
    calls: tuple[dict[str, Any], ...]
    fenced: tuple[dict[str, Any], ...]

    @property
    def outcome(self) -> str:
        """The last decision of the attempt (a reviewer's comes after the Supervisor's)."""
        return self.decisions[-1]["decision"] if self.decisions else "undecided"


def _picture(artifact: Mapping[str, Any]) -> Picture:
    meta = artifact.get("metadata") or {}
    band = meta.get("band_px")
    width, height, size = meta.get("width_px"), meta.get("height_px"), meta.get("byte_size")
    within = meta.get("within_band")
    return Picture(
        artifact_id=artifact["artifact_id"],
        kind=artifact["kind"],
        step_id=artifact.get("step_id"),
        width=width if isinstance(width, int) else None,
        height=height if isinstance(height, int) else None,
        format=str(meta.get("format") or ""),
        byte_size=size if isinstance(size, int) else None,
        quality=str(meta.get("quality") or ""),
        band=f"{band[0]}-{band[1]} px" if isinstance(band, list) and len(band) == 2 else "",
        within_band=within if isinstance(within, bool) else None,
    )


def pictures(view: Mapping[str, Any]) -> tuple[Picture, ...]:
    """The run's images (the plan, then each render), in the order they were made."""
    return tuple(_picture(a) for a in view["artifacts"] if a["kind"] in _IMAGE_KINDS)


def _failures(items: Iterable[Any]) -> tuple[FailureLine, ...]:
    lines = []
    for item in items:
        if isinstance(item, Mapping):
            lines.append(
                FailureLine(
                    rule=str(item.get("rule") or ""),
                    severity=str(item.get("severity") or ""),
                    space_id=str(item.get("space_id") or ""),
                    detail=str(item.get("detail") or ""),
                    suggested_fix=str(item.get("suggested_fix") or ""),
                )
            )
    return tuple(lines)


def _event(job: Mapping[str, Any]) -> dict[str, Any]:
    payload = job.get("payload_ref")
    event = payload.get("event") if isinstance(payload, Mapping) else None
    return dict(event) if isinstance(event, Mapping) else {}


def _result(job: Mapping[str, Any]) -> dict[str, Any]:
    result = job.get("result_ref")
    return dict(result) if isinstance(result, Mapping) else {}


def _image_ids(jobs: Sequence[Mapping[str, Any]]) -> list[str]:
    """The images a step attempt's jobs read or made, each once, in order."""
    found: list[str] = []
    for job in jobs:
        event, result = _event(job), _result(job)
        ids = [
            *(event.get("input_artifact_ids") or []),
            *(event.get("artifact_ids") or []),
            event.get("image_artifact_id"),
        ]
        if job["service"] == "render_worker":
            ids.append(result.get("artifact_id"))
        found += [i for i in ids if isinstance(i, str) and i not in found]
    return found


def _spaces_id(jobs: Sequence[Mapping[str, Any]]) -> str | None:
    for job in jobs:
        candidate = _result(job).get("spaces_artifact_id") or _event(job).get("spaces_artifact_id")
        if isinstance(candidate, str):
            return candidate
    return None


def _comparison(jobs: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The comparison as the Supervisor received it, or its count from the Comparison Worker."""
    for job in jobs:
        event = _event(job)
        if event.get("kind") == "comparison.completed":
            return event
    for job in jobs:
        if job["service"] == "comparison_worker" and "failures" in _result(job):
            return {"failure_count": _result(job)["failures"], "failures": []}
    return None


def _by_key(rows: Iterable[Mapping[str, Any]]) -> dict[Key, list[dict[str, Any]]]:
    grouped: dict[Key, list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault((row["step_id"], row["attempt"]), []).append(dict(row))
    return grouped


def spaces_wanted(view: Mapping[str, Any], limit: int) -> list[str]:
    """The Spaces documents the timeline shows, newest step attempt first, at most ``limit``."""
    jobs = _by_key(view["jobs"])
    wanted = [_spaces_id(jobs[key]) for key in sorted(jobs, reverse=True)]
    return [artifact_id for artifact_id in wanted if artifact_id is not None][:limit]


def _decision(row: Mapping[str, Any]) -> dict[str, Any]:
    checks, audit = row.get("rule_checks"), row.get("llm_audit")
    listed = checks.get("failures", []) if isinstance(checks, Mapping) else checks or []
    audit = audit if isinstance(audit, Mapping) else {}
    score = audit.get("consistency_score")
    return {
        **row,
        "failures": _failures(listed),
        "consistency_score": score if isinstance(score, int | float) else None,
        "contradictions": [str(c) for c in audit.get("contradictions") or []],
        "audit_note": str(audit.get("skipped") or ""),
    }


def build_timeline(
    view: Mapping[str, Any],
    extras: Mapping[str, Sequence[Mapping[str, Any]]],
    documents: Mapping[str, Document],
    now: datetime,
) -> tuple[Attempt, ...]:
    """Every step attempt of the run, in order, with what each service recorded of it."""
    by_id = {p.artifact_id: p for p in (_picture(a) for a in view["artifacts"])}
    redrives = {row["job_id"]: row for row in extras.get("jobs", ())}
    jobs = _by_key(view["jobs"])
    decisions = _by_key(view["decisions"])
    reviews, fenced = _by_key(extras.get("reviews", ())), _by_key(extras.get("fenced", ()))
    calls = _by_key(view["model_calls"])
    keys = sorted(set(jobs) | set(decisions) | set(reviews) | set(calls))
    timeline = []
    for key in keys:
        held = jobs.get(key, [])
        shown_jobs = tuple(
            {
                **job,
                **redrives.get(job["job_id"], {}),
                "lease_live": bool(job.get("lease_expires_at") and job["lease_expires_at"] > now),
            }
            for job in held
        )
        images = [by_id[i] for i in _image_ids(held) if i in by_id]
        images = [image for image in images if image.kind in _IMAGE_KINDS]
        spaces = None
        spaces_id = _spaces_id(held)
        if spaces_id is not None and spaces_id in documents:
            document = documents[spaces_id]
            image = images[0] if images else None
            spaces = spaces_view(
                spaces_id,
                document.raw,
                document.problem,
                image.artifact_id if image else None,
                image.size if image else None,
            )
        comparison = _comparison(held)
        timeline.append(
            Attempt(
                step_id=key[0],
                attempt=key[1],
                jobs=shown_jobs,
                pictures=tuple(images),
                spaces=spaces,
                comparison=comparison,
                comparison_failures=_failures((comparison or {}).get("failures") or []),
                decisions=tuple(_decision(d) for d in decisions.get(key, [])),
                reviews=tuple(reviews.get(key, [])),
                calls=tuple(calls.get(key, [])),
                fenced=tuple(fenced.get(key, [])),
            )
        )
    return tuple(timeline)

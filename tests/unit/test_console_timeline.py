"""The run page's timeline and spaces overlay, assembled from rows as PostgreSQL keeps them, and
the templates rendering them with every value escaped."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from planstream.adapters.http.console.overlay import spaces_view
from planstream.adapters.http.console.rendering import age, environment
from planstream.adapters.http.console.session import Session
from planstream.adapters.http.console.sources import Letters
from planstream.adapters.http.console.timeline import (
    Document,
    build_timeline,
    pictures,
    spaces_wanted,
)
from planstream.domain.principals import Principal
from planstream.domain.spaces import ImageSize

EXAMPLE = Path(__file__).parents[1] / "contract" / "examples" / "spaces-valid-studio.json"
NOW = datetime(2026, 1, 2, 12, 0, tzinfo=UTC)
RUN = "run_" + "1" * 32
PLAN, SPACES = "art_" + "a" * 32, "art_" + "b" * 32


def _document(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(EXAMPLE.read_text())
    document.update(changes)
    return document


def _failure(rule: str, severity: str) -> dict[str, Any]:
    return {
        "rule": rule,
        "severity": severity,
        "space_id": None,
        "detail": f"{rule} <b>detail</b>",
        "suggested_fix": "draw the bathroom",
    }


def _job(service: str, attempt: int, event: dict[str, Any], result: dict[str, Any]) -> dict:
    return {
        "job_id": f"job_{service[:4]}{attempt}".ljust(36, "0"),
        "step_id": 0,
        "attempt": attempt,
        "service": service,
        "status": "completed",
        "attempts": 2 if service == "info_worker" else 1,
        "lease_epoch": 2,
        "locked_by": "worker-1",
        "lease_expires_at": NOW + timedelta(seconds=30),
        "last_error": None,
        "processing_time_ms": 12,
        "payload_ref": {"event": event},
        "result_ref": result,
    }


def _view() -> dict[str, Any]:
    failures = [_failure("CRITICAL_SPACE_MISSING", "high")]
    jobs = [
        _job("image_io", 1, {"input_artifact_ids": [PLAN]}, {"quality": "2K"}),
        _job("info_worker", 1, {"artifact_ids": [PLAN]}, {"spaces_artifact_id": SPACES}),
        _job("comparison_worker", 1, {"spaces_artifact_id": SPACES}, {"failures": 1}),
        _job(
            "supervisor",
            1,
            {
                "kind": "comparison.completed",
                "passed": False,
                "schema_valid": True,
                "failure_count": 1,
                "failures": failures,
            },
            {"decision": "block"},
        ),
    ]
    decision = {
        "step_id": 0,
        "attempt": 1,
        "decided_by": "supervisor",
        "decision": "block",
        "block_reason": "retry_budget_exhausted",
        "retry_budget_remaining": 0,
        "created_at": NOW,
        "rule_checks": {"failures": failures, "failure_count": 1},
        "llm_audit": {"consistency_score": 0.4, "contradictions": ["no <bathroom>"]},
    }
    reviewer = {
        **decision,
        "decided_by": "reviewer",
        "decision": "proceed",
        "block_reason": None,
        "rule_checks": [],
        "llm_audit": {"skipped": "decided by ops-ana: outside the sheet"},
    }
    return {
        "run_id": RUN,
        "status": "blocked",
        "block_reason": "retry_budget_exhausted",
        "current_step": 0,
        "owner": "ana",
        "created_at": NOW - timedelta(hours=1),
        "updated_at": NOW,
        "ratio": "4:3",
        "quality_post_step4": "2K",
        "trace_id": None,
        "last_error": None,
        "request_text": "<script>alert(1)</script> three bedrooms",
        "cost": {"total_usd": 0.05, "by_step": {}},
        "jobs": jobs,
        "artifacts": [
            {
                "artifact_id": PLAN,
                "kind": "source_image",
                "step_id": 0,
                "storage_bucket": "b",
                "storage_path": "p",
                "metadata": {
                    "width_px": 2000,
                    "height_px": 1400,
                    "format": "PNG",
                    "byte_size": 1234,
                    "quality": "2K",
                    "band_px": [1900, 3300],
                    "within_band": True,
                },
            },
            {
                "artifact_id": SPACES,
                "kind": "spaces_json",
                "step_id": 0,
                "storage_bucket": "b",
                "storage_path": "s",
                "metadata": {},
            },
        ],
        "decisions": [decision, reviewer],
        "model_calls": [
            {
                "step_id": 0,
                "attempt": 1,
                "purpose": "extract",
                "model": "m",
                "outcome": "answered",
                "input_tokens": 10,
                "output_tokens": 5,
                "latency_ms": 70,
                "cost_usd": 0.0035,
                "finish_reason": "stop",
                "waited_ms": 0,
            }
        ],
    }


def _extras() -> dict[str, list[dict[str, Any]]]:
    review = {
        "step_id": 0,
        "attempt": 1,
        "event_id": "evt_" + "e" * 32,
        "action": "approve",
        "reviewer": "ops-ana",
        "reason": "outside the sheet",
        "claimed_at": NOW,
    }
    return {"jobs": [], "fenced": [], "reviews": [review], "redrives": []}


def test_a_step_attempt_gathers_what_each_service_recorded() -> None:
    raw = json.dumps(_document()).encode()
    [attempt] = build_timeline(_view(), _extras(), {SPACES: Document(raw)}, NOW)
    assert (attempt.step_id, attempt.attempt, attempt.outcome) == (0, 1, "proceed")
    assert [p.artifact_id for p in attempt.pictures] == [PLAN]
    assert attempt.pictures[0].band == "1900-3300 px" and attempt.pictures[0].within_band
    assert [f.rule for f in attempt.comparison_failures] == ["CRITICAL_SPACE_MISSING"]
    assert [d["decided_by"] for d in attempt.decisions] == ["supervisor", "reviewer"]
    assert attempt.decisions[0]["consistency_score"] == 0.4
    assert attempt.decisions[1]["audit_note"].startswith("decided by ops-ana")
    assert attempt.reviews[0]["reviewer"] == "ops-ana"
    assert attempt.spaces is not None and attempt.spaces.problem is None
    assert attempt.spaces.overlay is not None
    assert attempt.spaces.overlay.image_artifact_id == PLAN
    assert spaces_wanted(_view(), 10) == [SPACES]
    assert [p.kind for p in pictures(_view())] == ["source_image"]


def test_boxes_are_clipped_to_the_image_and_low_confidence_is_marked() -> None:
    document = _document()
    document["spaces"][0]["bbox"] = {"x_min": 1500, "y_min": 1000, "x_max": 9000, "y_max": 9000}
    document["spaces"][1]["confidence"] = 0.2
    view = spaces_view(SPACES, json.dumps(document).encode(), None, PLAN, ImageSize(2000, 1400))
    assert view.overlay is not None
    first, second = view.overlay.boxes[:2]
    assert (first.x, first.y, first.x + first.width, first.y + first.height) == (
        1500,
        1000,
        2000,
        1400,
    )
    assert not view.rows[0].fits
    assert second.low_confidence and view.rows[1].low_confidence


@pytest.mark.parametrize(
    ("raw", "problem", "phrase"),
    [
        (b'{"spaces": ', None, "not JSON"),
        (json.dumps({"schema_version": "spaces-1.0"}).encode(), None, "spaces-v1"),
        (None, "object runs/x does not exist", "does not exist"),
    ],
)
def test_a_document_that_cannot_be_shown_says_why(
    raw: bytes | None, problem: str | None, phrase: str
) -> None:
    view = spaces_view(SPACES, raw, problem, PLAN, None)
    assert view.overlay is None and not view.rows
    assert view.problem is not None and phrase in view.problem


def test_the_run_page_escapes_every_value_it_shows() -> None:
    raw = json.dumps(_document()).encode()
    session = Session("a.b.c", Principal("ops-ana", frozenset({"operator"})))
    html = (
        environment()
        .get_template("run.html")
        .render(
            session=session,
            here="",
            run=_view(),
            pictures=pictures(_view()),
            timeline=build_timeline(_view(), _extras(), {SPACES: Document(raw)}, NOW),
            redrives=[],
            letters=Letters((), None),
            sent=None,
            actions=("approve", "retry", "reject"),
            now=NOW,
        )
    )
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)" in html
    assert "<b>detail</b>" not in html and "no &lt;bathroom&gt;" in html
    assert "CRITICAL_SPACE_MISSING" in html and "draw the bathroom" in html
    assert f'<image href="/console/runs/{RUN}/artifacts/{PLAN}"' in html
    assert 'name="csrf"' in html and "<script" not in html.split("</head>", 1)[1]


@pytest.mark.parametrize(
    ("seconds", "shown"), [(0, "0 s"), (59, "59 s"), (3_720, "1 h 2 min"), (90_061, "1 d 1 h")]
)
def test_an_age_shows_its_two_largest_units(seconds: int, shown: str) -> None:
    assert age(NOW - timedelta(seconds=seconds), NOW) == shown

"""`planstream flags report`'s figures from job rows: per path and step, requests, payload sizes
(nearest-rank percentiles), errors by code with WORKER_LIMIT always shown, step attempts on both
paths, take-overs, deliveries and the old function's calls."""

from typing import Any

import pytest

from planstream.adapters.postgres.path_report import percentile, summarise


def _job(service: str, step: int, **fields: Any) -> dict[str, Any]:
    row = {
        "run_id": fields.pop("run_id", "run_a"),
        "step_id": step,
        "attempt": fields.pop("attempt", 1),
        "service": service,
        "attempts": 1,
        "lease_epoch": 1,
        "last_error": None,
        "event": {"kind": "x", "pad": "y" * 90},
        "result_ref": None,
    }
    return row | fields


def _calls(*codes: str, size: int = 210) -> dict[str, Any]:
    calls = [{"code": c, "status": 200, "request_bytes": size, "response_bytes": 90} for c in codes]
    return {"path": "legacy", "calls": calls}


@pytest.mark.parametrize(
    ("values", "rank", "expected"),
    [([], 50, 0), ([7], 95, 7), ([1, 2, 3, 4], 50, 2), (list(range(1, 101)), 95, 95)],
)
def test_percentile(values: list[int], rank: float, expected: int) -> None:
    assert percentile(values, rank) == expected


def test_the_figures_of_each_path_and_step() -> None:
    rows = [
        _job("image_io", 0),
        _job("info_worker", 0, last_error="MODEL_UNAVAILABLE: 3 of 3", attempts=2),
        _job("legacy", 1, result_ref=_calls("SERVER_ERROR", "OK")),
        _job("legacy", 4, result_ref=_calls("WORKER_LIMIT", size=230), lease_epoch=2),
        _job("legacy", 4, attempt=2, result_ref=_calls("WORKER_LIMIT", size=250)),
    ]
    figures = {(f.path, f.step): f.as_dict() for f in summarise(rows)}

    assert list(figures) == [("new", 0), ("legacy", 1), ("legacy", 4)]
    new0 = figures["new", 0]
    assert (new0["requests"], new0["jobs"], new0["payloads"]) == (1, 2, 2)
    assert new0["p50_bytes"] == new0["max_bytes"] > 90
    assert new0["errors"] == {"WORKER_LIMIT": 0, "MODEL_UNAVAILABLE": 1}
    assert (new0["attempts_max"], new0["legacy_calls"]) == (2, 0)
    legacy1 = figures["legacy", 1]
    assert (legacy1["requests"], legacy1["legacy_calls"], legacy1["max_bytes"]) == (1, 2, 210)
    assert legacy1["errors"] == {"WORKER_LIMIT": 0, "SERVER_ERROR": 1}
    legacy4 = figures["legacy", 4]
    assert legacy4["errors"]["WORKER_LIMIT"] == 2 and legacy4["requests"] == 2
    assert (legacy4["p50_bytes"], legacy4["p95_bytes"], legacy4["taken_over"]) == (230, 250, 1)
    assert all(f["duplicate_jobs"] == 0 for f in figures.values())


def test_a_step_attempt_on_both_paths_is_a_duplicate_on_each() -> None:
    rows = [_job("render_worker", 2), _job("legacy", 2, result_ref=_calls("OK"))]
    figures = {f.path: f.as_dict() for f in summarise(rows)}
    assert figures["new"]["duplicate_jobs"] == figures["legacy"]["duplicate_jobs"] == 1


def test_hostile_rows_do_not_break_the_report() -> None:
    rows = [
        _job("legacy", 3, result_ref={"calls": ["x", {"code": 5, "request_bytes": "big"}]}),
        _job("image_io", 3, event="not an object", last_error="<script>: oops"),
    ]
    figures = {f.path: f.as_dict() for f in summarise(rows)}
    assert figures["legacy"]["legacy_calls"] == 1 and figures["legacy"]["payloads"] == 0
    assert figures["new"]["errors"] == {"WORKER_LIMIT": 0, "other": 1}

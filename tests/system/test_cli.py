"""`planstream runs create` and `runs show` against the real ingress and Image I/O worker."""

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from planstream.dev.launcher import planstream_argv
from planstream.settings import Settings
from tests.images import floor_plan_png

pytestmark = pytest.mark.usefixtures("ingress_url")


def _cli(settings: Settings, *args: str) -> str:
    done = subprocess.run(
        planstream_argv(*args),
        check=False,
        env={**os.environ, **settings.to_env()},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_runs_create_then_show_reports_the_measured_image(settings: Settings, tmp_path: Path):
    image = tmp_path / "plan.png"
    image.write_bytes(floor_plan_png(2048, 1536))
    run_id = _cli(settings, "runs", "create", "--image", str(image), "--request", "2 bedrooms")
    run_id = run_id.strip()
    assert run_id.startswith("run_")
    deadline = time.monotonic() + 30
    while True:
        view = json.loads(_cli(settings, "runs", "show", run_id))
        jobs = [j for j in view["jobs"] if j["service"] == "image_io"]
        if (jobs and jobs[0]["status"] == "completed") or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert jobs[0]["status"] == "completed" and jobs[0]["processing_time_ms"] >= 0
    [artifact] = view["artifacts"]
    meta = artifact["metadata"]
    assert (meta["width_px"], meta["height_px"], len(meta["sha256"])) == (2048, 1536, 64)
    assert artifact["signed_url_expires_at"]
    assert "signed_url_cached" not in artifact  # a bearer credential is never shown
    assert view["request_text"] == "2 bedrooms"
    assert re.fullmatch(r"[0-9a-f]{32}", view["trace_id"])  # the run's trace


def test_dlq_list_prints_its_answer_and_nothing_else(settings: Settings) -> None:
    """The Kafka client's INFO lines stay out (libraries log at WARNING); the answer is JSON."""
    done = subprocess.run(
        planstream_argv("dlq", "list"),
        check=False,
        env={**os.environ, **settings.to_env()},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    for line in done.stdout.splitlines():
        json.loads(line)

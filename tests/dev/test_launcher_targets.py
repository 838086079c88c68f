"""The launcher's Prometheus targets file: file_sd JSON naming each process and its metrics port,
written whole, and the files of launchers that died removed by the next one."""

import json
import os
import subprocess
import sys
from pathlib import Path

from planstream.dev import launcher
from planstream.settings import Settings


def test_the_targets_file_lists_each_process_with_its_labels(tmp_path: Path) -> None:
    settings = Settings(work_dir=tmp_path, topic_namespace="t0123456789.")
    path = launcher.targets_dir(settings) / "t0123456789-1-1.json"

    launcher.write_targets(path, settings, {"ingress": 40001, "sweeper": 40002})

    assert json.loads(path.read_text()) == [
        {
            "targets": ["127.0.0.1:40001"],
            "labels": {"process": "ingress", "namespace": "t0123456789"},
        },
        {
            "targets": ["127.0.0.1:40002"],
            "labels": {"process": "sweeper", "namespace": "t0123456789"},
        },
    ]
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no partial file left


def test_a_process_listening_everywhere_is_scraped_on_loopback(tmp_path: Path) -> None:
    settings = Settings(work_dir=tmp_path, metrics_host="0.0.0.0")
    path = launcher.targets_dir(settings) / "default-1-1.json"

    launcher.write_targets(path, settings, {"supervisor": 40003})

    [entry] = json.loads(path.read_text())
    assert entry == {
        "targets": ["127.0.0.1:40003"],
        "labels": {"process": "supervisor", "namespace": "default"},
    }


def test_only_the_files_of_dead_launchers_are_removed(tmp_path: Path) -> None:
    folder = tmp_path / "targets"
    folder.mkdir()
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    dead, live = (
        folder / f"default-{gone.stdout.strip()}-1.json",
        folder / f"t1-{os.getpid()}-3.json",
    )
    other = folder / "hand-written.json"
    for path in (dead, live, other):
        path.write_text("[]")

    launcher._remove_stale_targets(folder)

    assert sorted(p.name for p in folder.iterdir()) == sorted([live.name, other.name])

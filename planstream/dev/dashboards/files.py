"""The dashboards' JSON files in the checkout: written from the boards, compared with them."""

import json
from pathlib import Path
from typing import Final

from planstream.dev.dashboards.boards import BOARDS
from planstream.dev.dashboards.builder import Board, render

__all__ = ["DASHBOARDS_DIR", "drift", "expected_files", "write"]

DASHBOARDS_DIR: Final = Path(__file__).resolve().parents[3] / "deploy" / "grafana" / "dashboards"
"""Where Grafana (compose's provisioning, the chart's ConfigMap) finds them."""


def expected_files(boards: tuple[Board, ...] = BOARDS) -> dict[str, str]:
    """Each dashboard's file name and text: sorted keys, two-space indent, a final newline."""
    return {
        f"{board.slug}.json": json.dumps(render(board), indent=2, sort_keys=True) + "\n"
        for board in boards
    }


def write(folder: Path = DASHBOARDS_DIR) -> list[str]:
    """Write every dashboard into ``folder`` and remove JSON files no board makes; the names."""
    folder.mkdir(parents=True, exist_ok=True)
    expected = expected_files()
    for stale in folder.glob("*.json"):
        if stale.name not in expected:
            stale.unlink()
    for name, text in expected.items():
        (folder / name).write_text(text)
    return sorted(expected)


def drift(folder: Path = DASHBOARDS_DIR) -> list[str]:
    """How ``folder`` differs from what the boards make: one line per file, empty when equal."""
    expected = expected_files()
    present = {path.name for path in folder.glob("*.json")}
    problems = [f"{name}: missing" for name in sorted(set(expected) - present)]
    problems += [f"{name}: made by no board" for name in sorted(present - set(expected))]
    problems += [
        f"{name}: differs from the generated dashboard"
        for name in sorted(set(expected) & present)
        if (folder / name).read_text() != expected[name]
    ]
    return problems

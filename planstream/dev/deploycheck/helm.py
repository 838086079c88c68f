"""Helm, as a subprocess: find it, lint the chart, render it to objects.

Helm is built from source through the Go module proxy (``make tools``), into ``$(go env
GOPATH)/bin``; ``PLANSTREAM_HELM`` or ``--helm`` names another binary.
"""

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, Final

import yaml

__all__ = ["HELM_TIMEOUT_S", "HelmMissing", "find_helm", "lint", "template"]

HELM_TIMEOUT_S: Final = 120.0
"""The longest one helm command may take (a render takes about a second)."""


class HelmMissing(Exception):
    """helm was not found: run `make tools` (it builds helm with Go), or set PLANSTREAM_HELM."""


def _go_bin() -> Path:
    """Where ``go install`` puts binaries: GOBIN, else the first GOPATH entry's bin (as make)."""
    go = shutil.which("go")
    if go:
        done = subprocess.run(
            [go, "env", "GOBIN", "GOPATH"], capture_output=True, text=True, check=False, timeout=60
        )
        gobin, _, gopath = done.stdout.partition("\n")
        if done.returncode == 0 and gobin.strip():
            return Path(gobin.strip())
        first = gopath.strip().split(os.pathsep)[0]
        if done.returncode == 0 and first:
            return Path(first) / "bin"
    return Path.home() / "go" / "bin"


def find_helm(explicit: str | None = None) -> Path:
    """``explicit``, else ``PLANSTREAM_HELM``, else helm on PATH, else the one Go installed."""
    named = explicit or os.environ.get("PLANSTREAM_HELM")
    candidates = [Path(named)] if named else []
    if not named:
        on_path = shutil.which("helm")
        candidates += [Path(on_path)] if on_path else []
        candidates.append(_go_bin() / "helm")
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise HelmMissing(
        f"helm not found (looked at {', '.join(map(str, candidates))}): run `make tools`, "
        "which builds it with Go, or set PLANSTREAM_HELM"
    )


def _run(helm: Path, args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(helm), *args], capture_output=True, text=True, check=False, timeout=HELM_TIMEOUT_S
    )


def _values_args(values: list[Path], sets: dict[str, str] | None) -> list[str]:
    args = [arg for path in values for arg in ("-f", str(path))]
    return args + [
        arg for key, value in (sets or {}).items() for arg in ("--set", f"{key}={value}")
    ]


def lint(
    helm: Path, chart: Path, values: list[Path], sets: dict[str, str] | None = None
) -> list[str]:
    """``helm lint --strict`` with these values files; its output when it fails."""
    done = _run(helm, ["lint", "--strict", str(chart), *_values_args(values, sets)])
    if done.returncode == 0:
        return []
    named = " ".join(path.name for path in values) or "default values"
    return [f"helm lint --strict ({named}) failed:\n{done.stdout}{done.stderr}".rstrip()]


def template(
    helm: Path,
    chart: Path,
    values: list[Path],
    *,
    kube_version: str | None = None,
    sets: dict[str, str] | None = None,
) -> tuple[list[dict[str, Any]], str]:
    """The rendered objects (hooks included) and, when rendering failed, helm's error."""
    args = ["template", "planstream", str(chart), "--namespace", "planstream"]
    if kube_version:
        args += ["--kube-version", kube_version]
    done = _run(helm, args + _values_args(values, sets))
    if done.returncode != 0:
        return [], (done.stderr or done.stdout).strip()
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc], ""

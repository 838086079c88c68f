"""Finding the programs the local stack runs: Java, Maven, PostgreSQL's server and Prometheus."""

import os
import re
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Final

__all__ = [
    "DEBIAN_PG_ROOT",
    "MIN_JAVA",
    "find_java",
    "find_maven",
    "find_pg_bindir",
    "find_prometheus",
    "find_promtool",
    "java_major",
    "parse_java_major",
    "pick_highest",
]

MIN_JAVA: Final = 17  # Kafka 4.x brokers need Java 17+
DEBIAN_PG_ROOT: Final = Path("/usr/lib/postgresql")  # Debian/Ubuntu: <root>/<major>/bin/initdb

_JAVA_VERSION = re.compile(r'version "(\d+)(?:\.(\d+))?')


def _version_key(initdb: Path) -> tuple[int, ...]:
    """The numeric version of ``…/<version>/bin/initdb`` (``15`` → (15,), ``9.6`` → (9, 6))."""
    return tuple(int(part) for part in re.findall(r"\d+", initdb.parent.parent.name))


def pick_highest(initdbs: Iterable[Path]) -> Path | None:
    """The initdb of the highest PostgreSQL version among ``…/<version>/bin/initdb`` paths."""
    return max(initdbs, key=_version_key, default=None)


def _pg_config_bindir() -> Path | None:
    """The bin folder ``pg_config --bindir`` names, when it holds initdb."""
    pg_config = shutil.which("pg_config")
    if pg_config is None:
        return None
    result = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
    bindir = Path(result.stdout.strip())
    return bindir if result.returncode == 0 and (bindir / "initdb").is_file() else None


def find_pg_bindir() -> Path | None:
    """The folder of initdb and postgres: from PATH, then ``pg_config --bindir``, then Debian's."""
    on_path = shutil.which("initdb")
    if on_path is not None:
        return Path(on_path).resolve().parent
    from_pg_config = _pg_config_bindir()
    if from_pg_config is not None:
        return from_pg_config
    highest = pick_highest(DEBIAN_PG_ROOT.glob("*/bin/initdb"))
    return highest.parent if highest is not None else None


def find_java() -> Path | None:
    """``$JAVA_HOME/bin/java`` when JAVA_HOME is set, else java from PATH."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return Path(java_home) / "bin" / "java"
    on_path = shutil.which("java")
    return Path(on_path) if on_path is not None else None


def find_maven() -> Path | None:
    """mvn from PATH."""
    on_path = shutil.which("mvn")
    return Path(on_path) if on_path is not None else None


def find_prometheus() -> Path | None:
    """The Prometheus server from PATH (Debian's ``prometheus`` package puts it in /usr/bin)."""
    on_path = shutil.which("prometheus")
    return Path(on_path) if on_path is not None else None


def find_promtool() -> Path | None:
    """promtool from PATH: it checks and unit-tests rule files (same package as the server)."""
    on_path = shutil.which("promtool")
    return Path(on_path) if on_path is not None else None


def parse_java_major(version_output: str) -> int | None:
    """The major version in ``java -version`` output (``"17.0.15"`` → 17, ``"1.8.0_392"`` → 8)."""
    match = _JAVA_VERSION.search(version_output)
    if match is None:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def java_major(java: Path) -> int | None:
    """The major version of a Java runtime, or None when it cannot tell."""
    result = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    return parse_java_major(result.stderr + result.stdout)

"""The Kafka broker's jars: copied once from Maven Central into a per-version cache folder."""

import logging
import os
import shutil
from importlib import resources
from pathlib import Path

from planstream.dev.stack.processes import ServiceFiles, run_logged
from planstream.dev.stack.service import StackError

__all__ = ["cache_dir", "fetch", "is_cached", "libs_dir"]

logger = logging.getLogger(__name__)

_POM = "kafka-pom.xml"


def _pom_text() -> str:
    """The pom shipped with planstream that lists the broker's class path."""
    return resources.files("planstream.dev.stack").joinpath(_POM).read_text()


def cache_dir(version: str) -> Path:
    """``$XDG_CACHE_HOME/planstream/kafka-<version>`` (``~/.cache`` without XDG_CACHE_HOME)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "planstream" / f"kafka-{version}"


def libs_dir(version: str) -> Path:
    """The folder of the broker's class path: every jar in it goes on ``-cp``."""
    return cache_dir(version) / "libs"


def is_cached(version: str) -> bool:
    """Whether the jars are there, fetched with the pom this planstream ships."""
    used_pom = cache_dir(version) / "pom.xml"
    return libs_dir(version).is_dir() and used_pom.is_file() and used_pom.read_text() == _pom_text()


async def fetch(version: str, maven: Path | None, files: ServiceFiles) -> None:
    """Copy the broker's jars into libs_dir() with Maven unless cached; output to the log."""
    folder, libs = cache_dir(version), libs_dir(version)
    if is_cached(version):
        return
    if maven is None:
        raise StackError(f"Maven (mvn) is needed to fetch the Kafka {version} jars into {libs}.")
    logger.info(
        "kafka: fetching the Kafka %s jars with Maven into %s (first run only)", version, libs
    )
    folder.mkdir(parents=True, exist_ok=True)
    staging = folder / f"libs.{os.getpid()}.tmp"
    pom = folder / f"pom.{os.getpid()}.tmp.xml"
    pom.write_text(_pom_text())
    argv = [
        str(maven),
        "-B",
        "-q",
        "-Dstyle.color=never",
        "-f",
        str(pom),
        f"-Dkafka.version={version}",
        f"-DoutputDirectory={staging}",
        "dependency:copy-dependencies",
    ]
    code = await run_logged(argv, files)
    if code != 0:
        shutil.rmtree(staging, ignore_errors=True)
        pom.unlink()
        raise StackError(f"Maven could not fetch the Kafka {version} jars (exit code {code})")
    # Swap the complete folder in, so an interrupted fetch never looks cached.
    shutil.rmtree(libs, ignore_errors=True)
    staging.replace(libs)
    pom.replace(folder / "pom.xml")

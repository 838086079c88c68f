"""The local Prometheus: the distribution's server, scraping planstream's processes on loopback.

It finds what to scrape in the file_sd target files the launcher writes for every process it
starts (``<work_dir>/prometheus/targets/*.json``), evaluates the repository's alert rules
(``deploy/prometheus/*.rules.yml``) and keeps its data under the work dir.
"""

import json
from pathlib import Path
from typing import Final

from planstream.dev.launcher import targets_dir
from planstream.dev.stack.processes import Launch
from planstream.dev.stack.service import Service, probe_http
from planstream.dev.stack.tools import find_prometheus
from planstream.settings import Settings

__all__ = [
    "RULES_DIR",
    "SCRAPE_JOB",
    "Prometheus",
    "duration",
    "render_config",
]

RULES_DIR: Final = Path(__file__).resolve().parents[3] / "deploy" / "prometheus"
"""The alert rules of the checkout (dev tools run from a checkout only)."""
SCRAPE_JOB: Final = "planstream"  # the job label compose and the chart give planstream's processes
_RULES_GLOB: Final = "*.rules.yml"
_TARGETS_REFRESH: Final = "5s"  # file_sd watches the folder; this is the fallback re-read


def duration(seconds: float) -> str:
    """A Prometheus duration for ``seconds`` (``2.0`` → ``"2s"``, ``0.5`` → ``"500ms"``)."""
    millis = round(seconds * 1000)
    return f"{millis // 1000}s" if millis % 1000 == 0 else f"{millis}ms"


def render_config(settings: Settings, targets: Path, rules: Path) -> str:
    """prometheus.yml: scrape every target file, evaluate every rule file, at one interval.

    Written as JSON, which YAML reads as it is: every path and value is quoted correctly
    whatever it holds.
    """
    interval = duration(settings.prometheus_scrape_interval_s)
    config = {
        "global": {
            "scrape_interval": interval,
            "scrape_timeout": interval,
            "evaluation_interval": interval,
        },
        "rule_files": [str(rules / _RULES_GLOB)],
        "scrape_configs": [
            {
                "job_name": SCRAPE_JOB,
                "file_sd_configs": [
                    {"files": [str(targets / "*.json")], "refresh_interval": _TARGETS_REFRESH}
                ],
            }
        ],
    }
    header = "# Written by `planstream stack up` from the settings; edits are overwritten.\n"
    return header + json.dumps(config, indent=2) + "\n"


class Prometheus(Service):
    """``prometheus --config.file=<work_dir>/prometheus/prometheus.yml`` on 127.0.0.1."""

    name = "prometheus"

    @property
    def _config(self) -> Path:
        return self.files.folder / "prometheus.yml"

    def address(self) -> str:
        """The URL of its web UI and query API."""
        return self.settings.prometheus_url

    def ports(self) -> tuple[tuple[str, int], ...]:
        """Its web port on loopback."""
        return (("127.0.0.1", self.settings.prometheus_port),)

    def missing_prerequisite(self) -> str | None:
        """The prometheus server binary on PATH."""
        if find_prometheus() is not None:
            return None
        return (
            "The local Prometheus needs the prometheus server on PATH and none was found: "
            "apt-get install -y prometheus (it brings promtool too)."
        )

    async def prepare(self) -> None:
        """Write prometheus.yml and create the target and data folders."""
        targets = targets_dir(self.settings).expanduser().resolve()
        targets.mkdir(parents=True, exist_ok=True)
        (self.files.folder / "data").mkdir(exist_ok=True)
        self._config.write_text(render_config(self.settings, targets, RULES_DIR))

    def launch(self) -> Launch:
        """The server on 127.0.0.1 only, its TSDB in the work dir; POST /-/reload re-reads rules."""
        prometheus = find_prometheus()
        argv = [
            str(prometheus or "prometheus"),
            f"--config.file={self._config}",
            f"--storage.tsdb.path={self.files.folder / 'data'}",
            f"--storage.tsdb.retention.time={self.settings.prometheus_retention_h}h",
            f"--web.listen-address=127.0.0.1:{self.settings.prometheus_port}",
            "--web.enable-lifecycle",
        ]
        return Launch(argv, cwd=self.files.folder)

    async def healthy(self) -> None:
        """``GET <prometheus_url>/-/ready`` answers 200 (its TSDB open, its rules loaded)."""
        url = self.settings.prometheus_url.rstrip("/") + "/-/ready"
        await probe_http(url)

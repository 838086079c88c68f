"""The manifest: ``manifest.json`` lists a folder's samples, their scenario and expected outcome."""

from pathlib import Path
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from planstream.dev.samples.scenarios import Scenario

__all__ = ["MANIFEST_FORMAT", "MANIFEST_NAME", "Expected", "Manifest", "SampleEntry"]

MANIFEST_FORMAT: Final = "planstream-samples/1"
MANIFEST_NAME: Final = "manifest.json"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Expected(_Model):
    """How a run of the sample ends, and how many extraction calls step 0 takes."""

    outcome: Literal["completed", "blocked"]
    block_reason: str | None
    step0_attempts: int = Field(ge=1)


class SampleEntry(_Model):
    """One sample: its image, truth document, scenario, request text and expected outcome."""

    id: str = Field(pattern=r"^[a-z0-9-]+$")
    file: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    width_px: int = Field(ge=1)
    height_px: int = Field(ge=1)
    document_type: str
    plan_type: str
    layout: str
    scenario: Scenario
    request_text: str
    truth: str
    expected: Expected


class Manifest(_Model):
    """A folder of samples made by ``planstream samples generate``."""

    format: Literal["planstream-samples/1"] = MANIFEST_FORMAT
    seed: int
    max_attempts: int = Field(ge=1, description="the retry budget `expected` assumes")
    samples: tuple[SampleEntry, ...]

    @classmethod
    def read(cls, path: Path) -> "Manifest":
        """The manifest at ``path``; a malformed one raises pydantic's ValidationError."""
        return cls.model_validate_json(path.read_bytes())

    def write(self, folder: Path) -> Path:
        """Write ``manifest.json`` into ``folder``; returns its path."""
        path = folder / MANIFEST_NAME
        path.write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")
        return path

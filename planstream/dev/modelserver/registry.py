"""The registry: which image (by SHA-256) is which sample, and how often it has been extracted.

Samples come from every ``manifest.json`` under ``model_samples_dir``, re-read when an image is
not found (samples may be generated after the server started); renders the server made are
registered in memory, each pointing at its sample and size. Nothing here does network I/O.
"""

import asyncio
import json
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from planstream.dev.samples.manifest import MANIFEST_NAME, Manifest, SampleEntry
from planstream.dev.samples.truth import Document, scaled
from planstream.domain.spaces import SpacesDocument, load_spaces

__all__ = ["Registry", "ScriptedImage"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScriptedImage:
    """A known image: its sample, its truth at its own size, and whether scenarios apply to it."""

    sample: SampleEntry
    truth: Document
    is_source: bool


@dataclass(frozen=True)
class _Render:
    source_sha256: str
    width: int
    height: int


def _read_folder(manifest_path: Path) -> dict[str, ScriptedImage]:
    """The samples one manifest lists, each with its checked truth document."""
    manifest = Manifest.read(manifest_path)
    found = {}
    for entry in manifest.samples:
        truth_path = manifest_path.parent / entry.truth
        truth = json.loads(truth_path.read_text(encoding="utf-8"))
        if not isinstance(load_spaces(truth), SpacesDocument):
            log.warning("skipping %s: its truth is not a spaces-v1 document", truth_path)
            continue
        found[entry.sha256] = ScriptedImage(entry, truth, is_source=True)
    return found


class Registry:
    """Samples by image hash, the renders made from them, and extraction calls per image."""

    def __init__(self, samples_dir: Path) -> None:
        self._samples_dir = samples_dir
        self._sources: dict[str, ScriptedImage] = {}
        self._renders: dict[str, _Render] = {}
        self._calls: Counter[str] = Counter()
        self._reload_lock = asyncio.Lock()

    def load(self) -> int:
        """Read every manifest under the samples folder (a broken one is logged and skipped)."""
        sources: dict[str, ScriptedImage] = {}
        for path in sorted(self._samples_dir.rglob(MANIFEST_NAME)):
            try:
                folder = _read_folder(path)
            except (OSError, ValueError, ValidationError) as exc:
                log.warning("skipping %s: %s", path, exc)
                continue
            for sha, image in folder.items():
                earlier = sources.get(sha)
                if earlier is not None and earlier.sample != image.sample:
                    log.warning("%s lists image %s again; the later entry wins", path, sha[:12])
            sources.update(folder)
        self._sources = sources
        log.info("%d scripted samples under %s", len(sources), self._samples_dir)
        return len(sources)

    def find(self, sha256: str) -> ScriptedImage | None:
        """The image with this hash, if it is a sample or a render of one."""
        source = self._sources.get(sha256)
        if source is not None:
            return source
        render = self._renders.get(sha256)
        origin = self._sources.get(render.source_sha256) if render else None
        if render is None or origin is None:
            return None
        truth = scaled(origin.truth, render.width, render.height)
        return ScriptedImage(origin.sample, truth, is_source=False)

    async def lookup(self, sha256: str) -> ScriptedImage | None:
        """``find``, re-reading the manifests once when the hash is unknown."""
        found = self.find(sha256)
        if found is not None:
            return found
        async with self._reload_lock:
            found = self.find(sha256)
            if found is None:
                await asyncio.to_thread(self.load)
                found = self.find(sha256)
        return found

    def register_render(self, sha256: str, made_from: ScriptedImage, size: tuple[int, int]) -> None:
        """Remember a render: its hash now answers for ``made_from``'s sample at ``size``."""
        self._renders[sha256] = _Render(made_from.sample.sha256, size[0], size[1])

    def next_call(self, sha256: str) -> int:
        """Count one more extraction call for the image; returns its number (1 for the first)."""
        self._calls[sha256] += 1
        return self._calls[sha256]

    def reset(self) -> None:
        """Forget every call count and every render (the samples stay)."""
        self._calls.clear()
        self._renders.clear()

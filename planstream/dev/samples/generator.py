"""``planstream samples generate``: draw the samples, check their truth, write the manifest."""

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path

from planstream.dev.samples.drawing import draw_photo, draw_plan, draw_site_plan, png_bytes
from planstream.dev.samples.layout import plan_layout
from planstream.dev.samples.manifest import Expected, Manifest, SampleEntry
from planstream.dev.samples.programs import pick_program
from planstream.dev.samples.scenarios import Scenario, expectation, scenario_sequence
from planstream.dev.samples.truth import Document, non_plan_truth, plan_truth
from planstream.domain.decisions import DecisionCase, decide_case
from planstream.domain.errors import PermanentError
from planstream.domain.rules import Policy
from planstream.domain.spaces import ImageSize, SpacesDocument, load_spaces

__all__ = ["Sample", "TruthInvalid", "build_sample", "generate"]

_NON_PLAN_REQUEST = "Furnish the living room in a warm Scandinavian style."


class TruthInvalid(PermanentError):
    """A generated truth document fails spaces-v1 or a rule: a bug in the generator."""


@dataclass(frozen=True)
class Sample:
    """One drawn sample: the PNG, its truth, and the words a user asks for it with."""

    id: str
    png: bytes
    truth: Document
    layout: str
    request_text: str


def build_sample(seed: int, index: int, scenario: Scenario) -> Sample:
    """Sample ``index`` of ``seed``: the same arguments always give the same bytes."""
    rng = random.Random(f"{seed}:{index}:{scenario}")
    sample_id = f"sample-{index:02d}"
    if scenario == "not_a_floor_plan":
        site = rng.random() < 0.5
        draw = draw_site_plan if site else draw_photo
        image = draw(rng, f"{seed}-{index:02d}")
        kind = "site_plan" if site else "interior_render_or_photo"
        truth = non_plan_truth(kind, image.size)
        return Sample(sample_id, png_bytes(image), truth, kind, _NON_PLAN_REQUEST)
    program = pick_program(rng, residential_only=scenario == "missing_room")
    plan = plan_layout(rng, program, f"{program.name.upper()} - PLAN {seed}-{index:02d}")
    truth = plan_truth(plan, rng)
    return Sample(sample_id, png_bytes(draw_plan(plan)), truth, program.name, program.request_text)


def _check(sample: Sample) -> None:
    """The truth passes spaces-v1 and every rule (a non-plan only fails NOT_A_FLOOR_PLAN)."""
    loaded = load_spaces(sample.truth)
    if not isinstance(loaded, SpacesDocument):
        raise TruthInvalid(f"{sample.id}: truth {loaded.reason}")
    result = decide_case(DecisionCase(loaded, image=loaded.image), Policy())
    rules = [failure.rule for failure in result.failures]
    allowed = [] if loaded.is_floor_plan else ["NOT_A_FLOOR_PLAN"]
    if rules != allowed:
        raise TruthInvalid(f"{sample.id}: truth fails {', '.join(rules)}")


def _entry(sample: Sample, scenario: Scenario, max_attempts: int) -> SampleEntry:
    size = ImageSize(sample.truth["image"]["width_px"], sample.truth["image"]["height_px"])
    expected = expectation(scenario, max_attempts)
    return SampleEntry(
        id=sample.id,
        file=f"{sample.id}.png",
        sha256=hashlib.sha256(sample.png).hexdigest(),
        width_px=size.width_px,
        height_px=size.height_px,
        document_type=sample.truth["document_type"],
        plan_type=sample.truth["plan_type"],
        layout=sample.layout,
        scenario=scenario,
        request_text=sample.request_text,
        truth=f"{sample.id}.spaces.json",
        expected=Expected(
            outcome=expected.outcome,
            block_reason=expected.block_reason,
            step0_attempts=expected.step0_attempts,
        ),
    )


def generate(
    folder: Path,
    *,
    seed: int,
    count: int | None = None,
    scenarios: tuple[Scenario, ...] | None = None,
    max_attempts: int = 3,
) -> Manifest:
    """Write the samples, their truth and ``manifest.json`` into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for index, scenario in enumerate(scenario_sequence(count, scenarios), start=1):
        sample = build_sample(seed, index, scenario)
        _check(sample)
        entry = _entry(sample, scenario, max_attempts)
        (folder / entry.file).write_bytes(sample.png)
        truth_text = json.dumps(sample.truth, indent=2, ensure_ascii=False) + "\n"
        (folder / entry.truth).write_text(truth_text, encoding="utf-8")
        entries.append(entry)
    manifest = Manifest(seed=seed, max_attempts=max_attempts, samples=tuple(entries))
    manifest.write(folder)
    return manifest

"""The sample generator: real 2K PNGs whose truth passes spaces-v1 and the rules, per scenario."""

import hashlib
import io
import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from planstream.dev.modelserver.audit import audit
from planstream.dev.modelserver.comparison import mismatches
from planstream.dev.samples import flaws
from planstream.dev.samples.generator import build_sample, generate
from planstream.dev.samples.manifest import Manifest, SampleEntry
from planstream.dev.samples.scenarios import (
    DEFAULT_EXTRA_CORRECT,
    SCENARIOS,
    SamplesRequestInvalid,
    parse_scenarios,
    scenario_sequence,
)
from planstream.dev.samples.truth import Document, scaled
from planstream.domain.decisions import Audit, DecisionCase, decide_case
from planstream.domain.rules import Policy
from planstream.domain.spaces import HABITABLE_TYPES, ImageSize, SpacesDocument, load_spaces

SEED = 7


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("samples")
    generate(path, seed=SEED)
    return path


@pytest.fixture(scope="module")
def manifest(folder: Path) -> Manifest:
    return Manifest.read(folder / "manifest.json")


def truth_of(folder: Path, entry: SampleEntry) -> Document:
    document: Document = json.loads((folder / entry.truth).read_text())
    return document


def loaded(document: object) -> SpacesDocument:
    result = load_spaces(document)
    assert isinstance(result, SpacesDocument), result
    return result


def decision(document: Document, **case: Any) -> tuple[str, str | None, list[str]]:
    doc = loaded(document)
    result = decide_case(DecisionCase(doc, image=doc.image, **case), Policy())
    return result.decision, result.block_reason, [f.rule for f in result.failures]


def test_default_set_holds_every_scenario_then_correct_plans(manifest: Manifest) -> None:
    scenarios = [entry.scenario for entry in manifest.samples]
    assert scenarios == [*SCENARIOS, *["correct"] * DEFAULT_EXTRA_CORRECT]
    assert manifest.seed == SEED
    assert manifest.max_attempts == 3


def test_each_png_is_a_2k_image_with_the_manifest_hash_and_size(
    folder: Path, manifest: Manifest
) -> None:
    for entry in manifest.samples:
        data = (folder / entry.file).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry.sha256
        with Image.open(io.BytesIO(data)) as image:
            assert image.format == "PNG"
            assert image.size == (entry.width_px, entry.height_px)
        assert 2048 <= max(image.size) <= 3000
    assert len({entry.sha256 for entry in manifest.samples}) == len(manifest.samples)


def test_truth_is_spaces_v1_and_the_image_size(folder: Path, manifest: Manifest) -> None:
    for entry in manifest.samples:
        document = loaded(truth_of(folder, entry))
        assert document.image == ImageSize(entry.width_px, entry.height_px)
        assert document.plan_type == entry.plan_type
        assert document.document_type == entry.document_type


def test_floor_plans_pass_every_rule_and_other_images_are_not_floor_plans(
    folder: Path, manifest: Manifest
) -> None:
    for entry in manifest.samples:
        verdict = decision(truth_of(folder, entry))
        if entry.scenario == "not_a_floor_plan":
            assert verdict == ("block", "NOT_A_FLOOR_PLAN", ["NOT_A_FLOOR_PLAN"])
            assert entry.document_type in {"site_plan", "interior_render_or_photo"}
        else:
            assert verdict == ("proceed", None, [])
            assert entry.document_type == "single_floor_plan"


def test_rooms_are_inside_the_image_and_do_not_overlap(folder: Path, manifest: Manifest) -> None:
    for entry in manifest.samples:
        document = loaded(truth_of(folder, entry))
        boxes = [space.bbox for space in document.spaces]
        assert all(box.fits(document.image) for box in boxes)
        for a, b in itertools.combinations(boxes, 2):
            overlap_x = min(a.x_max, b.x_max) - max(a.x_min, b.x_min)
            overlap_y = min(a.y_max, b.y_max) - max(a.y_min, b.y_min)
            assert overlap_x <= 0 or overlap_y <= 0, (entry.id, a, b)


def test_rooms_are_labelled_furnished_and_confident(folder: Path, manifest: Manifest) -> None:
    plans = [e for e in manifest.samples if e.document_type == "single_floor_plan"]
    for entry in plans:
        truth = truth_of(folder, entry)
        assert len(truth["spaces"]) >= 3
        for space in truth["spaces"]:
            assert space["label_text"] and space["dimensions_text"].endswith(" m")
            assert 0.85 <= space["confidence"] <= 0.98
            if space["type"] in HABITABLE_TYPES:
                assert space["furnishings"], (entry.id, space["label_text"])
            assert all(f["source"] == "drawn_on_plan" for f in space["furnishings"])
    assert {e.plan_type for e in plans} == {"residential", "commercial"}


def test_request_texts_agree_with_the_truth(folder: Path, manifest: Manifest) -> None:
    for entry in manifest.samples:
        assert entry.request_text
        assert mismatches(entry.request_text, loaded(truth_of(folder, entry))) == []


@pytest.mark.parametrize(
    ("scenario", "outcome", "block_reason", "calls"),
    [
        ("correct", "completed", None, 1),
        ("flawed_then_correct", "completed", None, 2),
        ("hallucinated_room", "completed", None, 2),
        ("missing_room", "blocked", "retry_budget_exhausted", 3),
        ("low_confidence", "blocked", "retry_budget_exhausted", 3),
        ("not_a_floor_plan", "blocked", "NOT_A_FLOOR_PLAN", 1),
        ("invalid_json", "blocked", "retry_budget_exhausted", 3),
        ("length", "completed", None, 2),
        ("rate_limited", "completed", None, 2),
        ("server_error", "completed", None, 2),
        ("hang", "completed", None, 2),
    ],
)
def test_expected_outcome_per_scenario(
    manifest: Manifest, scenario: str, outcome: str, block_reason: str | None, calls: int
) -> None:
    entry = next(e for e in manifest.samples if e.scenario == scenario)
    assert entry.expected.outcome == outcome
    assert entry.expected.block_reason == block_reason
    assert entry.expected.step0_attempts == calls


def test_the_missing_room_sample_is_residential(manifest: Manifest) -> None:
    entry = next(e for e in manifest.samples if e.scenario == "missing_room")
    assert entry.plan_type == "residential"


def test_a_sample_is_the_same_bytes_every_time() -> None:
    first, second = build_sample(SEED, 3, "correct"), build_sample(SEED, 3, "correct")
    assert first.png == second.png
    assert first.truth == second.truth
    assert build_sample(SEED + 1, 3, "correct").png != first.png


def test_generating_twice_writes_the_same_folder(tmp_path: Path) -> None:
    for name in ("a", "b"):
        generate(tmp_path / name, seed=3, count=2, scenarios=("hang", "not_a_floor_plan"))
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert files == sorted(p.name for p in (tmp_path / "b").iterdir())
    for name in files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


@pytest.mark.parametrize(
    ("count", "picked", "expected"),
    [
        (None, ("hang",), ("hang",)),
        (3, ("hang",), ("hang", "hang", "hang")),
        (4, ("hang", "correct"), ("hang", "correct", "correct", "correct")),
        (3, ("hang", "length"), ("hang", "length", "hang")),
        (11, None, SCENARIOS),
    ],
)
def test_scenario_sequence(
    count: int | None, picked: tuple[Any, ...] | None, expected: tuple[str, ...]
) -> None:
    assert scenario_sequence(count, picked) == expected


def test_too_few_samples_for_the_scenarios_is_refused() -> None:
    with pytest.raises(SamplesRequestInvalid, match="fewer than the 11 scenarios"):
        scenario_sequence(5, None)


def test_scenario_names_are_parsed_in_order_and_checked() -> None:
    assert parse_scenarios(" hang,correct ,hang") == ("hang", "correct", "hang")
    with pytest.raises(SamplesRequestInvalid, match="unknown scenario bogus"):
        parse_scenarios("correct,bogus")


@pytest.fixture(scope="module")
def apartment(folder: Path, manifest: Manifest) -> SampleEntry:
    return next(e for e in manifest.samples if e.layout.endswith("-bedroom"))


@pytest.fixture(scope="module")
def residential(folder: Path, apartment: SampleEntry) -> Document:
    return truth_of(folder, apartment)


def test_duplicate_id_flaw_is_retried(residential: Document) -> None:
    assert decision(flaws.duplicate_id(residential)) == ("retry", None, ["DUPLICATE_SPACE_IDS"])


def test_low_confidence_flaw_is_retried_then_blocked(residential: Document) -> None:
    flawed = flaws.low_confidence(residential)
    assert decision(flawed) == ("retry", None, ["LOW_CONFIDENCE_RATIO"])
    assert decision(flawed, attempt=3)[:2] == ("block", "retry_budget_exhausted")


def test_missing_bathroom_flaw_misses_a_critical_space(residential: Document) -> None:
    verdict = decision(flaws.without_bathrooms(residential))
    assert verdict == ("retry", None, ["MISSING_CRITICAL_SPACE"])


def test_hallucinated_rooms_score_below_half_and_fail_only_the_audit(
    residential: Document, apartment: SampleEntry
) -> None:
    flawed = flaws.hallucinated(residential)
    answer = audit(residential, loaded(flawed))
    real = len(residential["spaces"])
    assert answer["consistency_score"] == round(real / (2 * real + 1), 4) < 0.5
    score = Audit(answer["consistency_score"], tuple(answer["contradictions"]))
    assert decision(flawed, audit=score) == ("retry", None, ["AUDIT_INCONSISTENT"])
    assert mismatches(apartment.request_text, loaded(flawed)) == []


@pytest.mark.parametrize("size", [(1024, 683), (4096, 2731), (300, 2000)])
def test_scaled_truth_fits_the_new_size(residential: Document, size: tuple[int, int]) -> None:
    resized = scaled(residential, *size)
    assert decision(resized) == ("proceed", None, [])
    assert loaded(resized).image == ImageSize(*size)

"""The one rule catalogue (every rule and block reason planstream emits) and the pure checks.

``CATALOGUE`` is docs/contracts/RULES.md's table, in its order: failures are listed, and ranked by
``decide``'s contract test, in that order. The rules RULES.md leaves to the pipeline (model calls,
a lost worker, the old function on the legacy path, an upload Image I/O refuses before decoding
it) are ``PIPELINE_RULES``, kept apart so that
``CATALOGUE`` stays RULES.md's table; ``ALL_RULES`` is both. A block names its first critical
rule or one of ``BLOCK_REASONS``, typed by the wire's ``OutcomeBlockReason`` (events.py), so no
other spelling passes mypy. The checks return failures in catalogue order: upstream, document,
request, then ``decisions.audit_failures``.
"""

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Final, Literal, assert_never, get_args

from planstream.domain.events import Failure, OutcomeBlockReason, Severity
from planstream.domain.guards import find_smuggling
from planstream.domain.spaces import CRITICAL_GROUPS, ImageSize, SchemaViolation, SpacesDocument

__all__ = [
    "ALL_RULES",
    "AMBIGUOUS_RATIO",
    "ARTIFACT_MISSING",
    "AUDIT_INCONSISTENT",
    "BBOX_OUT_OF_BOUNDS",
    "BLOCK_REASONS",
    "CATALOGUE",
    "DOCUMENT_CHECKS",
    "DUPLICATE_SPACE_IDS",
    "HABITABLE_WITHOUT_FURNISHINGS",
    "IMAGE_ANIMATED",
    "IMAGE_DIMENSIONS_INVALID",
    "IMAGE_FORMAT_UNSUPPORTED",
    "IMAGE_SIZE_MISMATCH",
    "IMAGE_TOO_LARGE",
    "IMAGE_UNREADABLE",
    "LEGACY_FAILED",
    "LOW_CONFIDENCE_RATIO",
    "MISSING_CRITICAL_SPACE",
    "MODEL_REFUSED",
    "MODEL_UNAVAILABLE",
    "NOT_A_FLOOR_PLAN",
    "PIPELINE_RULES",
    "REJECTED_BY_REVIEWER",
    "REPLAY_COST_CAP",
    "REQUEST_MISMATCH",
    "RETRY_BUDGET_EXHAUSTED",
    "RULES_VERSION",
    "SCHEMA_INVALID",
    "TOO_FEW_SPACES",
    "TOO_MANY_FAILURES",
    "WORKER_LOST",
    "DocumentCheck",
    "Mismatch",
    "MismatchSeverity",
    "Policy",
    "Rule",
    "clean_detail",
    "document_failures",
    "evaluate_document",
    "request_failures",
]

MAX_DETAIL_CHARS: Final = 500
RULES_VERSION: Final = "rules-v1"
MismatchSeverity = Literal["low", "medium", "high"]


@dataclass(frozen=True)
class Policy:
    """The thresholds of RULES.md with its defaults; Settings may override any of them."""

    low_confidence_below: float = 0.5  # a space with a lower confidence is low-confidence
    max_low_confidence_share: float = 0.5  # LOW_CONFIDENCE_RATIO above this share
    max_ambiguous_share: float = 0.3  # AMBIGUOUS_RATIO above this share
    min_spaces: int = 2  # TOO_FEW_SPACES below this count
    min_consistency_score: float = 0.5  # AUDIT_INCONSISTENT below this score
    max_failures: int = 5  # more failures than this block
    max_attempts: int = 3  # when a case does not say

    @property
    def version(self) -> str:
        """The rules in force: ``RULES_VERSION`` with RULES.md's thresholds, else it and a
        digest of the thresholds, so a decision records which ones it was made under (a replay
        compares them). ``max_attempts`` is the retry budget, not a rule threshold."""
        thresholds = {k: v for k, v in asdict(self).items() if k != "max_attempts"}
        defaults = {k: v for k, v in asdict(Policy()).items() if k != "max_attempts"}
        if thresholds == defaults:
            return RULES_VERSION
        text = json.dumps(thresholds, sort_keys=True)
        return f"{RULES_VERSION}+{hashlib.sha256(text.encode()).hexdigest()[:12]}"


@dataclass(frozen=True)
class Mismatch:
    """One difference the request comparison found between the spaces and the user's request."""

    description: str
    severity: MismatchSeverity


@dataclass(frozen=True)
class Rule:
    """One entry of the catalogue: its name, its severity and a fix a person can act on."""

    name: str
    severity: Severity | None  # None: every failure brings its own (REQUEST_MISMATCH)
    fix: str

    def failure(
        self, detail: str, space_id: str | None = None, severity: Severity | None = None
    ) -> Failure:
        """A failure of this rule; ``severity`` replaces the catalogue's when given."""
        chosen = severity if severity is not None else self.severity
        if chosen is None:
            raise ValueError(f"{self.name} needs the severity of each failure")
        return Failure(
            rule=self.name,
            severity=chosen,
            space_id=space_id,
            detail=clean_detail(detail),
            suggested_fix=self.fix,
        )


ARTIFACT_MISSING: Final = Rule(
    "ARTIFACT_MISSING", "critical", "Upload the image again: the stored copy is gone."
)
IMAGE_UNREADABLE: Final = Rule(
    "IMAGE_UNREADABLE", "critical", "Upload the plan again as a PNG or JPEG that opens."
)
IMAGE_DIMENSIONS_INVALID: Final = Rule(
    "IMAGE_DIMENSIONS_INVALID",
    "critical",
    "Export the plan so its long edge fits the tier: 1K 900-1700, 2K 1900-3300, 4K 3600-6400 px.",
)
SCHEMA_INVALID: Final = Rule(
    "SCHEMA_INVALID",
    "high",
    "Answer with one JSON object that matches spaces-v1, without prose or Markdown fences.",
)
NOT_A_FLOOR_PLAN: Final = Rule(
    "NOT_A_FLOOR_PLAN",
    "critical",
    "Upload a floor plan: site plans, elevations, sections and photos cannot be analysed.",
)
TOO_FEW_SPACES: Final = Rule(
    "TOO_FEW_SPACES", "high", "Mark every enclosed space, including halls, storage and baths."
)
DUPLICATE_SPACE_IDS: Final = Rule(
    "DUPLICATE_SPACE_IDS", "high", "Number the spaces S1, S2, ... without repeating an id."
)
IMAGE_SIZE_MISMATCH: Final = Rule(
    "IMAGE_SIZE_MISMATCH",
    "high",
    "Report the image's own pixel width and height, without rotating or rescaling it.",
)
BBOX_OUT_OF_BOUNDS: Final = Rule(
    "BBOX_OUT_OF_BOUNDS", "medium", "Keep each box inside the image, with min < max on both axes."
)
LOW_CONFIDENCE_RATIO: Final = Rule(
    "LOW_CONFIDENCE_RATIO",
    "high",
    "Read the plan again at full resolution: each space's label, doors and fixtures.",
)
AMBIGUOUS_RATIO: Final = Rule(
    "AMBIGUOUS_RATIO",
    "medium",
    "Settle ambiguous spaces from labels and fixtures; keep only what the plan leaves open.",
)
HABITABLE_WITHOUT_FURNISHINGS: Final = Rule(
    "HABITABLE_WITHOUT_FURNISHINGS",
    "medium",
    "List the furniture drawn in the space, or infer what its type usually holds.",
)
MISSING_CRITICAL_SPACE: Final = Rule(
    "MISSING_CRITICAL_SPACE",
    "high",
    "Look again for the missing kitchen, bedroom or bathroom; a WC alone is not a bathroom.",
)
REQUEST_MISMATCH: Final = Rule(
    "REQUEST_MISMATCH",
    None,
    "Tell the user where the plan differs from the request, or read the plan again for it.",
)
AUDIT_INCONSISTENT: Final = Rule(
    "AUDIT_INCONSISTENT", "high", "Extract the spaces again so notes, counts and types agree."
)

CATALOGUE: Final[tuple[Rule, ...]] = (
    ARTIFACT_MISSING,
    IMAGE_UNREADABLE,
    IMAGE_DIMENSIONS_INVALID,
    SCHEMA_INVALID,
    NOT_A_FLOOR_PLAN,
    TOO_FEW_SPACES,
    DUPLICATE_SPACE_IDS,
    IMAGE_SIZE_MISMATCH,
    BBOX_OUT_OF_BOUNDS,
    LOW_CONFIDENCE_RATIO,
    AMBIGUOUS_RATIO,
    HABITABLE_WITHOUT_FURNISHINGS,
    MISSING_CRITICAL_SPACE,
    REQUEST_MISMATCH,
    AUDIT_INCONSISTENT,
)
"""RULES.md's rules in its order, which is also the order failures are listed in."""

MODEL_UNAVAILABLE: Final = Rule(
    "MODEL_UNAVAILABLE",
    "high",
    "The model did not answer within the step's call budget; retry the step later.",
)
MODEL_REFUSED: Final = Rule(
    "MODEL_REFUSED",
    "high",
    "The model refused to analyse the image; check the upload, then retry the step.",
)
WORKER_LOST: Final = Rule(
    "WORKER_LOST",
    "high",
    "The step's worker stopped on every delivery; check its logs, then retry the run.",
)

LEGACY_FAILED: Final = Rule(
    "LEGACY_FAILED",
    "high",
    "The old run-pipeline-step failed (WORKER_LIMIT?); route the step to new, then retry.",
)

# Upstream, like IMAGE_UNREADABLE: Image I/O refuses these uploads before any pixel is decoded.
IMAGE_TOO_LARGE: Final = Rule(
    "IMAGE_TOO_LARGE",
    "critical",
    "Upload a smaller plan: export it again at the tier's size, or compress it.",
)
IMAGE_FORMAT_UNSUPPORTED: Final = Rule(
    "IMAGE_FORMAT_UNSUPPORTED",
    "critical",
    "Upload the plan as a PNG, JPEG or WebP; other formats are refused whatever they are named.",
)
IMAGE_ANIMATED: Final = Rule(
    "IMAGE_ANIMATED",
    "critical",
    "Upload the plan as one still image, not an animated PNG, WebP or GIF.",
)

# A replay's only: a live replay's model call that its cap (``--max-usd``) refused unmade.
REPLAY_COST_CAP: Final = Rule(
    "REPLAY_COST_CAP",
    "critical",
    "The replay spent its --max-usd cap; start it again with a higher cap or fewer runs.",
)

PIPELINE_RULES: Final[tuple[Rule, ...]] = (
    MODEL_UNAVAILABLE,
    MODEL_REFUSED,
    WORKER_LOST,
    LEGACY_FAILED,
    IMAGE_TOO_LARGE,
    IMAGE_FORMAT_UNSUPPORTED,
    IMAGE_ANIMATED,
    REPLAY_COST_CAP,
)
"""The rules the pipeline adds to RULES.md's; ``decide`` never computes them."""
ALL_RULES: Final[tuple[Rule, ...]] = CATALOGUE + PIPELINE_RULES
"""Every rule planstream can emit."""

RETRY_BUDGET_EXHAUSTED: Final[OutcomeBlockReason] = "retry_budget_exhausted"
TOO_MANY_FAILURES: Final[OutcomeBlockReason] = "too_many_failures"
REJECTED_BY_REVIEWER: Final[OutcomeBlockReason] = "rejected_by_reviewer"
BLOCK_REASONS: Final[tuple[OutcomeBlockReason, ...]] = get_args(OutcomeBlockReason)
"""The block reasons that name no rule (a block otherwise carries its first critical rule)."""


def clean_detail(text: str) -> str:
    """``text`` fit for a failure's detail: at most 500 characters, never a URL or encoded blob."""
    reason = find_smuggling(text)
    if reason is not None:
        return f"(text withheld: it {reason})"
    if len(text) > MAX_DETAIL_CHARS:
        return text[: MAX_DETAIL_CHARS - 1] + "…"
    return text


def evaluate_document(
    loaded: SpacesDocument | SchemaViolation, image: ImageSize | None, policy: Policy
) -> list[Failure]:
    """The document rules on the Info Worker's output; a schema violation stops all the others."""
    match loaded:
        case SchemaViolation(reason=reason):
            return [SCHEMA_INVALID.failure(reason)]
        case SpacesDocument():
            return document_failures(loaded, image, policy)
        case _:
            assert_never(loaded)


def document_failures(
    document: SpacesDocument, image: ImageSize | None, policy: Policy
) -> list[Failure]:
    """The rules from NOT_A_FLOOR_PLAN to MISSING_CRITICAL_SPACE, in catalogue order."""
    return [failure for _, check in DOCUMENT_CHECKS for failure in check(document, image, policy)]


def request_failures(mismatches: Sequence[Mismatch]) -> list[Failure]:
    """One REQUEST_MISMATCH per mismatch, with the severity the comparison gave it."""
    return [REQUEST_MISMATCH.failure(m.description, severity=m.severity) for m in mismatches]


def _not_a_floor_plan(
    document: SpacesDocument, image: ImageSize | None, policy: Policy
) -> Iterator[Failure]:
    if not document.is_floor_plan:
        yield NOT_A_FLOOR_PLAN.failure(f"document_type is {document.document_type}")


def _too_few_spaces(
    document: SpacesDocument, image: ImageSize | None, policy: Policy
) -> Iterator[Failure]:
    count = len(document.spaces)
    if document.is_floor_plan and count < policy.min_spaces:
        yield TOO_FEW_SPACES.failure(
            f"a floor plan has at least {policy.min_spaces} spaces, this one {count}"
        )


def _duplicate_ids(
    document: SpacesDocument, image: ImageSize | None, policy: Policy
) -> Iterator[Failure]:
    repeated = [i for i, n in Counter(s.id for s in document.spaces).items() if n > 1]
    if repeated:
        yield DUPLICATE_SPACE_IDS.failure(f"ids used more than once: {', '.join(repeated)}")


def _image_size_mismatch(
    document: SpacesDocument, image: ImageSize | None, policy: Policy
) -> Iterator[Failure]:
    stated = document.image
    if image is not None and image != stated:
        yield IMAGE_SIZE_MISMATCH.failure(
            f"document says {stated.width_px}x{stated.height_px} px, "
            f"the image is {image.width_px}x{image.height_px} px"
        )


def _boxes_out_of_bounds(
    document: SpacesDocument, image: ImageSize | None, policy: Policy
) -> Iterator[Failure]:
    size = document.image
    for space in document.spaces:
        box = space.bbox
        if not box.fits(size):
            yield BBOX_OUT_OF_BOUNDS.failure(
                f"box x {box.x_min}..{box.x_max}, y {box.y_min}..{box.y_max} is not "
                f"inside {size.width_px}x{size.height_px} px with min < max",
                space_id=space.id,
            )


def _low_confidence(
    document: SpacesDocument, image: ImageSize | None, policy: Policy
) -> Iterator[Failure]:
    total = len(document.spaces)
    low = sum(s.confidence < policy.low_confidence_below for s in document.spaces)
    if total and low / total > policy.max_low_confidence_share:
        yield LOW_CONFIDENCE_RATIO.failure(
            f"{low}/{total} spaces below {policy.low_confidence_below:g}"
        )


def _ambiguous(
    document: SpacesDocument, image: ImageSize | None, policy: Policy
) -> Iterator[Failure]:
    total = len(document.spaces)
    counted = sum(
        s.ambiguous and s.ambiguity_reason != "open_plan_boundary" for s in document.spaces
    )
    if total and counted / total > policy.max_ambiguous_share:
        yield AMBIGUOUS_RATIO.failure(
            f"{counted}/{total} spaces ambiguous (open_plan_boundary not counted), "
            f"above {policy.max_ambiguous_share:g}"
        )


def _habitable_without_furnishings(
    document: SpacesDocument, image: ImageSize | None, policy: Policy
) -> Iterator[Failure]:
    for space in document.spaces:
        if space.is_habitable and not space.furnishings:
            yield HABITABLE_WITHOUT_FURNISHINGS.failure(
                f"{space.type} lists no furnishings", space_id=space.id
            )


def _missing_critical_spaces(
    document: SpacesDocument, image: ImageSize | None, policy: Policy
) -> Iterator[Failure]:
    if not document.is_floor_plan or document.plan_type != "residential":
        return
    for group in CRITICAL_GROUPS:
        if not any(space.counts_for(group) for space in document.spaces):
            yield MISSING_CRITICAL_SPACE.failure(f"no {group} in this residential floor plan")


DocumentCheck = Callable[[SpacesDocument, ImageSize | None, Policy], Iterator[Failure]]
"""One document rule: the failures it finds in a document (about its image, under a policy)."""

DOCUMENT_CHECKS: Final[tuple[tuple[Rule, DocumentCheck], ...]] = (
    (NOT_A_FLOOR_PLAN, _not_a_floor_plan),
    (TOO_FEW_SPACES, _too_few_spaces),
    (DUPLICATE_SPACE_IDS, _duplicate_ids),
    (IMAGE_SIZE_MISMATCH, _image_size_mismatch),
    (BBOX_OUT_OF_BOUNDS, _boxes_out_of_bounds),
    (LOW_CONFIDENCE_RATIO, _low_confidence),
    (AMBIGUOUS_RATIO, _ambiguous),
    (HABITABLE_WITHOUT_FURNISHINGS, _habitable_without_furnishings),
    (MISSING_CRITICAL_SPACE, _missing_critical_spaces),
)
"""The document rules in catalogue order, each with its check: ``document_failures`` runs them,
``planstream.domain.rule_trace`` shows what each read and concluded."""

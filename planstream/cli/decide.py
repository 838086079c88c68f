"""``planstream decide CASE.json``: one case of RULES.md in, one decision out, no network call."""

import json
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Final, TypeVar

from pydantic import ValidationError

from planstream.domain.decisions import Audit, DecisionCase, DecisionResult, decide_case
from planstream.domain.errors import PermanentError
from planstream.domain.events import Failure, Severity
from planstream.domain.rules import Mismatch, MismatchSeverity, Policy, clean_detail
from planstream.domain.spaces import ImageSize, JsonRejected, load_spaces, parse_json

__all__ = ["CaseInvalid", "main", "parse_case", "read_case", "render"]

Choice = TypeVar("Choice", bound=str)

SEVERITIES: Final[tuple[Severity, ...]] = ("low", "medium", "high", "critical")
MISMATCH_SEVERITIES: Final[tuple[MismatchSeverity, ...]] = ("low", "medium", "high")
RULE_NAME: Final = re.compile(r"[A-Z][A-Z0-9_]{2,47}")


class CaseInvalid(PermanentError):
    """The case file is unreadable or malformed; the message names the field at fault."""


def main(path: Path | str, policy: Policy | None = None) -> int:
    """Print the decision for the case in ``path``: 0 when decided, 2 when the case is malformed."""
    try:
        case = read_case(Path(path))
    except CaseInvalid as exc:
        print(f"planstream decide: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    print(json.dumps(render(decide_case(case, Policy() if policy is None else policy))))
    return 0


def render(result: DecisionResult) -> dict[str, object]:
    """The output object of RULES.md: decision, block_reason and failures (without their fixes)."""
    return {
        "decision": result.decision,
        "block_reason": result.block_reason,
        "failures": [
            {"rule": f.rule, "severity": f.severity, "space_id": f.space_id, "detail": f.detail}
            for f in result.failures
        ],
    }


def read_case(path: Path) -> DecisionCase:
    """The case in a file, parsed as strict JSON."""
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise CaseInvalid(f"{path}: cannot read: {exc.strerror or exc}") from exc
    try:
        value = parse_json(text)
    except JsonRejected as exc:
        raise CaseInvalid(f"case: not JSON: {exc}") from exc
    return parse_case(value)


def parse_case(value: object) -> DecisionCase:
    """A case from decoded JSON; other top-level keys (``case_id``, ``expected``) are ignored."""
    case = _object(value, "case")
    upstream = tuple(
        _upstream_failure(item, f"case.upstream_failures[{i}]")
        for i, item in enumerate(
            _optional_list(case.get("upstream_failures"), "case.upstream_failures")
        )
    )
    raw_spaces = case.get("spaces")
    if raw_spaces is None and not any(f.severity == "critical" for f in upstream):
        raise CaseInvalid("case.spaces: required unless upstream_failures holds a critical failure")
    comparison = _optional_object(case.get("comparison"), "case.comparison")
    mismatches = () if comparison is None else _mismatches(comparison)
    attempt = _optional_count(case.get("attempt"), "case.attempt")
    return DecisionCase(
        spaces=None if raw_spaces is None else load_spaces(raw_spaces),
        image=_image(case.get("image"), "case.image"),
        mismatches=mismatches,
        audit=_audit(case.get("audit"), "case.audit"),
        upstream_failures=upstream,
        attempt=1 if attempt is None else attempt,
        max_attempts=_optional_count(case.get("max_attempts"), "case.max_attempts"),
    )


def _upstream_failure(value: object, field: str) -> Failure:
    item = _object(value, field)
    rule = item.get("rule")
    if not isinstance(rule, str) or not RULE_NAME.fullmatch(rule):
        raise CaseInvalid(f"{field}.rule: must be a rule name such as IMAGE_UNREADABLE")
    space_id = item.get("space_id")
    if space_id is not None and not isinstance(space_id, str):
        raise CaseInvalid(f"{field}.space_id: must be a string or null")
    try:
        return Failure(
            rule=rule,
            severity=_choice(item.get("severity"), f"{field}.severity", SEVERITIES),
            space_id=space_id,
            detail=clean_detail(_text(item.get("detail"), f"{field}.detail")),
        )
    except ValidationError as exc:  # only space_id is left to check: length, smuggled text
        raise CaseInvalid(f"{field}.space_id: {exc.errors()[0]['msg']}") from exc


def _mismatches(comparison: Mapping[str, object]) -> tuple[Mismatch, ...]:
    field = "case.comparison.mismatches"
    items = _list(comparison.get("mismatches"), field)
    return tuple(_mismatch(item, f"{field}[{i}]") for i, item in enumerate(items))


def _mismatch(value: object, field: str) -> Mismatch:
    item = _object(value, field)
    severity = item.get("severity")
    if severity == "critical":
        raise CaseInvalid(f"{field}.severity: critical is refused (a model cannot block)")
    return Mismatch(
        description=_text(item.get("description"), f"{field}.description"),
        severity=_choice(severity, f"{field}.severity", MISMATCH_SEVERITIES),
    )


def _image(value: object, field: str) -> ImageSize | None:
    image = _optional_object(value, field)
    if image is None:
        return None
    return ImageSize(
        width_px=_count(image.get("width_px"), f"{field}.width_px"),
        height_px=_count(image.get("height_px"), f"{field}.height_px"),
    )


def _audit(value: object, field: str) -> Audit | None:
    audit = _optional_object(value, field)
    if audit is None:
        return None
    score = audit.get("consistency_score")
    if isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 1:
        raise CaseInvalid(f"{field}.consistency_score: must be a number from 0 to 1")
    contradictions = _optional_list(audit.get("contradictions"), f"{field}.contradictions")
    return Audit(
        consistency_score=float(score),
        contradictions=tuple(
            _text(item, f"{field}.contradictions[{i}]") for i, item in enumerate(contradictions)
        ),
    )


def _object(value: object, field: str) -> Mapping[str, object]:
    if not isinstance(value, dict):
        raise CaseInvalid(f"{field}: must be an object")
    return value


def _optional_object(value: object, field: str) -> Mapping[str, object] | None:
    return None if value is None else _object(value, field)


def _list(value: object, field: str) -> list[object]:
    if not isinstance(value, list):
        raise CaseInvalid(f"{field}: must be a list")
    return value


def _optional_list(value: object, field: str) -> list[object]:
    """A list where absent or null means empty."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise CaseInvalid(f"{field}: must be a list or null")
    return value


def _count(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise CaseInvalid(f"{field}: must be an integer >= 1")
    return value


def _optional_count(value: object, field: str) -> int | None:
    """A count where absent or null means the default."""
    return None if value is None else _count(value, field)


def _text(value: object, field: str) -> str:
    """A descriptive text; absent means empty (no rule reads it, so it is not required)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise CaseInvalid(f"{field}: must be a string")
    return value


def _choice(value: object, field: str, choices: tuple[Choice, ...]) -> Choice:
    for choice in choices:
        if value == choice:
            return choice
    raise CaseInvalid(f"{field}: must be one of {', '.join(choices)}")

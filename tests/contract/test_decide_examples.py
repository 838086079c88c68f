"""`planstream decide` against the contract: every example's `expected`, then RULES.md itself.

An example's `expected` holds `decision`, `block_reason` and `rules`, the sorted set of rule names
that fired (decide-09 has six failures and four names). So the test compares decision and
block_reason exactly and the set of rule names; `detail` and `space_id` are not in `expected` and
are not compared. The output's shape (exact keys), the catalogue severities and the RULES.md order
of the failures are checked on every example as well. The examples and RULES.md
(docs/contracts/RULES.md) are the project's own copies (``tests.contract.copies``).
"""

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from planstream.cli import decide as decide_command
from planstream.domain.rules import CATALOGUE
from tests.contract.copies import EXAMPLES, ROOT, RULES_MD

OUTPUT_KEYS = ["decision", "block_reason", "failures"]
FAILURE_KEYS = ["rule", "severity", "space_id", "detail"]
CATALOGUE_RANK = {rule.name: rank for rank, rule in enumerate(CATALOGUE)}
SEVERITY = {rule.name: rule.severity for rule in CATALOGUE}


def _examples() -> list[Path]:
    return sorted(EXAMPLES.glob("decide-*.json"))


def decide(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = decide_command.main(path)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_contract_examples_are_present() -> None:
    assert _examples(), f"no decide-*.json in {EXAMPLES}"


def test_the_catalogue_is_the_table_of_rules_md() -> None:
    """Names, severities and order of RULES.md's rule table ("as given": the failure's own)."""
    row = re.compile(r"^\| `([A-Z_]+)` \| .+ \| (critical|high|medium|low|as given) \|$", re.M)
    table = row.findall(RULES_MD.read_text("utf-8"))
    severities = {"as given": None}
    assert [(name, severities.get(sev, sev)) for name, sev in table] == [
        (rule.name, rule.severity) for rule in CATALOGUE
    ]


@pytest.mark.parametrize("path", _examples(), ids=lambda path: path.stem)
def test_decide_matches_the_expected_outcome(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    example = json.loads(path.read_text("utf-8"))
    code, out, err = decide(path, capsys)
    assert (code, err) == (0, "")
    assert out.count("\n") == 1
    output = json.loads(out)
    assert list(output) == OUTPUT_KEYS
    assert all(list(failure) == FAILURE_KEYS for failure in output["failures"])
    expected = example["expected"]
    rules = [failure["rule"] for failure in output["failures"]]
    assert (output["decision"], output["block_reason"], sorted(set(rules))) == (
        expected["decision"],
        expected["block_reason"],
        sorted(set(expected["rules"])),
    )
    _assert_rules_md_order(example, output["failures"])


def _assert_rules_md_order(example: dict[str, Any], failures: list[dict[str, Any]]) -> None:
    """Upstream failures as given, then the catalogue order, with the catalogue's severities."""
    upstream = example.get("upstream_failures") or []
    given = [(f["rule"], f["severity"]) for f in upstream]
    assert [(f["rule"], f["severity"]) for f in failures[: len(given)]] == given
    computed = failures[len(given) :]
    ranks = [CATALOGUE_RANK[f["rule"]] for f in computed]
    assert ranks == sorted(ranks)
    assert all(f["severity"] == SEVERITY[f["rule"]] for f in computed if SEVERITY[f["rule"]])


SPACES = json.loads((EXAMPLES / "decide-01-clean-two-bedroom-apartment.json").read_text("utf-8"))[
    "spaces"
]
CRITICAL = {"rule": "IMAGE_UNREADABLE", "severity": "critical", "detail": "not a PNG"}


def write_case(tmp_path: Path, case: object) -> Path:
    """The case as a file; a string is written as it is (to test what is not JSON)."""
    path = tmp_path / "CASE.json"
    path.write_text(case if isinstance(case, str) else json.dumps(case), "utf-8")
    return path


@pytest.mark.parametrize(
    ("case", "decision", "block_reason", "rules"),
    [
        ({"spaces": SPACES, "case_id": "x", "expected": None, "notes": [1]}, "proceed", None, []),
        ({"spaces": SPACES, "attempt": None, "max_attempts": None}, "proceed", None, []),
        ({"spaces": SPACES, "upstream_failures": None, "comparison": None}, "proceed", None, []),
        ({"spaces": json.dumps(SPACES)}, "proceed", None, []),
        ({"spaces": f"```json\n{json.dumps(SPACES)}\n```"}, "retry", None, ["SCHEMA_INVALID"]),
        ({"spaces": "Here you go: " + json.dumps(SPACES)}, "retry", None, ["SCHEMA_INVALID"]),
        ({"spaces": json.dumps(SPACES) + "\nDone."}, "retry", None, ["SCHEMA_INVALID"]),
        (
            {"spaces": json.dumps(SPACES).replace('"confidence": 0.93', '"confidence": NaN')},
            "retry",
            None,
            ["SCHEMA_INVALID"],
        ),
        ({"spaces": 42}, "retry", None, ["SCHEMA_INVALID"]),
        ({"spaces": [SPACES]}, "retry", None, ["SCHEMA_INVALID"]),
        ({"spaces": True}, "retry", None, ["SCHEMA_INVALID"]),
        (
            {"spaces": {**SPACES, "extra": 1}, "attempt": 3},
            "block",
            "retry_budget_exhausted",
            ["SCHEMA_INVALID"],
        ),
        (
            {
                "spaces": "{}",
                "comparison": {"mismatches": [{"description": "x", "severity": "high"}]},
            },
            "retry",
            None,
            ["SCHEMA_INVALID"],
        ),
        ({"upstream_failures": [CRITICAL]}, "block", "IMAGE_UNREADABLE", ["IMAGE_UNREADABLE"]),
        (
            {"spaces": None, "upstream_failures": [CRITICAL]},
            "block",
            "IMAGE_UNREADABLE",
            ["IMAGE_UNREADABLE"],
        ),
        (
            {"spaces": "not json", "upstream_failures": [CRITICAL]},
            "block",
            "IMAGE_UNREADABLE",
            ["IMAGE_UNREADABLE", "SCHEMA_INVALID"],
        ),
        (
            {"spaces": {**SPACES, "document_type": "site_plan"}, "upstream_failures": [CRITICAL]},
            "block",
            "IMAGE_UNREADABLE",
            ["IMAGE_UNREADABLE", "NOT_A_FLOOR_PLAN"],
        ),
        (
            {
                "spaces": SPACES,
                "upstream_failures": [{"rule": "ARTIFACT_MISSING", "severity": "low"}],
            },
            "proceed",
            None,
            ["ARTIFACT_MISSING"],
        ),
        (
            {"spaces": SPACES, "image": {"width_px": 1500, "height_px": 2000}},
            "retry",
            None,
            ["IMAGE_SIZE_MISMATCH"],
        ),
        (
            {"spaces": SPACES, "audit": {"consistency_score": 0.49}, "attempt": 2},
            "retry",
            None,
            ["AUDIT_INCONSISTENT"],
        ),
        (
            {"spaces": SPACES, "audit": {"consistency_score": 0.5, "contradictions": []}},
            "proceed",
            None,
            [],
        ),
        (
            {
                "spaces": SPACES,
                "audit": {"consistency_score": 0.1},
                "attempt": 2,
                "max_attempts": 2,
            },
            "block",
            "retry_budget_exhausted",
            ["AUDIT_INCONSISTENT"],
        ),
    ],
)
def test_decide_follows_rules_md_beyond_the_examples(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    case: dict[str, Any],
    decision: str,
    block_reason: str | None,
    rules: list[str],
) -> None:
    code, out, err = decide(write_case(tmp_path, case), capsys)
    assert (code, err) == (0, "")
    output = json.loads(out)
    assert (output["decision"], output["block_reason"]) == (decision, block_reason)
    assert [failure["rule"] for failure in output["failures"]] == rules


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("", "case: not JSON: Expecting value"),
        ("{} {}", "case: not JSON: Extra data"),
        ('{"spaces": NaN}', "case: not JSON: NaN is not a JSON value"),
        ('{"spaces": {}, "spaces": {}}', "case: not JSON: key 'spaces' appears twice"),
        ([], "case: must be an object"),
        ({}, "case.spaces: required unless upstream_failures holds a critical failure"),
        (
            {"spaces": None},
            "case.spaces: required unless upstream_failures holds a critical failure",
        ),
        (
            {"spaces": None, "upstream_failures": [{**CRITICAL, "severity": "high"}]},
            "case.spaces: required unless upstream_failures holds a critical failure",
        ),
        ({"spaces": SPACES, "attempt": 0}, "case.attempt: must be an integer >= 1"),
        ({"spaces": SPACES, "attempt": "2"}, "case.attempt: must be an integer >= 1"),
        ({"spaces": SPACES, "attempt": 1.5}, "case.attempt: must be an integer >= 1"),
        ({"spaces": SPACES, "attempt": True}, "case.attempt: must be an integer >= 1"),
        ({"spaces": SPACES, "max_attempts": -3}, "case.max_attempts: must be an integer >= 1"),
        ({"spaces": SPACES, "image": [1, 2]}, "case.image: must be an object"),
        (
            {"spaces": SPACES, "image": {"width_px": 2000}},
            "case.image.height_px: must be an integer >= 1",
        ),
        (
            {"spaces": SPACES, "image": {"width_px": 0, "height_px": 1}},
            "case.image.width_px: must be an integer >= 1",
        ),
        ({"spaces": SPACES, "comparison": []}, "case.comparison: must be an object"),
        ({"spaces": SPACES, "comparison": {}}, "case.comparison.mismatches: must be a list"),
        (
            {
                "spaces": SPACES,
                "comparison": {"mismatches": [{"description": "x", "severity": "critical"}]},
            },
            "case.comparison.mismatches[0].severity: critical is refused (a model cannot block)",
        ),
        (
            {
                "spaces": SPACES,
                "comparison": {"mismatches": [{"description": "x", "severity": "urgent"}]},
            },
            "case.comparison.mismatches[0].severity: must be one of low, medium, high",
        ),
        (
            {
                "spaces": SPACES,
                "comparison": {"mismatches": [{"description": 3, "severity": "low"}]},
            },
            "case.comparison.mismatches[0].description: must be a string",
        ),
        (
            {"spaces": SPACES, "audit": {}},
            "case.audit.consistency_score: must be a number from 0 to 1",
        ),
        (
            {"spaces": SPACES, "audit": {"consistency_score": 1.2}},
            "case.audit.consistency_score: must be a number from 0 to 1",
        ),
        (
            {"spaces": SPACES, "audit": {"consistency_score": True}},
            "case.audit.consistency_score: must be a number from 0 to 1",
        ),
        (
            {"spaces": SPACES, "audit": {"consistency_score": 0.9, "contradictions": "none"}},
            "case.audit.contradictions: must be a list or null",
        ),
        (
            {"spaces": SPACES, "upstream_failures": {}},
            "case.upstream_failures: must be a list or null",
        ),
        (
            {"spaces": SPACES, "upstream_failures": ["IMAGE_UNREADABLE"]},
            "case.upstream_failures[0]: must be an object",
        ),
        (
            {"spaces": SPACES, "upstream_failures": [{**CRITICAL, "rule": "unreadable"}]},
            "case.upstream_failures[0].rule: must be a rule name such as IMAGE_UNREADABLE",
        ),
        (
            {"spaces": SPACES, "upstream_failures": [{**CRITICAL, "severity": "fatal"}]},
            "case.upstream_failures[0].severity: must be one of low, medium, high, critical",
        ),
        (
            {"spaces": SPACES, "upstream_failures": [{**CRITICAL, "space_id": "S" * 65}]},
            "case.upstream_failures[0].space_id: String should have at most 64 characters",
        ),
    ],
)
def test_a_malformed_case_is_one_line_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: object, message: str
) -> None:
    code, out, err = decide(write_case(tmp_path, case), capsys)
    assert (code, out) == (2, "")
    assert err.startswith(f"planstream decide: {message}")
    assert err.count("\n") == 1


def test_an_unreadable_case_names_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.json"
    code, out, err = decide(missing, capsys)
    assert (code, out) == (2, "")
    assert err == f"planstream decide: {missing}: cannot read: No such file or directory\n"


def test_upstream_details_never_carry_a_url(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    upstream = {**CRITICAL, "detail": "s3://planstream/uploads/plan.png does not exist"}
    code, out, _ = decide(write_case(tmp_path, {"upstream_failures": [upstream]}), capsys)
    assert code == 0
    assert json.loads(out)["failures"][0]["detail"] == "(text withheld: it holds a URL or data URI)"


@pytest.mark.parametrize("name", ["decide-10-kiosk-too-few-spaces-attempt-3.json", None])
def test_the_planstream_command(tmp_path: Path, name: str | None) -> None:
    """The command as installed: `python -m planstream.cli decide CASE.json` in a subprocess."""
    path = EXAMPLES / name if name else write_case(tmp_path, {"spaces": SPACES, "attempt": 0})
    run = subprocess.run(
        [sys.executable, "-m", "planstream.cli", "decide", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if name:
        assert (run.returncode, run.stderr) == (0, "")
        assert json.loads(run.stdout)["block_reason"] == "retry_budget_exhausted"
    else:
        assert (run.returncode, run.stdout) == (2, "")
        assert run.stderr == "planstream decide: case.attempt: must be an integer >= 1\n"

"""The project's copies of the contract are present, and match an external original when named.

Without PLANSTREAM_SHARED_CONTRACTS only the copies are checked (a clone needs nothing else); with
it, e.g. ``PLANSTREAM_SHARED_CONTRACTS=../shared/contracts``, every copy must equal the original
byte for byte and the original may hold no example the project lacks.
"""

from pathlib import Path

import pytest

from tests.contract.copies import EXAMPLES, EXTERNAL_ENV, ORIGINAL_SCHEMA, RULES_MD, external


def _copies() -> dict[str, Path]:
    """Name in the original folder -> the project's copy."""
    examples = {f"examples/{p.name}": p for p in sorted(EXAMPLES.glob("*.json"))}
    return {"RULES.md": RULES_MD, "spaces-v1.schema.json": ORIGINAL_SCHEMA, **examples}


def test_the_project_keeps_its_own_copies() -> None:
    assert RULES_MD.is_file()
    assert ORIGINAL_SCHEMA.is_file()
    assert len(list(EXAMPLES.glob("decide-*.json"))) >= 14
    assert (EXAMPLES / "spaces-valid-studio.json").is_file()


def test_the_copies_match_the_external_original() -> None:
    folder = external()
    if folder is None:
        pytest.skip(f"set {EXTERNAL_ENV} to a contract folder to compare the copies with it")
    assert folder.is_dir(), f"{EXTERNAL_ENV}={folder} is not a folder"
    originals = {f"examples/{p.name}" for p in (folder / "examples").glob("*.json")}
    assert originals <= set(_copies()), "the original has examples the project lacks"
    differ = [
        name
        for name, copy in _copies().items()
        if not (folder / name).is_file() or (folder / name).read_bytes() != copy.read_bytes()
    ]
    assert differ == []

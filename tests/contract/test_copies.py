"""The project's copies of the contract are present, and match an external original when named.

Without PLANSTREAM_SHARED_CONTRACTS only the copies are checked (a clone needs nothing else); with
it, e.g. ``PLANSTREAM_SHARED_CONTRACTS=/path/to/the/contract``, every copy must equal the original
byte for byte and the original may hold no example the project lacks.
"""

from pathlib import Path

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


def drifted(folder: Path) -> list[str]:
    """The copies that differ from (or are missing in) the external original ``folder``."""
    return [
        name
        for name, copy in _copies().items()
        if not (folder / name).is_file() or (folder / name).read_bytes() != copy.read_bytes()
    ]


def test_the_drift_check_can_fail(tmp_path: Path) -> None:
    for name, copy in _copies().items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(copy.read_bytes())
    assert drifted(tmp_path) == []
    (tmp_path / "RULES.md").write_text("changed")
    (tmp_path / "spaces-v1.schema.json").unlink()
    assert drifted(tmp_path) == ["RULES.md", "spaces-v1.schema.json"]


# Compared only when the external original is named: a clone has nothing outside itself to read.
if external() is not None:

    def test_the_copies_match_the_external_original() -> None:
        folder = external()
        assert folder is not None
        assert folder.is_dir(), f"{EXTERNAL_ENV}={folder} is not a folder"
        originals = {f"examples/{p.name}" for p in (folder / "examples").glob("*.json")}
        assert originals <= set(_copies()), "the original has examples the project lacks"
        assert drifted(folder) == []

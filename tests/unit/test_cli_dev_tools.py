"""Without planstream.dev (a wheel or image install), the dev commands say how to get them."""

import sys
from pathlib import Path

import pytest

from planstream.cli.main import DEV_COMMANDS, main

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
ARGV = {
    "stack": ["stack", "status"],
    "up": ["up"],
    "demo": ["demo"],
    "samples": ["samples", "generate", "out"],
    "model-server": ["model-server"],
    "legacy-function": ["legacy-function"],
    "bench": ["bench"],
}


@pytest.fixture
def no_dev_tools(monkeypatch: pytest.MonkeyPatch) -> None:
    """planstream.dev as a wheel install has it: not importable (None in sys.modules)."""
    for name in [n for n in sys.modules if n.startswith("planstream.dev.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "planstream.dev", None)


def test_every_dev_command_is_covered() -> None:
    assert set(ARGV) == DEV_COMMANDS


@pytest.mark.usefixtures("no_dev_tools")
@pytest.mark.parametrize("command", sorted(ARGV))
def test_a_dev_command_names_the_checkout_and_the_extras(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(ARGV[command]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"planstream {command}: a dev tool, not part of the installed package")
    assert "pip install -e '.[dev,local]'" in err
    assert err.count("\n") == 1


@pytest.mark.usefixtures("no_dev_tools")
def test_a_product_command_does_not_need_the_dev_tools() -> None:
    assert main(["schemas", "check", "--dir", str(SCHEMAS)]) == 0

"""``python -m planstream.dev.dashboards write | check``: regenerate, or compare (1: drift)."""

import sys

from planstream.dev.dashboards.files import DASHBOARDS_DIR, drift, write


def main(argv: list[str]) -> int:
    """Write the dashboards, or list how the committed ones differ from the generated ones."""
    if argv == ["write"]:
        for name in write():
            print(f"wrote {DASHBOARDS_DIR / name}")
        return 0
    if argv == ["check"]:
        problems = drift()
        for problem in problems:
            print(f"{DASHBOARDS_DIR}/{problem}", file=sys.stderr)
        if problems:
            print("run `make dashboards` to regenerate them", file=sys.stderr)
        return 1 if problems else 0
    print("usage: python -m planstream.dev.dashboards write | check", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""``python -m planstream.dev.deploycheck [check|sync] [--helm PATH]``.

``check`` (the default, run by ``make lint``) prints each check with its problems and exits 1 if
any has one; ``sync`` (``make chart-files``) rewrites the chart's generated files.
"""

import argparse
import sys

from planstream.dev.deploycheck import chartfiles, layout
from planstream.dev.deploycheck.checks import all_checks

__all__ = ["main"]

_NOTE = (
    "note: PodMonitor and PrometheusRule are not Kubernetes' own kinds; they are checked against "
    "planstream/dev/deploycheck/crd-schemas.json (closed subsets of the Prometheus Operator's "
    "CRDs), the others against the schemas kubernetes-validate bundles, offline."
)


def _check(helm: str | None) -> int:
    failed = 0
    for title, run in all_checks(helm):
        problems = run()
        print(f"{'FAIL' if problems else 'ok  '} {title}")
        for problem in problems:
            print("     " + problem.replace("\n", "\n     "))
        failed += bool(problems)
    print(_NOTE)
    print(f"deploycheck: {failed} check(s) failed" if failed else "deploycheck: every check passed")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    """Run the checks or regenerate the chart's files; the exit status."""
    parser = argparse.ArgumentParser(prog="python -m planstream.dev.deploycheck")
    parser.add_argument("action", nargs="?", choices=["check", "sync"], default="check")
    parser.add_argument("--helm", default=None, help="the helm binary (default: see helm.py)")
    args = parser.parse_args(argv)
    if args.action == "sync":
        for path in chartfiles.sync():
            done = "wrote" if path.exists() else "removed"
            print(f"{done} {path.relative_to(layout.REPO)}")
        return 0
    return _check(args.helm)


if __name__ == "__main__":
    sys.exit(main())

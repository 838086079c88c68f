"""The ``planstream`` command: the entry point that reads the environment and sets up logging."""

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from planstream.cli import console, flags, replay, tokens
from planstream.credentials import check_secrets
from planstream.domain.errors import PlanstreamError
from planstream.domain.service_names import REPLAY_WORKERS, WORKERS
from planstream.settings import ENV_PREFIX, Settings

__all__ = ["DEV_COMMANDS", "main"]

Handler = Callable[[argparse.Namespace, Settings], int]

_SERVICES: Final = {"serve": "ingress"}
"""The commands that run a service here, and the name their log lines carry (``worker``
hands over to ``python -m agents``, which installs its own)."""
DEV_COMMANDS: Final = frozenset(
    {"stack", "up", "demo", "samples", "model-server", "legacy-function", "bench"}
)
"""The commands that run the dev tools (planstream.dev): not in the wheel or the image."""
_NO_DEV_TOOLS: Final = (
    "planstream {command}: a dev tool, not part of the installed package: run it from a checkout "
    "of the repository installed with its extras, pip install -e '.[dev,local]' (make setup)"
)


def _stack(args: argparse.Namespace, settings: Settings) -> int:
    from planstream.dev.stack import commands

    action: Callable[[Settings], int] = getattr(commands, args.action)
    return action(settings)


def _db(args: argparse.Namespace, settings: Settings) -> int:
    from planstream.adapters.postgres import db

    check_secrets(settings, "migrate")
    applied = asyncio.run(db.migrate(settings.dsn))
    print(f"migrations applied: {', '.join(applied) if applied else 'none (up to date)'}")
    return 0


def _topics(args: argparse.Namespace, settings: Settings) -> int:
    from planstream.adapters import kafka

    check_secrets(settings, "topics")
    created = asyncio.run(kafka.ensure_topics(settings))
    print(f"topics created: {', '.join(created) if created else 'none (all present)'}")
    return 0


def _schemas(args: argparse.Namespace, settings: Settings) -> int:
    from planstream.cli import schemas

    folder = Path(args.dir)
    if args.action == "write":
        written = schemas.write_all(folder)
        print(f"wrote {len(written)} schemas to {folder}")
        return 0
    drift = schemas.drift(folder)
    for name in drift:
        print(f"schema out of date: {folder / name} (run `make schemas`)", file=sys.stderr)
    return 1 if drift else 0


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from planstream.adapters.http import ingress

    check_secrets(settings, "ingress")
    ingress.serve(settings)
    return 0


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    # The Faust glue lives in the top-level `agents` package, which planstream never imports.
    mode = ["--replay"] if args.replay else []
    os.execv(sys.executable, [sys.executable, "-m", "agents", args.service, *mode])  # noqa: S606


def _runs(args: argparse.Namespace, settings: Settings) -> int:
    from planstream.adapters.http import client

    return client.run_command(args, settings)


def _dlq(args: argparse.Namespace, settings: Settings) -> int:
    from planstream.adapters.kafka import redrive as dead_letters

    check_secrets(settings, "dlq")
    since = datetime.fromisoformat(args.since) if args.since else None
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    letters = dead_letters.select(
        asyncio.run(dead_letters.read_dead_letters(settings)), args.run, since
    )
    if args.action == "list":
        for letter in letters:
            print(dead_letters.dumps(letter))
        return 0
    if not args.reason:
        print(
            "planstream dlq redrive: --reason is required (it goes to the audit)", file=sys.stderr
        )
        return 2
    done, skipped = asyncio.run(dead_letters.redrive(settings, letters, args.operator, args.reason))
    print(f"redriven: {done}; already redriven before: {skipped}")
    return 0


def _decide(args: argparse.Namespace, settings: Settings) -> int:
    from planstream.cli import decide as decide_command

    return decide_command.main(args.case, settings.policy())  # PLANSTREAM_RULES_* apply


def _up(args: argparse.Namespace, settings: Settings) -> int:
    from planstream.dev import launcher as services

    services.serve_all(settings, settings.work_dir / "services", replay=args.with_replay)
    return 0


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from planstream.dev import demo

    seed = args.seed if args.seed is not None else int(time.time())
    tuned = settings.with_overrides(
        model_timeout_s=min(settings.model_timeout_s, args.model_timeout)
    )
    return demo.run_demo(tuned, count=args.count, seed=seed, timeout_s=args.timeout)


def _samples(args: argparse.Namespace, settings: Settings) -> int:
    from planstream.dev.samples import generator, scenarios

    picked = scenarios.parse_scenarios(args.scenarios) if args.scenarios else None
    manifest = generator.generate(
        args.dir,
        seed=args.seed,
        count=args.count,
        scenarios=picked,
        max_attempts=settings.max_attempts,
    )
    print(f"wrote {len(manifest.samples)} samples and manifest.json to {args.dir}")
    return 0


def _bench(args: argparse.Namespace, settings: Settings) -> int:
    from planstream.dev.bench import command

    profile = "quick" if args.quick else args.profile
    return command.run_command(
        settings, profile=profile, out=args.out, only=args.only, sampling=args.sampling_profile
    )


def _model_server(args: argparse.Namespace, settings: Settings) -> int:
    from planstream.dev.modelserver import server

    server.serve(settings)
    return 0


def _legacy_function(args: argparse.Namespace, settings: Settings) -> int:
    from planstream.dev.legacy import server

    server.serve(settings)
    return 0


def _add_runs(sub: Any) -> None:
    """`planstream runs create | show | approve | retry | reject`."""
    runs = sub.add_parser("runs", help="create and inspect runs through the ingress")
    runs_sub = runs.add_subparsers(dest="action", required=True)
    create = runs_sub.add_parser("create", help="upload an image, create a run, request step 0")
    create.add_argument("--image", required=True, type=Path)
    create.add_argument("--request", default=None, help="what the user asks for (<= 2,000 chars)")
    create.add_argument("--quality", default="2K", choices=["1K", "2K", "4K"])
    create.add_argument("--ratio", default="4:3")
    show = runs_sub.add_parser("show", help="the run, its jobs, artifacts and decisions as JSON")
    show.add_argument("run_id")
    for action, text in (
        ("approve", "let a blocked run go on to its next step"),
        ("retry", "analyse a blocked run's step again, with a fresh retry budget"),
        ("reject", "end a blocked run"),
    ):
        review = runs_sub.add_parser(action, help=text)
        review.add_argument("run_id")
        review.add_argument("--reason", required=True)
    runs.set_defaults(handler=_runs)


def _add_tools(sub: Any) -> None:
    """Operations and tools: dlq, decide, demo, samples, model-server, bench."""
    dlq = sub.add_parser("dlq", help="dead letters: list them, or redrive them after a fix")
    dlq.add_argument("action", choices=["list", "redrive"])
    dlq.add_argument("--run", default=None, help="only this run's dead letters")
    dlq.add_argument("--since", default=None, help="only those dead-lettered since (ISO 8601)")
    dlq.add_argument("--reason", default=None, help="why they are redriven (required to redrive)")
    dlq.add_argument("--operator", default=os.environ.get("USER") or "operator")
    dlq.set_defaults(handler=_dlq)

    decide = sub.add_parser("decide", help="decide one case offline (docs/contracts/RULES.md)")
    decide.add_argument("case", type=Path)
    decide.set_defaults(handler=_decide)

    demo = sub.add_parser("demo", help="sample plans through the whole pipeline, checked")
    demo.add_argument(
        "--count", type=int, default=None, help="samples (default: every scenario + 5)"
    )
    demo.add_argument("--seed", type=int, default=None, help="sample seed (default: the clock)")
    demo.add_argument(
        "--timeout", type=float, default=600.0, help="seconds before runs count as stuck"
    )
    demo.add_argument(
        "--model-timeout", type=float, default=10.0, help="per model call, so a hang ends quickly"
    )
    demo.set_defaults(handler=_demo)

    samples = sub.add_parser("samples", help="synthetic floor plans for the scripted model server")
    samples.add_argument("action", choices=["generate"])
    samples.add_argument("dir", type=Path)
    samples.add_argument(
        "--count", type=int, default=None, help="samples (default: every scenario + 5)"
    )
    samples.add_argument("--seed", type=int, default=1)
    samples.add_argument("--scenarios", default=None, help="comma-separated (default: all)")
    samples.set_defaults(handler=_samples)

    model_server = sub.add_parser("model-server", help="run the scripted OpenAI-compatible server")
    model_server.set_defaults(handler=_model_server)

    legacy = sub.add_parser("legacy-function", help="run the scripted old run-pipeline-step")
    legacy.set_defaults(handler=_legacy_function)

    bench = sub.add_parser("bench", help="benchmarks against raw baselines on the local stack")
    bench.add_argument("--quick", action="store_true", help="the quick profile (< 5 minutes)")
    bench.add_argument("--profile", choices=["full", "quick", "tiny"], default="full")
    bench.add_argument("--out", type=Path, default=Path("reports"), help="where the reports go")
    bench.add_argument("--only", default=None, help="comma-separated figures (default: all)")
    bench.add_argument(
        "--sampling-profile",
        type=Path,
        nargs="?",
        const=Path(".planstream/bench/profiles"),
        default=None,
        metavar="DIR",
        help="after the step-throughput figure, sample one more batch with py-spy: a profile "
        "per process and summary.md under DIR/<run tag> (default .planstream/bench/profiles)",
    )
    bench.set_defaults(handler=_bench)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="planstream", description=__doc__)
    parser.add_argument(
        "--log-format",
        choices=["auto", "json", "text"],
        default=None,
        help="log lines as JSON or text (default PLANSTREAM_LOG_FORMAT, auto: JSON for the "
        "services, text for other commands)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    stack = sub.add_parser("stack", help="the local stack: Kafka, PostgreSQL, S3, model server")
    stack.add_argument("action", choices=["up", "down", "status"])
    stack.set_defaults(handler=_stack)

    db = sub.add_parser("db", help="PostgreSQL schema")
    db.add_argument("action", choices=["migrate"])
    db.set_defaults(handler=_db)

    topics = sub.add_parser("topics", help="create the catalogue's topics on the broker")
    topics.add_argument("action", choices=["ensure"])
    topics.set_defaults(handler=_topics)

    schemas = sub.add_parser(
        "schemas", help="JSON Schemas of the event models and the ingress's OpenAPI document"
    )
    schemas.add_argument("action", choices=["write", "check"])
    schemas.add_argument("--dir", default="schemas")
    schemas.set_defaults(handler=_schemas)

    up = sub.add_parser("up", help="the ingress and every worker, in the foreground")
    up.add_argument(
        "--with-replay", action="store_true", help="the replay workers too (docs/replay.md)"
    )
    up.set_defaults(handler=_up)

    serve = sub.add_parser("serve", help="run the HTTP ingress")
    serve.set_defaults(handler=_serve)

    worker = sub.add_parser(
        "worker", help="run one service (a Faust worker, the sink or the sweeper)"
    )
    worker.add_argument(
        "service",
        choices=WORKERS,
    )
    worker.add_argument(
        "--replay",
        action="store_true",
        help=f"replay mode, for {', '.join(REPLAY_WORKERS)} (docs/replay.md)",
    )
    worker.set_defaults(handler=_worker)

    _add_runs(sub)
    flags.add_parser(sub)
    replay.add_parser(sub)
    tokens.add_parser(sub)
    console.add_parser(sub)

    _add_tools(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line, build settings from the environment and run one command."""
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env(os.environ)
        _observe(args, settings)
        handler: Handler = args.handler
        return handler(args, settings)
    except PlanstreamError as exc:
        print(f"planstream: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        if args.command not in DEV_COMMANDS or not _is_dev_tools(exc.name):
            raise
        print(_NO_DEV_TOOLS.format(command=args.command), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _observe(args: argparse.Namespace, settings: Settings) -> None:
    """Install the logs (and, for the ingress, the traces) of this command.

    A service (``serve``; ``worker`` hands over to ``python -m agents``) logs JSON lines unless
    told ``--log-format text``; every other command logs text to standard error, so what it
    prints on standard output is its answer alone.
    """
    from planstream.adapters import logs

    if args.log_format is not None:
        settings = settings.with_overrides(log_format=args.log_format)
        os.environ[f"{ENV_PREFIX}LOG_FORMAT"] = args.log_format  # for the worker `worker` execs
    service = _SERVICES.get(args.command)
    form = settings.log_format
    if form == "auto":
        form = "json" if service is not None else "text"
    logs.install(settings, service or f"cli-{args.command}", form)
    if service is not None:
        from planstream.adapters import tracing

        tracing.configure(settings, service, logs.instance_id(settings))


def _is_dev_tools(module: str | None) -> bool:
    """Whether ``module`` is planstream.dev or inside it (absent from a wheel install)."""
    return module is not None and (
        module == "planstream.dev" or module.startswith("planstream.dev.")
    )


if __name__ == "__main__":
    sys.exit(main())

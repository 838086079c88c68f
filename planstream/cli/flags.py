"""`planstream flags show | set | route | report`: the routing between planstream and the old
run-pipeline-step function (docs/migration.md), straight in PostgreSQL like `planstream dlq`.
The parser is built for every command, so each action imports what it uses when it runs.

Every change names its operator (``--operator``, default ``$USER``) and a reason, both kept in
the flags' history. Anyone who can reach the database can change the flags: once the API has
authentication, these commands become an operator-only endpoint.
"""

import argparse
import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from planstream.domain.errors import ConfigurationError
from planstream.settings import Settings

__all__ = ["add_parser", "run_command"]

T = TypeVar("T")


def add_parser(sub: Any) -> None:
    """The ``flags`` command and its actions."""
    flags = sub.add_parser(
        "flags", help="route steps to planstream or the old run-pipeline-step (docs/migration.md)"
    )
    actions = flags.add_subparsers(dest="action", required=True)
    show = actions.add_parser("show", help="the flags, each step's route now, and the history")
    show.add_argument("--history", type=int, default=10, help="changes to list (newest first)")
    change = actions.add_parser("set", help="set a flag, e.g. use_new_pipeline=false")
    change.add_argument("assignment", help="FLAG=VALUE: use_new_pipeline=true|false")
    route = actions.add_parser("route", help="route steps to new or legacy, e.g. --steps 1-6")
    route.add_argument("--steps", required=True, help="N, N-M or a list: 0-6, 1-6, 0,3")
    route.add_argument("--to", required=True, choices=["new", "legacy"])
    for parser in (change, route):
        parser.add_argument("--reason", required=True, help="why (kept in the history)")
        parser.add_argument("--operator", default=os.environ.get("USER") or "operator")
    report = actions.add_parser("report", help="per path and step: requests, sizes, errors")
    report.add_argument("--since", default=None, help="jobs created since (ISO 8601)")
    report.add_argument("--json", action="store_true", help="one JSON object per line")
    flags.set_defaults(handler=run_command)


def run_command(args: argparse.Namespace, settings: Settings) -> int:
    """Run one ``flags`` action against the settings' database."""
    match args.action:
        case "show":
            print(_with_pool(settings, lambda pool: _show(pool, args.history)))
        case "set":
            from planstream.domain.routing import parse_assignment

            updates = parse_assignment(args.assignment)
            print(_with_pool(settings, lambda pool: _change(pool, updates, args)))
        case "route":
            from planstream.domain.routing import parse_steps, route_updates

            updates = route_updates(parse_steps(args.steps), args.to)
            print(_with_pool(settings, lambda pool: _change(pool, updates, args)))
        case "report":
            since = datetime.fromisoformat(args.since) if args.since else None
            if since is not None and since.tzinfo is None:
                since = since.replace(tzinfo=UTC)
            print(_with_pool(settings, lambda pool: _report(pool, since, args.json)))
    return 0


def _with_pool(settings: Settings, work: Callable[[Any], Awaitable[T]]) -> T:
    import asyncpg

    from planstream.adapters.postgres.db import create_pool

    async def run() -> T:
        pool = await create_pool(settings.dsn, max_size=2, command_timeout=settings.db_timeout_s)
        try:
            return await work(pool)
        except asyncpg.UndefinedTableError:
            raise ConfigurationError(
                "the routing flags' tables are missing: run `planstream db migrate` first"
            ) from None
        finally:
            await pool.close()

    return asyncio.run(run())


async def _show(pool: Any, limit: int) -> str:
    from planstream.adapters.postgres.routes import Routes
    from planstream.domain.routing import STEPS, route_of

    routes = Routes(pool)
    flags = await routes.flags()
    lines = [f"{name:<18}{value}" for name, value in flags.values().items()]
    effective = [route_of(flags, step) for step in STEPS]
    lines.append(
        "effective: " + ", ".join(f"{s} {r}" for s, r in zip(STEPS, effective, strict=True))
    )
    history = await routes.history(limit)
    lines.append(f"history ({len(history)} newest):" if history else "history: none")
    lines += [
        f"  {c.changed_at.isoformat(timespec='seconds')}  {c.operator}  {c.flag} "
        f"{c.old} -> {c.new}  ({c.reason})"
        for c in history
    ]
    return "\n".join(lines)


async def _change(pool: Any, updates: dict[str, str], args: argparse.Namespace) -> str:
    from planstream.adapters.postgres.routes import Routes

    made = await Routes(pool).set_flags(updates, operator=args.operator, reason=args.reason)
    if not made:
        return "unchanged: every flag already had that value"
    return "\n".join(f"{c.flag}: {c.old} -> {c.new}" for c in made)


async def _report(pool: Any, since: datetime | None, as_json: bool) -> str:
    from planstream.adapters.postgres.path_report import read_jobs, summarise

    figures = [f.as_dict() for f in summarise(await read_jobs(pool, since))]
    if as_json:
        return "\n".join(json.dumps(f, sort_keys=True) for f in figures)
    header = (
        f"{'path':<7}{'step':>4}{'requests':>9}{'p50 B':>8}{'p95 B':>8}{'max B':>8}"
        f"{'dup':>5}{'taken':>6}{'att.max':>8}{'calls':>6}  errors by code"
    )
    rows = [
        f"{f['path']:<7}{f['step']:>4}{f['requests']:>9}{f['p50_bytes']:>8}{f['p95_bytes']:>8}"
        f"{f['max_bytes']:>8}{f['duplicate_jobs']:>5}{f['taken_over']:>6}{f['attempts_max']:>8}"
        f"{f['legacy_calls']:>6}  " + " ".join(f"{k}={v}" for k, v in f["errors"].items())
        for f in figures
    ]
    note = (
        "bytes: every event the new path's jobs kept; every request body sent to the old "
        "function. dup: step attempts with jobs on both paths."
    )
    return "\n".join([header, *rows, note]) if rows else "no jobs"

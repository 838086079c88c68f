"""`planstream replay start | show | diff | cancel | purge`: re-decide recorded runs with today's
rules, prompts and models, and compare (docs/replay.md).

``start`` selects the Supervisor's recorded decisions, opens the replay (its registry row and its
own PostgreSQL schema, planstream.adapters.postgres.replays), publishes one request per attempt
to ``planstream.replay.info.requested.v1`` for the replay workers (``python -m agents SERVICE
--replay``), and follows the progress. Nothing here writes a production row or topic.
"""

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from planstream.domain.errors import ConfigurationError
from planstream.settings import Settings

__all__ = ["add_parser", "run_command"]

T = TypeVar("T")


def add_parser(sub: Any) -> None:
    """The ``replay`` command and its actions."""
    replay = sub.add_parser(
        "replay", help="re-decide recorded runs with today's rules, prompts, models; compare"
    )
    actions = replay.add_subparsers(dest="action", required=True)
    start = actions.add_parser("start", help="select recorded decisions and replay them")
    start.add_argument("--run", action="append", default=[], help="a run id (repeatable)")
    start.add_argument("--since", default=None, help="decisions made since (ISO 8601, with zone)")
    start.add_argument("--until", default=None, help="decisions made before (ISO 8601)")
    start.add_argument("--decision", choices=["proceed", "retry", "block"], default=None)
    start.add_argument("--block-reason", default=None, help="e.g. retry_budget_exhausted")
    start.add_argument("--limit", type=int, default=100, help="at most this many attempts")
    mode = start.add_mutually_exclusive_group()
    mode.add_argument("--frozen", action="store_true", help="recorded answers (default)")
    mode.add_argument("--live", action="store_true", help="ask the model again (costs money)")
    start.add_argument("--max-usd", type=float, default=None, help="cost cap (required: --live)")
    start.add_argument("--trace", action="store_true", help="what each rule read (one --run)")
    start.add_argument("--no-follow", action="store_true", help="print the id and return")
    start.add_argument("--timeout", type=float, default=600.0, help="seconds to follow")
    start.add_argument("--operator", default=os.environ.get("USER") or "operator")
    show = actions.add_parser("show", help="the decision diff, per run and step")
    show.add_argument("replay_id")
    show.add_argument("--json", action="store_true", help="one JSON object")
    show.add_argument("--all", action="store_true", help="unchanged attempts too")
    diff = actions.add_parser("diff", help="exit 1 when the replay flipped too many decisions")
    diff.add_argument("replay_id")
    gate = diff.add_mutually_exclusive_group(required=True)
    gate.add_argument("--max-flips", type=int, help="flips allowed")
    gate.add_argument("--fail-on", help="'flips>N': fail when more than N decisions flipped")
    cancel = actions.add_parser("cancel", help="stop a running replay")
    cancel.add_argument("replay_id")
    purge = actions.add_parser("purge", help="delete a replay's rows and objects")
    target = purge.add_mutually_exclusive_group(required=True)
    target.add_argument("--replay", dest="replay_id", default=None)
    target.add_argument("--expired", action="store_true", help="those past replay_retention_days")
    replay.set_defaults(handler=run_command)


def run_command(args: argparse.Namespace, settings: Settings) -> int:
    """Run one ``replay`` action against the settings' database and broker."""
    from planstream.cli import replay_actions as act

    try:
        match args.action:
            case "start":
                return _run(settings, lambda pool: act.start(settings, pool, args))
            case "show":
                return _run(settings, lambda pool: act.show(pool, args.replay_id, args))
            case "diff":
                limit = args.max_flips if args.max_flips is not None else _fail_on(args.fail_on)
                return _run(settings, lambda pool: act.diff(pool, args.replay_id, limit))
            case "cancel":
                return _run(settings, lambda pool: act.cancel(pool, args.replay_id))
            case "purge":
                return _run(settings, lambda pool: act.purge(settings, pool, args))
    except ConfigurationError as exc:
        print(f"planstream replay {args.action}: {exc}", file=sys.stderr)
        return 2
    raise AssertionError(args.action)


def _fail_on(text: str) -> int:
    """N of ``flips>N``."""
    name, _, number = text.replace(" ", "").partition(">")
    if name != "flips" or not number.isdigit():
        raise ConfigurationError(f"--fail-on takes 'flips>N', not {text!r}")
    return int(number)


def _run(settings: Settings, action: Callable[[Any], Awaitable[int]]) -> int:
    from planstream.adapters.postgres.db import create_pool

    async def main() -> int:
        pool = await create_pool(settings.dsn, max_size=2, command_timeout=settings.db_timeout_s)
        try:
            return await action(pool)
        finally:
            await pool.close()

    return asyncio.run(main())


def parse_moment(text: str | None, flag: str) -> datetime | None:
    """An ISO 8601 time with its zone, or ConfigurationError naming the flag."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigurationError(f"{flag} is not an ISO 8601 time: {text!r}") from None
    if moment.tzinfo is None:
        raise ConfigurationError(f"{flag} needs a time zone, e.g. {text}+00:00")
    return moment


def follow(
    read: Callable[[], Awaitable[Any]], timeout_s: float, poll_s: float, tty: bool
) -> Awaitable[Any]:
    """Poll the replay's record until it is no longer running (or ``timeout_s``), printing a
    bar rewritten in place on a terminal, else a line whenever progress moves."""
    from planstream.cli.replay_view import progress_bar, progress_line

    async def loop() -> Any:
        deadline, last = time.monotonic() + timeout_s, None
        while True:
            record = await read()
            now = (record.attempts_done, record.attempts_failed, record.status)
            if tty:
                bar = progress_bar(*now[:2], record.attempts_total, record.status)
                print(f"\r{bar}", end="" if record.status == "running" else "\n", flush=True)
            elif now != last:
                print(progress_line(*now[:2], record.attempts_total, now[2], record.cost_usd))
            last = now
            if record.status != "running" or time.monotonic() > deadline:
                if tty and record.status == "running":
                    print()
                return record
            await asyncio.sleep(poll_s)

    return loop()


def to_json(value: Any) -> str:
    return json.dumps(value, default=str, ensure_ascii=False)


def expiry(settings: Settings) -> timedelta:
    return timedelta(days=settings.replay_retention_days)


def now() -> datetime:
    return datetime.now(UTC)

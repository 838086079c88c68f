"""The console's operations pages: dead letters (listed, redriven with a reason by the
signed-in operator, audited as ``planstream dlq redrive`` does) and the routing flags, read-only."""

import re
from typing import Final

from aiohttp import web

from planstream.adapters.http.console.forms import (
    check_csrf,
    check_reason,
    is_run_id,
    query_value,
    read_form,
)
from planstream.adapters.http.console.rendering import page, refusal, see_other
from planstream.adapters.http.console.session import PATH, Session, guarded
from planstream.adapters.http.console.sources import letters_on_topic
from planstream.adapters.http.resources import POOL, SETTINGS
from planstream.adapters.kafka.redrive import RedriveRefused, redrive
from planstream.adapters.postgres.console_queries import redriven_letters
from planstream.adapters.postgres.routes import Routes
from planstream.domain.routing import STEPS, route_of

__all__ = ["dead_letters", "flags", "redrive_letters"]

_LETTER: Final = re.compile(r"(\d{1,5}):(\d{1,19})")
_COUNT: Final = re.compile(r"\d{1,6}")
_PAGE: Final = f"{PATH}/dead-letters"


def _refused(request: web.Request, session: Session, status: int, text: str) -> web.Response:
    return refusal(request, status, "The redrive was refused", text, back=_PAGE, session=session)


def _count(value: str | None) -> int | None:
    return int(value) if value is not None and _COUNT.fullmatch(value) else None


@guarded
async def dead_letters(request: web.Request, session: Session) -> web.StreamResponse:
    """The dead letters, newest first (optionally one run's), each with its error and source
    and whether it was redriven; a form to redrive the selected ones."""
    run = query_value(request, "run")
    if run is not None and not is_run_id(run):
        return refusal(request, 422, "Bad filter", "run is a run id.", back=_PAGE, session=session)
    settings = request.config_dict[SETTINGS]
    found = await letters_on_topic(settings)
    letters = [d for d in found.letters if run is None or d.run_id == run]
    shown = letters[: settings.console_dead_letters_limit]
    done = await redriven_letters(
        request.config_dict[POOL], [(d.partition, d.offset) for d in shown]
    )
    return page(
        request,
        "dead_letters.html",
        session=session,
        here="dead-letters",
        letters=shown,
        total=len(letters),
        problem=found.problem,
        done=done,
        run=run or "",
        redriven=_count(request.query.get("redriven")),
        skipped=_count(request.query.get("skipped")),
    )


@guarded
async def redrive_letters(request: web.Request, session: Session) -> web.StreamResponse:
    """Put the selected dead letters back on their topics, with the operator and reason kept."""
    settings = request.config_dict[SETTINGS]
    form = await read_form(
        request, settings, fields={"csrf", "reason", "letter"}, lists={"letter"}, back=_PAGE
    )
    check_csrf(request, session, form, _PAGE)
    wanted: list[tuple[int, int]] = []
    for value in form.values("letter"):
        match = _LETTER.fullmatch(value)
        if match is None:
            text = "A letter is named partition:offset."
            return _refused(request, session, 422, text)
        wanted.append((int(match.group(1)), int(match.group(2))))
    if not wanted:
        return _refused(request, session, 422, "Select at least one dead letter to redrive.")
    reason = check_reason(request, form.value("reason"), _PAGE)
    found = await letters_on_topic(settings)
    if found.problem is not None:
        return _refused(request, session, 503, found.problem)
    on_topic = {(d.partition, d.offset): d for d in found.letters}
    gone = [f"{p}:{o}" for p, o in wanted if (p, o) not in on_topic]
    if gone:
        text = f"Not on the dead-letter topic (any more): {', '.join(gone[:10])}."
        return _refused(request, session, 409, text)
    chosen = [on_topic[key] for key in dict.fromkeys(wanted)]
    try:
        done, skipped = await redrive(settings, chosen, session.principal.subject, reason)
    except RedriveRefused as exc:
        return _refused(request, session, 422, str(exc))
    return see_other(f"{_PAGE}?redriven={done}&skipped={skipped}")


@guarded
async def flags(request: web.Request, session: Session) -> web.StreamResponse:
    """The routing flags, each step's route now and the latest changes (read-only: changes go
    through `planstream flags`, which keeps who and why)."""
    config = request.config_dict
    routes = Routes(config[POOL])
    now = await routes.flags()
    history = await routes.history(config[SETTINGS].console_history_limit)
    return page(
        request,
        "flags.html",
        session=session,
        here="flags",
        values=now.values(),
        effective=[(step, route_of(now, step)) for step in STEPS],
        history=history,
    )

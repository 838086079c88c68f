"""The console's run pages: the blocked-run queue, a run's timeline, its images through
short-lived signed URLs, and the review form (the API's review, as the signed-in operator)."""

import asyncio
import logging
import re
from datetime import UTC, datetime
from typing import Final, get_args

from aiohttp import web

from planstream.adapters.http.console.forms import (
    check_csrf,
    check_reason,
    is_run_id,
    query_value,
    read_form,
)
from planstream.adapters.http.console.rendering import page, refusal, see_other
from planstream.adapters.http.console.session import PATH, Leave, Session, guarded
from planstream.adapters.http.console.sources import dead_letters_of, read_documents
from planstream.adapters.http.console.timeline import build_timeline, pictures, spaces_wanted
from planstream.adapters.http.resources import POOL, SETTINGS, STORAGE
from planstream.adapters.http.review import ReviewAction, submit_review
from planstream.adapters.postgres.console_queries import artifact_of_run, blocked_runs, run_extras
from planstream.adapters.postgres.run_view import run_view
from planstream.domain.errors import Conflict, QuotaExceeded, RecordMissing
from planstream.domain.ids import is_id
from planstream.domain.steps import LAST_STEP

__all__ = ["artifact", "queue", "review", "run_page"]

log = logging.getLogger(__name__)

_REASON_FILTER: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
_ACTIONS: Final[tuple[ReviewAction, ...]] = get_args(ReviewAction)


def _run_id(request: web.Request, session: Session) -> str:
    run_id = request.match_info["run_id"]
    if not is_run_id(run_id):
        raise Leave(refusal(request, 404, "No such run", "That is not a run id.", session=session))
    return run_id


@guarded
async def queue(request: web.Request, session: Session) -> web.StreamResponse:
    """The blocked runs, oldest block first, filtered by reason and step."""
    reason, step = query_value(request, "reason"), query_value(request, "step")
    if reason is not None and not _REASON_FILTER.fullmatch(reason):
        text = "A block reason is a name such as retry_budget_exhausted."
        return refusal(request, 422, "Bad filter", text, back=f"{PATH}/blocked", session=session)
    if step is not None and not (step.isdigit() and len(step) == 1 and int(step) <= LAST_STEP):
        text = f"A step is a number from 0 to {LAST_STEP}."
        return refusal(request, 422, "Bad filter", text, back=f"{PATH}/blocked", session=session)
    settings = request.config_dict[SETTINGS]
    found = await blocked_runs(
        request.config_dict[POOL],
        reason,
        int(step) if step is not None else None,
        settings.console_queue_limit,
    )
    return page(
        request,
        "blocked.html",
        session=session,
        here="blocked",
        queue=found,
        reason=reason or "",
        step=step or "",
        steps=range(LAST_STEP + 1),
        now=datetime.now(UTC),
    )


@guarded
async def run_page(request: web.Request, session: Session) -> web.StreamResponse:
    """One run: its images, its timeline per step attempt, its dead letters, the review form."""
    run_id = _run_id(request, session)
    config = request.config_dict
    settings, pool = config[SETTINGS], config[POOL]
    view = await run_view(pool, run_id)
    if view is None:
        text = f"Run {run_id} does not exist."
        return refusal(request, 404, "No such run", text, back=f"{PATH}/blocked", session=session)
    wanted = spaces_wanted(view, settings.console_documents_per_run)
    extras, documents, letters = await asyncio.gather(
        run_extras(pool, run_id),
        read_documents(config[STORAGE], settings, view, wanted),
        dead_letters_of(settings, run_id),
    )
    now = datetime.now(UTC)
    sent = request.query.get("review", "")
    return page(
        request,
        "run.html",
        session=session,
        here="",
        run=view,
        pictures=pictures(view),
        timeline=build_timeline(view, extras, documents, now),
        redrives=extras["redrives"],
        letters=letters,
        sent=sent if is_id(sent) and sent.startswith("evt_") else None,
        actions=_ACTIONS,
        now=now,
    )


@guarded
async def artifact(request: web.Request, session: Session) -> web.StreamResponse:
    """303 to a freshly signed, short-lived GET URL of one artifact of the run (never logged)."""
    run_id, artifact_id = _run_id(request, session), request.match_info["artifact_id"]
    config = request.config_dict
    found = None
    if is_id(artifact_id) and artifact_id.startswith("art_"):
        found = await artifact_of_run(config[POOL], run_id, artifact_id)
    if found is None:
        text = f"Run {run_id} has no artifact {artifact_id[:40]!r}."
        return refusal(request, 404, "No such artifact", text, session=session)
    ttl = config[SETTINGS].console_artifact_url_ttl_s
    url = await config[STORAGE].presign_get(found.bucket, found.key, ttl)
    return see_other(url)


@guarded
async def review(request: web.Request, session: Session) -> web.StreamResponse:
    """Approve, retry or reject the blocked run with a reason, as the signed-in operator."""
    run_id = _run_id(request, session)
    back = f"{PATH}/runs/{run_id}"
    settings = request.config_dict[SETTINGS]
    form = await read_form(request, settings, fields={"csrf", "action", "reason"}, back=back)
    check_csrf(request, session, form, back)
    action = next((a for a in _ACTIONS if a == form.value("action")), None)
    if action is None:
        text = "Choose approve, retry or reject."
        return refusal(request, 422, "The review was refused", text, back=back, session=session)
    reason = check_reason(request, form.value("reason"), back)
    try:
        submitted = await submit_review(
            request.config_dict, run_id, action, reason, session.principal.subject
        )
    except RecordMissing as exc:
        return refusal(request, 404, "No such run", str(exc), session=session)
    except Conflict as exc:
        return refusal(request, 409, "The review was refused", str(exc), back=back, session=session)
    except QuotaExceeded as exc:
        answer = refusal(request, 429, "Too many reviews", str(exc), back=back, session=session)
        answer.headers["Retry-After"] = str(exc.retry_after_s)
        return answer
    log.info(
        "a review was sent from the console",
        extra={"run_id": run_id, "step_id": submitted.step_id, "attempt": submitted.attempt},
    )
    return see_other(f"{back}?review={submitted.reviewed.event_id}#review")

"""The console's replay pages, read-only (docs/replay.md): the replays, newest first, and one
replay's decision diff. Replays are started, cancelled and purged with `planstream replay`."""

from aiohttp import web

from planstream.adapters.http.console.rendering import page, refusal
from planstream.adapters.http.console.session import PATH, Session, guarded
from planstream.adapters.http.resources import POOL, SETTINGS
from planstream.adapters.postgres.replay_diff import decision_diff, recent_replays
from planstream.adapters.postgres.replays import ReplayStore
from planstream.domain.ids import is_id
from planstream.domain.replay import ReplaySummary, StepDiff

__all__ = ["replay_page", "replays"]


@guarded
async def replays(request: web.Request, session: Session) -> web.StreamResponse:
    """The latest replays: mode, who started them, status, progress and cost."""
    config = request.config_dict
    found = await recent_replays(config[POOL], config[SETTINGS].console_replays_limit)
    return page(request, "replays.html", session=session, here="replays", replays=found)


@guarded
async def replay_page(request: web.Request, session: Session) -> web.StreamResponse:
    """One replay: its record, the summary, and every attempt with both decisions."""
    replay_id = request.match_info["replay_id"]
    back = f"{PATH}/replays"
    if not (is_id(replay_id) and replay_id.startswith("rpl_")):
        return refusal(request, 404, "No such replay", "That is not a replay id.", back=back,
                       session=session)  # fmt: skip
    store = ReplayStore(request.config_dict[POOL])
    record = await store.progress(replay_id)
    if record is None:
        text = f"There is no replay {replay_id}."
        return refusal(request, 404, "No such replay", text, back=back, session=session)
    diffs: list[StepDiff] = []
    summary: ReplaySummary | None = None
    if record.status != "purged":  # a purged replay's decisions went with its schema
        diffs, summary = await decision_diff(store, replay_id)
    return page(
        request,
        "replay.html",
        session=session,
        here="replays",
        replay=record,
        diffs=diffs,
        summary=summary,
    )

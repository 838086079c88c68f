"""What a replay's runtime puts around production's parts, on the fakes: the publisher forwards
the events inside an attempt to their replay twins, stamped, and drops the rest; the store
writes under the replay's prefix only; routes are always new; a frozen replay takes no turn at
the provider's rate limit."""

import pytest

from planstream.domain.errors import PermanentError
from planstream.domain.events import Event, RunCompleted, StepEvent
from planstream.domain.ids import new_id
from planstream.domain.rate_buckets import Bucket, RateLimit
from planstream.domain.routing import FlagRefused
from planstream.domain.rules import ARTIFACT_MISSING
from planstream.services.replay_scope import (
    FORWARDED,
    NewPathRoutes,
    ReplayLimiter,
    ReplayPublisher,
    ReplayStorage,
)
from planstream.services.step_attempt import store_by_digest
from tests.fakes import FakeRateLimiter, make_world
from tests.fakes.replays import replay_world
from tests.unit.services.steps import (
    WHEN,
    make_comparison_completed,
    make_info_extracted,
    make_render_requested,
    make_step_failed,
)
from topics import (
    COMPARISON_COMPLETED,
    DECISION_MADE,
    INFO_EXTRACTED,
    INFO_REQUESTED,
    RENDER_REQUESTED,
    REPLAY_FAMILY,
    RUN_BLOCKED,
    RUN_COMPLETED,
    STEP_FAILED,
    replay_twin,
)

RPL = "rpl_" + "b2" * 16
OTHER = "rpl_" + "c3" * 16


def test_the_forwarded_topics_are_those_inside_an_attempt_and_each_has_a_twin() -> None:
    assert {
        STEP_FAILED.name,
        INFO_EXTRACTED.name,
        COMPARISON_COMPLETED.name,
        DECISION_MADE.name,
    } == FORWARDED
    assert {replay_twin(spec) for spec in (STEP_FAILED, INFO_EXTRACTED)} <= set(REPLAY_FAMILY)


async def test_the_events_inside_an_attempt_go_to_their_twins_stamped() -> None:
    rw = replay_world(make_world())
    run_id = new_id("run")
    publisher = ReplayPublisher(rw.world.publisher, rw.replay)
    events: list[tuple[object, StepEvent]] = [
        (STEP_FAILED, make_step_failed(run_id, ARTIFACT_MISSING.failure("gone"))),
        (INFO_EXTRACTED, make_info_extracted(run_id, new_id("art"), None)),
        (COMPARISON_COMPLETED, make_comparison_completed(run_id, new_id("art"), [])),
    ]
    with rw.inside(RPL):
        for spec, event in events:
            await publisher.publish(spec, event)  # type: ignore[arg-type]
        # A twin is its own twin: what a replay worker passes on twice stays on the family.
        await publisher.publish(replay_twin(STEP_FAILED), events[0][1])

    published = rw.world.publisher.published
    assert [p.topic for p in published] == [
        replay_twin(STEP_FAILED).name,
        replay_twin(INFO_EXTRACTED).name,
        replay_twin(COMPARISON_COMPLETED).name,
        replay_twin(STEP_FAILED).name,
    ]
    assert {p.event.replay_id for p in published} == {RPL}
    assert [p.event.event_id for p in published[:3]] == [e.event_id for _, e in events]


async def test_what_would_follow_a_decision_is_dropped_with_a_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rw = replay_world(make_world())
    run_id = new_id("run")
    publisher = ReplayPublisher(rw.world.publisher, rw.replay)
    completed = RunCompleted(
        event_id=new_id("evt"), run_id=run_id, occurred_at=WHEN, steps_completed=7
    )
    with rw.inside(RPL), caplog.at_level("INFO"):
        await publisher.publish(RENDER_REQUESTED, make_render_requested(run_id, new_id("art")))
        await publisher.publish(RUN_COMPLETED, completed)

    assert rw.world.publisher.published == []
    dropped = [r.getMessage() for r in caplog.records if "follows nothing" in r.getMessage()]
    assert len(dropped) == 2
    assert f"replay {RPL}: RenderRequested not published on {RENDER_REQUESTED.name}" in dropped[0]
    for spec in (INFO_REQUESTED, RUN_BLOCKED):
        assert spec.name not in FORWARDED


async def test_an_event_of_another_replay_or_outside_one_is_refused() -> None:
    rw = replay_world(make_world())
    publisher = ReplayPublisher(rw.world.publisher, rw.replay)
    run_id = new_id("run")
    foreign: Event = make_info_extracted(run_id, new_id("art"), None, replay_id=OTHER)
    with rw.inside(RPL), pytest.raises(PermanentError, match="was published for replay"):
        await publisher.publish(INFO_EXTRACTED, foreign)
    with pytest.raises(PermanentError, match="no replay is set"):
        await publisher.publish(INFO_EXTRACTED, make_info_extracted(run_id, new_id("art"), None))
    assert rw.world.publisher.published == []


async def test_a_replay_stores_under_its_prefix_and_records_where_the_object_is() -> None:
    rw = replay_world(make_world())
    world = rw.world
    run, _ = await world.new_run()
    event = make_info_extracted(run.run_id, new_id("art"), None)
    production = world.runtime("info_worker")
    replayed = rw.runtime("info_worker")

    kept = await store_by_digest(
        production, event, "model_response", b"{}", name="raw", suffix=".json", content_type="x"
    )
    with rw.inside(RPL):
        assert replayed.storage.prefix == f"replays/{RPL}/"
        copy = await store_by_digest(
            replayed, event, "model_response", b"{}", name="raw", suffix=".json", content_type="x"
        )

    original, replay = await world.repo.artifact(kept), await world.repo.artifact(copy)
    assert original is not None and replay is not None
    assert original.storage_path.startswith(f"runs/{run.run_id}/step-0/raw-")
    assert replay.storage_path == f"replays/{RPL}/{original.storage_path}"
    assert copy != kept  # another object, another artifact
    objects = world.storage.buckets[world.storage.bucket]
    assert objects[replay.storage_path].data == b"{}"


async def test_a_replay_store_refuses_a_write_outside_its_prefix() -> None:
    rw = replay_world(make_world())
    store = ReplayStorage(rw.world.storage, rw.replay)
    with rw.inside(RPL):
        for key in ("runs/x.json", f"replays/{OTHER}/runs/x.json", f"replays/{RPL}/../x.json"):
            with pytest.raises(PermanentError, match="writes only under"):
                await store.write(key, b"x", "application/json")
        await store.write(f"replays/{RPL}/runs/x.json", b"x", "application/json")
    assert list(rw.world.storage.buckets[store.bucket]) == [f"replays/{RPL}/runs/x.json"]


async def test_a_replay_routes_every_attempt_new_and_changes_no_flag() -> None:
    routes = NewPathRoutes()
    assert await routes.claim(new_id("run"), 3, 2, "legacy") == "new"
    assert (await routes.flags()).routes == ("new",) * 7
    assert await routes.history(10) == []
    with pytest.raises(FlagRefused):
        await routes.set_flags({"route.step1": "legacy"}, operator="op", reason="no")


async def test_a_frozen_replay_takes_no_turn_at_the_rate_limit_and_a_live_one_does() -> None:
    world = make_world()
    rw = replay_world(world)
    rw.ledger.add(RPL, "frozen")
    rw.ledger.add(OTHER, "live")
    inner = FakeRateLimiter(world.clock)
    limiter = ReplayLimiter(inner, rw.replay)
    bucket = Bucket("http://model", "m", RateLimit(1, 1_000, 60.0))

    with rw.inside(RPL):
        for _ in range(5):  # far over one request per minute: never waits, never reserves
            assert await limiter.reserve(bucket, 900, 0.0) == 0.0
        await limiter.throttle(bucket, 30.0)
    with rw.inside(OTHER):
        assert await limiter.reserve(bucket, 900, 0.0) == 0.0
        assert await limiter.reserve(bucket, 900, 0.0) is None  # the bucket is spent

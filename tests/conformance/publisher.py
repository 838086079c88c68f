"""What the services rely on from the publisher: an event arrives on its topic, keyed by its
run, in order, exactly as sent; an event on the wrong topic is refused before it is sent."""

from datetime import UTC, datetime
from typing import Protocol

import pytest

from planstream.domain.errors import EventRejected
from planstream.domain.events import Event, RunCompleted
from planstream.domain.ids import new_id
from planstream.ports import Publisher
from tests.factories import make_step_requested
from topics import RUN_COMPLETED, STEP_REQUESTED, TopicSpec

__all__ = ["PublisherContract", "PublisherHarness"]


class PublisherHarness(Protocol):
    @property
    def publisher(self) -> Publisher: ...

    async def read_back(self, spec: TopicSpec, run_id: str) -> list[tuple[bytes, Event]]:
        """The (key, event) of every message of ``run_id`` on ``spec``, in order."""


class PublisherContract:
    """The suite; subclass it with a ``harness`` fixture."""

    async def test_an_event_arrives_keyed_by_its_run(self, harness: PublisherHarness) -> None:
        event = make_step_requested()
        await harness.publisher.publish(STEP_REQUESTED, event)
        assert await harness.read_back(STEP_REQUESTED, event.run_id) == [
            (event.run_id.encode(), event)
        ]

    async def test_a_runs_events_keep_their_order(self, harness: PublisherHarness) -> None:
        run_id = new_id("run")
        sent = [make_step_requested(run_id=run_id, attempt=n) for n in (1, 2, 3)]
        for event in sent:
            await harness.publisher.publish(STEP_REQUESTED, event)
        assert [e for _, e in await harness.read_back(STEP_REQUESTED, run_id)] == sent

    async def test_an_event_on_the_wrong_topic_is_refused(self, harness: PublisherHarness) -> None:
        event = make_step_requested()
        with pytest.raises(EventRejected):
            await harness.publisher.publish(RUN_COMPLETED, event)
        done = RunCompleted(
            event_id=new_id("evt"),
            run_id=event.run_id,
            occurred_at=datetime(2026, 11, 29, tzinfo=UTC),
            steps_completed=7,
        )
        await harness.publisher.publish(RUN_COMPLETED, done)
        assert await harness.read_back(RUN_COMPLETED, event.run_id) == [
            (event.run_id.encode(), done)
        ]
        assert await harness.read_back(STEP_REQUESTED, event.run_id) == []

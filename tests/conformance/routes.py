"""What the routing relies on from the flags' store: defaults all new; a change applies all its
flags or none, once, with one history row per flag it changed; the history reads newest first;
and each step attempt keeps the route it was first claimed on, whoever claims it again."""

import asyncio
from typing import Protocol

import pytest

from planstream.domain.routing import (
    DEFAULT_FLAGS,
    FLAG_NAMES,
    FlagRefused,
    Flags,
    route_flag,
)
from planstream.ports import Routes

__all__ = ["RESET", "RoutesContract", "RoutesHarness"]

RESET = dict(DEFAULT_FLAGS.values())
"""The update that puts every flag back to its default."""


class RoutesHarness(Protocol):
    @property
    def routes(self) -> Routes: ...

    def other(self) -> Routes:
        """Another process's store over the same flags (its own connections)."""

    async def new_run(self) -> str:
        """A run step attempts may be claimed for; its id."""


async def _fresh(harness: RoutesHarness) -> Routes:
    """The store with every flag at its default (the real table is shared by the session)."""
    await harness.routes.set_flags(RESET, operator="conformance", reason="reset for a test")
    return harness.routes


class RoutesContract:
    """The suite; subclass it with a ``harness`` fixture."""

    async def test_defaults_send_every_step_to_the_new_path(self, harness: RoutesHarness) -> None:
        routes = await _fresh(harness)
        assert await routes.flags() == Flags() == DEFAULT_FLAGS

    async def test_a_change_is_read_back_by_every_process_with_its_history(
        self, harness: RoutesHarness
    ) -> None:
        routes = await _fresh(harness)
        made = await routes.set_flags(
            {"use_new_pipeline": "false"}, operator="ana", reason="rollback drill"
        )
        assert [(c.flag, c.old, c.new, c.operator, c.reason) for c in made] == [
            ("use_new_pipeline", "true", "false", "ana", "rollback drill")
        ]
        assert (await harness.other().flags()).use_new_pipeline is False
        [latest] = await routes.history(1)
        assert (latest.flag, latest.old, latest.new) == ("use_new_pipeline", "true", "false")
        assert latest.changed_at.tzinfo is not None

    async def test_routing_steps_changes_each_named_flag_in_order(
        self, harness: RoutesHarness
    ) -> None:
        routes = await _fresh(harness)
        updates = {route_flag(step): "legacy" for step in (6, 1, 2)}
        made = await routes.set_flags(updates, operator="ana", reason="phase 1")
        assert [c.flag for c in made] == [route_flag(1), route_flag(2), route_flag(6)]
        flags = await routes.flags()
        assert flags.routes == ("new", "legacy", "legacy", "new", "new", "new", "legacy")
        newest = await routes.history(3)
        assert [c.flag for c in newest] == [route_flag(6), route_flag(2), route_flag(1)]

    async def test_a_value_already_set_writes_no_history(self, harness: RoutesHarness) -> None:
        routes = await _fresh(harness)
        before = await routes.history(1)
        again = await routes.set_flags(
            {route_flag(3): "new"}, operator="ana", reason="nothing to do"
        )
        assert again == []
        assert await routes.history(1) == before

    async def test_a_bad_change_changes_nothing(self, harness: RoutesHarness) -> None:
        routes = await _fresh(harness)
        before = await routes.history(1)
        for updates in (
            {"use_new_pipeline": "no"},
            {route_flag(0): "legacy", route_flag(1): "sideways"},
            {route_flag(0): "legacy", "route.step7": "legacy"},
            {},
        ):
            with pytest.raises(FlagRefused):
                await routes.set_flags(updates, operator="ana", reason="typo")
            assert await routes.flags() == DEFAULT_FLAGS, updates
        assert await routes.history(1) == before

    async def test_a_change_needs_an_operator_and_a_reason(self, harness: RoutesHarness) -> None:
        routes = await _fresh(harness)
        for operator, reason in (("ana", " "), ("no one!", "why"), ("ana", "see https://x.y")):
            with pytest.raises(FlagRefused):
                await routes.set_flags(
                    {"use_new_pipeline": "false"}, operator=operator, reason=reason
                )
        assert await routes.flags() == DEFAULT_FLAGS

    async def test_the_history_is_newest_first_and_limited(self, harness: RoutesHarness) -> None:
        routes = await _fresh(harness)
        for value, reason in (("false", "first"), ("true", "second"), ("false", "third")):
            await routes.set_flags({"use_new_pipeline": value}, operator="ana", reason=reason)
        newest = await routes.history(2)
        assert [(c.new, c.reason) for c in newest] == [("false", "third"), ("true", "second")]
        assert newest[0].changed_at >= newest[1].changed_at
        assert set(FLAG_NAMES) >= {c.flag for c in await routes.history(50)}

    async def test_a_step_attempt_keeps_its_first_route(self, harness: RoutesHarness) -> None:
        run_id, other_run = await harness.new_run(), await harness.new_run()
        routes = harness.routes
        assert await routes.claim(run_id, 2, 1, "legacy") == "legacy"
        assert await routes.claim(run_id, 2, 1, "new") == "legacy"
        assert await harness.other().claim(run_id, 2, 1, "new") == "legacy"
        assert await routes.claim(run_id, 2, 2, "new") == "new"
        assert await routes.claim(run_id, 3, 1, "new") == "new"
        assert await routes.claim(other_run, 2, 1, "new") == "new"

    async def test_concurrent_claims_agree(self, harness: RoutesHarness) -> None:
        run_id = await harness.new_run()
        stores = [harness.routes, harness.other()] * 4
        routes = ("new", "legacy") * 4
        got = await asyncio.gather(
            *(store.claim(run_id, 4, 1, route) for store, route in zip(stores, routes, strict=True))
        )
        assert len(set(got)) == 1

"""Broken flag stores, one fault each, that the routes' suite must catch."""

from collections.abc import Mapping

from planstream.domain.routing import FlagChange, Route, check_updates
from tests.conformance.fake_harnesses import FakeRoutesHarness
from tests.conformance.mutants import breaks
from tests.conformance.routes import RoutesContract
from tests.fakes import FakeRoutes

__all__: list[str] = []

C, H = RoutesContract, FakeRoutesHarness


@breaks(C, H, "test_defaults_send_every_step_to_the_new_path")
class StartsOnLegacy(FakeRoutes):
    async def set_flags(
        self, updates: Mapping[str, str], *, operator: str, reason: str
    ) -> list[FlagChange]:
        made = await super().set_flags(updates, operator=operator, reason=reason)
        self.values["route.step6"] = "legacy"
        return made


@breaks(
    C,
    H,
    "test_a_step_attempt_keeps_its_first_route",
    "test_concurrent_claims_agree",
)
class LastClaimWins(FakeRoutes):
    async def claim(self, run_id: str, step_id: int, attempt: int, route: Route) -> Route:
        self.claims[run_id, step_id, attempt] = route
        return route


@breaks(C, H, "test_a_step_attempt_keeps_its_first_route")
class ClaimsPerStep(FakeRoutes):
    async def claim(self, run_id: str, step_id: int, attempt: int, route: Route) -> Route:
        return await super().claim(run_id, step_id, 1, route)


@breaks(C, H, "test_a_bad_change_changes_nothing")
class AppliesUntilTheBadOne(FakeRoutes):
    async def set_flags(
        self, updates: Mapping[str, str], *, operator: str, reason: str
    ) -> list[FlagChange]:
        made = []
        for name, value in updates.items():
            made += await super().set_flags({name: value}, operator=operator, reason=reason)
        if not updates:
            check_updates(updates)
        return made


@breaks(C, H, "test_a_value_already_set_writes_no_history")
class RecordsEveryWrite(FakeRoutes):
    async def set_flags(
        self, updates: Mapping[str, str], *, operator: str, reason: str
    ) -> list[FlagChange]:
        made = await super().set_flags(updates, operator=operator, reason=reason)
        if not made:
            name, value = next(iter(updates.items()))
            self.changes.append(FlagChange(name, value, value, operator, reason, self._db.now()))
        return made


@breaks(
    C,
    H,
    "test_the_history_is_newest_first_and_limited",
    "test_routing_steps_changes_each_named_flag_in_order",
)
class OldestFirst(FakeRoutes):
    async def history(self, limit: int) -> list[FlagChange]:
        return self.changes[:limit]


@breaks(C, H, "test_a_change_needs_an_operator_and_a_reason")
class TakesAnyReason(FakeRoutes):
    async def set_flags(
        self, updates: Mapping[str, str], *, operator: str, reason: str
    ) -> list[FlagChange]:
        return await super().set_flags(updates, operator="ana", reason="accepted")


@breaks(C, H, "test_a_change_is_read_back_by_every_process_with_its_history")
class KeepsFlagsInProcess(FakeRoutes):
    def sibling(self) -> FakeRoutes:
        return type(self)(self._db)

"""The routing flags, their history and each step attempt's route, in memory, as
``adapters/postgres/routes.py`` keeps them in PostgreSQL."""

from collections.abc import Mapping

from planstream.domain.routing import (
    DEFAULT_FLAGS,
    FLAG_NAMES,
    FlagChange,
    Flags,
    Route,
    check_operator,
    check_reason,
    check_updates,
)
from tests.fakes.database import FakeDatabase

__all__ = ["FakeRoutes"]


class FakeRoutes:
    """``Routes`` over a ``FakeDatabase`` (its clock stamps the history; claims need a run)."""

    def __init__(self, db: FakeDatabase) -> None:
        self._db = db
        self.values: dict[str, str] = DEFAULT_FLAGS.values()
        self.changes: list[FlagChange] = []
        self.claims: dict[tuple[str, int, int], Route] = {}
        self.reads = 0

    def sibling(self) -> "FakeRoutes":
        """Another process's store: the same tables (what PostgreSQL shares)."""
        other = type(self)(self._db)
        other.values, other.changes, other.claims = self.values, self.changes, self.claims
        return other

    async def flags(self) -> Flags:
        self.reads += 1
        return Flags.from_values(self.values)

    async def set_flags(
        self, updates: Mapping[str, str], *, operator: str, reason: str
    ) -> list[FlagChange]:
        wanted = check_updates(updates)
        who, why = check_operator(operator), check_reason(reason)
        made = []
        for name in (n for n in FLAG_NAMES if n in wanted):
            old, new = self.values[name], wanted[name]
            if old != new:
                self.values[name] = new
                made.append(FlagChange(name, old, new, who, why, self._db.now()))
        self.changes.extend(made)
        return made

    async def history(self, limit: int) -> list[FlagChange]:
        return list(reversed(self.changes))[:limit]

    async def claim(self, run_id: str, step_id: int, attempt: int, route: Route) -> Route:
        self._db.require_run(run_id)
        return self.claims.setdefault((run_id, step_id, attempt), route)

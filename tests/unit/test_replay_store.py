"""The replay store's guards without a database: only a replay id (``rpl_`` + 32 lowercase hex)
names a schema, so nothing else can reach the DDL; and stored decisions read back as the diff's
sides."""

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from planstream.adapters.postgres.replay_pool import current_replay, replay_scope, search_path
from planstream.adapters.postgres.replay_records import (
    RecordedDecision,
    SelectedAttempt,
    failures_of,
    score_of,
)
from planstream.adapters.postgres.replay_schema import (
    NotAReplayId,
    build_schema,
    literal,
    lock_keys,
    quoted,
    schema_name,
)
from planstream.adapters.postgres.replays import ReplayStore
from planstream.domain.errors import PermanentError

HEX = "0123456789abcdef" * 2
GOOD = f"rpl_{HEX}"

NOT_REPLAY_IDS: list[Any] = [
    "",
    "rpl_",
    f"rpl_{HEX[:-1]}",  # 31 digits
    f"rpl_{HEX}0",  # 33 digits
    f"rpl_{HEX.upper()}",
    f"run_{HEX}",
    f"{GOOD}\n",
    f" {GOOD}",
    f'{GOOD}"; DROP SCHEMA public CASCADE; --',
    f"rpl_{HEX[:-1]}'",
    f"rpl_{HEX[:-1]}\u0660",  # an Arabic-Indic zero: a digit, not hex
    None,
    42,
]


def test_a_replay_id_names_its_schema() -> None:
    assert schema_name(GOOD) == f"replay_{HEX}"
    assert search_path(GOOD) == f'"replay_{HEX}", public'


@pytest.mark.parametrize("value", NOT_REPLAY_IDS)
def test_anything_else_is_refused_before_it_names_a_schema(value: Any) -> None:
    with pytest.raises(NotAReplayId):
        schema_name(value)
    with pytest.raises(NotAReplayId):
        lock_keys(value)
    with pytest.raises(NotAReplayId):
        search_path(value)
    assert issubclass(NotAReplayId, PermanentError)  # an event carrying one is dead-lettered


@pytest.mark.parametrize("value", NOT_REPLAY_IDS)
def test_a_replay_scope_refuses_it_and_leaves_no_replay_set(value: Any) -> None:
    with pytest.raises(NotAReplayId), replay_scope(value):
        pass
    assert current_replay.get() is None


def test_a_replay_scope_sets_and_restores_the_replay() -> None:
    with replay_scope(GOOD):
        assert current_replay.get() == GOOD
    assert current_replay.get() is None


def _store_calls(replay_id: Any) -> list[Callable[[ReplayStore], Awaitable[object]]]:
    """Every store method that names a replay."""
    now = datetime.now(UTC)
    return [
        lambda s: s.create(replay_id, "me", "frozen", {}, {}, None, [_attempt(now)]),
        lambda s: s.attempts(replay_id),
        lambda s: s.progress(replay_id),
        lambda s: s.status(replay_id),
        lambda s: s.mark_attempt(replay_id, f"run_{HEX}", 0, 1, "decided"),
        lambda s: s.add_cost(replay_id, 0.1),
        lambda s: s.reserve(replay_id, 0.1),
        lambda s: s.spent(replay_id),
        lambda s: s.cancel(replay_id),
        lambda s: s.fail(replay_id, "why"),
        lambda s: s.purge(replay_id, force=True),
        lambda s: s.originals(replay_id),
        lambda s: s.replayed(replay_id),
    ]


def _attempt(now: datetime) -> SelectedAttempt:
    return SelectedAttempt(f"run_{HEX}", 0, 1, "evt", "proceed", None, None, None, (), 0, None, now)


@pytest.mark.parametrize("value", [f'{GOOD}"; DROP SCHEMA public CASCADE; --', f"run_{HEX}"])
@pytest.mark.parametrize("call", range(13))
def test_the_store_refuses_it_before_any_statement(value: str, call: int) -> None:
    """The store's pool is None here: a method that reached the database would fail with an
    AttributeError, not with the refusal."""
    store = ReplayStore(None)
    with pytest.raises(NotAReplayId):
        asyncio.run(_store_calls(value)[call](store))  # type: ignore[arg-type]


def test_the_schema_builder_refuses_it_before_any_statement() -> None:
    with pytest.raises(NotAReplayId):
        asyncio.run(build_schema(None, f"{GOOD}; DROP TABLE uploads", [f"run_{HEX}"]))


def test_an_attempt_ends_only_as_decided_failed_or_cancelled() -> None:
    with pytest.raises(ValueError, match="not 'pending'"):
        asyncio.run(ReplayStore(None).mark_attempt(GOOD, f"run_{HEX}", 0, 1, "pending"))  # type: ignore[arg-type]


def test_quoting() -> None:
    assert quoted('a"b') == '"a""b"'
    assert literal("it's") == "'it''s'"


def test_lock_keys_fit_postgres_int4_and_differ_by_replay() -> None:
    space, key = lock_keys(GOOD)
    other = lock_keys("rpl_" + "f" * 32)
    assert 0 <= space < 2**31 and 0 <= key < 2**31 and 0 <= other[1] < 2**31
    assert other[0] == space and other[1] != key


_FAILURE = {"rule": "TOO_FEW_SPACES", "severity": "high", "detail": "2 spaces, need 3"}


@pytest.mark.parametrize(
    ("rule_checks", "expected"),
    [
        ({"failure_count": 30, "failures": [_FAILURE]}, (1, 30)),
        ({"failures": [_FAILURE]}, (1, 1)),
        ([_FAILURE, _FAILURE], (2, 2)),  # the shape a legacy row may have
        ([], (0, 0)),
        ({"failure_count": -1, "failures": []}, (0, 0)),
    ],
)
def test_failures_read_back(rule_checks: Any, expected: tuple[int, int]) -> None:
    failures, count = failures_of("dec", rule_checks)
    assert (len(failures), count) == expected


@pytest.mark.parametrize(
    "rule_checks",
    [{"failures": "nope"}, {"failures": [{"rule": "x"}]}, [{"rule": "LOWER", "severity": "x"}]],
)
def test_unreadable_failures_are_refused(rule_checks: Any) -> None:
    with pytest.raises(PermanentError, match="decision dec"):
        failures_of("dec", rule_checks)


@pytest.mark.parametrize(
    ("audit", "score"),
    [
        ({"consistency_score": 0.7}, 0.7),
        ({"consistency_score": 1}, 1.0),
        ({"consistency_score": None}, None),
        ({"consistency_score": True}, None),
        ({"consistency_score": "0.7"}, None),
        ({"skipped": "no image"}, None),
        (None, None),
    ],
)
def test_scores_read_back(audit: Any, score: float | None) -> None:
    assert score_of(audit) == score


def test_a_stored_decision_is_a_side_of_the_diff() -> None:
    row = {
        "run_id": f"run_{HEX}",
        "step_id": 2,
        "attempt": 1,
        "decision_id": "evt",
        "decision": "block",
        "block_reason": "TOO_FEW_SPACES",
        "rule_checks": {"failure_count": 1, "failures": [_FAILURE]},
        "llm_audit": {"consistency_score": 0.25, "contradictions": []},
        "versions": {"rules": "rules-v1"},
        "created_at": datetime.now(UTC) - timedelta(days=1),
    }
    side = RecordedDecision.of(row).side(cost_usd=0.5)
    assert (side.decision, side.block_reason, side.consistency_score) == (
        "block",
        "TOO_FEW_SPACES",
        0.25,
    )
    assert [f.rule for f in side.failures] == ["TOO_FEW_SPACES"] and side.cost_usd == 0.5
    assert RecordedDecision.of(row).versions == {"rules": "rules-v1"}

"""The pools skip asyncpg's reset query (``create_pool``'s docstring says why): this fails as
soon as code that may run on a pooled connection leaves session state behind that the reset
would have undone — a session-level advisory lock, a LISTEN, a cursor WITH HOLD, a session SET,
a temporary table or a PREPAREd statement."""

import re
from pathlib import Path

import pytest

from tests.stackkit import ROOT

# Each pattern names a statement that outlives its transaction on the connection. SQL keywords
# are matched in capitals, as the code writes its SQL (prose in docstrings is not SQL).
SESSION_STATE = {
    "session advisory lock": re.compile(r"pg_(try_)?advisory_lock(_shared)?\s*\(", re.I),
    "LISTEN": re.compile(r"""(["';]\s*LISTEN\s)|add_listener\("""),
    "cursor WITH HOLD": re.compile(r"\bCURSOR\s+(\w+\s+)*WITH\s+HOLD\b"),
    "session SET": re.compile(r"""["';]\s*SET\s+(?!LOCAL\b)(SESSION\s+)?\w+\s*(=|TO\b)"""),
    "set_config for the session": re.compile(r"set_config\s*\([^)]*,\s*false\s*\)", re.I),
    "temporary table": re.compile(r"\bCREATE\s+(TEMP|TEMPORARY)\s+TABLE\b"),
    "PREPARE": re.compile(r"""["';]\s*PREPARE\s+\w+\s*(AS|\()"""),
}
# Connections of their own, never a pool's: the local stack's provisioning (its admin
# connection SETs log_min_error_statement so that a role's password stays out of the log).
OWN_CONNECTIONS = {Path("planstream/dev/stack/postgres.py")}
# The replay pool keeps asyncpg's reset (create_pool(keep_session=False)): its acquire sets the
# session's search_path and takes the replay's lock shared, and the reset undoes both.
RESET_POOLS = {Path("planstream/adapters/postgres/replay_pool.py")}


def session_state(text: str) -> list[str]:
    """The kinds of session state ``text`` sets up."""
    return [kind for kind, pattern in SESSION_STATE.items() if pattern.search(text)]


def _sources() -> list[Path]:
    files = [*ROOT.joinpath("planstream").rglob("*.py"), *ROOT.joinpath("agents").rglob("*.py")]
    skipped = OWN_CONNECTIONS | RESET_POOLS
    return [path for path in files if path.relative_to(ROOT) not in skipped]


def test_the_replay_pool_keeps_the_reset_it_relies_on() -> None:
    text = ROOT.joinpath(*next(iter(RESET_POOLS)).parts).read_text(encoding="utf-8")
    assert session_state(text), "the replay pool no longer sets session state: drop it here"
    assert "keep_session=False" in text


def test_no_code_leaves_session_state_on_a_pooled_connection() -> None:
    found = {
        str(path.relative_to(ROOT)): kinds
        for path in _sources()
        if (kinds := session_state(path.read_text(encoding="utf-8")))
    }
    assert found == {}, "restore asyncpg's reset in create_pool, or undo this state: " + str(found)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ('await conn.execute("SELECT pg_advisory_lock(42)")', "session advisory lock"),
        ("fetchval('SELECT pg_try_advisory_lock_shared($1)', key)", "session advisory lock"),
        ('await conn.execute("LISTEN runs")', "LISTEN"),
        ("await conn.add_listener('runs', callback)", "LISTEN"),
        ('"DECLARE c CURSOR WITH HOLD FOR SELECT 1"', "cursor WITH HOLD"),
        ('await conn.execute("SET statement_timeout = 0")', "session SET"),
        ("'SET SESSION search_path TO other'", "session SET"),
        ("\"SELECT set_config('search_path', 'x', false)\"", "set_config for the session"),
        ('"CREATE TEMP TABLE staged (id int)"', "temporary table"),
        ('"PREPARE fetch_run AS SELECT 1"', "PREPARE"),
    ],
)
def test_the_check_finds_each_kind_of_session_state(text: str, kind: str) -> None:
    assert session_state(text) == [kind]


@pytest.mark.parametrize(
    "text",
    [
        '"SELECT pg_advisory_xact_lock($1, hashtext($2))"',
        '"SET LOCAL statement_timeout = 1000"',
        '"UPDATE pipeline_jobs SET status = $2 WHERE job_id = $1"',
        '" ON CONFLICT (call_id) DO UPDATE SET outcome = EXCLUDED.outcome"',
        "\"SELECT set_config('planstream.run', $1, true)\"",
    ],
)
def test_the_check_leaves_transaction_scoped_state_alone(text: str) -> None:
    assert session_state(text) == []

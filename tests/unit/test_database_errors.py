"""Which database errors are the moment's (waited out) and which the record's (dead-lettered):
one table, read from ``planstream.adapters.postgres.db`` by every consumer."""

import socket

import asyncpg
import pytest
from asyncpg import exceptions as pg

from planstream.adapters.postgres.db import DATA_ERRORS, OUTAGE_ERRORS

OUTAGES = [
    ConnectionRefusedError(111, "Connection refused"),
    ConnectionResetError(104, "Connection reset by peer"),
    BrokenPipeError(32, "Broken pipe"),
    TimeoutError(),
    socket.gaierror(-2, "Name or service not known"),
    pg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    pg.ConnectionFailureError("could not connect"),
    pg.AdminShutdownError("terminating connection due to administrator command"),
    pg.CannotConnectNowError("the database system is starting up"),
    pg.CrashShutdownError("terminating connection because of crash of another server process"),
    pg.QueryCanceledError("canceling statement due to statement timeout"),
    pg.TooManyConnectionsError("sorry, too many clients already"),
    pg.DeadlockDetectedError("deadlock detected"),
    pg.SerializationError("could not serialize access due to concurrent update"),
    # asyncio's error when every address of the database's name refused the connection.
    OSError("Multiple exceptions: [Errno 111] Connect call failed ('10.0.0.1', 5432), ..."),
    FileNotFoundError(2, "No such file or directory"),  # its Unix socket is not there: down
    asyncpg.InterfaceError("connection is closed"),  # a pooled connection the outage cut
]

DATA = [
    pg.CharacterNotInRepertoireError('invalid byte sequence for encoding "UTF8": 0x00'),
    pg.UntranslatableCharacterError("unsupported Unicode escape sequence"),
    pg.InvalidTextRepresentationError("invalid input syntax for type json"),
    pg.NumericValueOutOfRangeError("smallint out of range"),
    pg.DataError("invalid input for query argument $13: datetime(...) (date value out of range)"),
    pg.ForeignKeyViolationError("violates foreign key constraint"),
    pg.UniqueViolationError("duplicate key value violates unique constraint"),
    pg.NotNullViolationError("null value in column"),
    pg.CheckViolationError("new row violates check constraint"),
    pg.ProgramLimitExceededError("index row size exceeds btree version 4 maximum"),
]

NEITHER = [  # a bug or a broken deployment: neither waited out nor blamed on one record
    pg.UndefinedTableError('relation "pipeline_decisions" does not exist'),
    pg.InsufficientPrivilegeError("permission denied for table pipeline_decisions"),
    pg.PostgresSyntaxError("syntax error"),
    ValueError("a bug"),
]


@pytest.mark.parametrize("error", OUTAGES, ids=lambda e: type(e).__name__)
def test_outages_are_waited_out(error: BaseException) -> None:
    assert isinstance(error, OUTAGE_ERRORS)
    assert not isinstance(error, DATA_ERRORS)


@pytest.mark.parametrize("error", DATA, ids=lambda e: type(e).__name__)
def test_data_errors_are_the_records(error: BaseException) -> None:
    assert isinstance(error, DATA_ERRORS)
    assert not isinstance(error, OUTAGE_ERRORS)


@pytest.mark.parametrize("error", NEITHER, ids=lambda e: type(e).__name__)
def test_other_errors_are_neither(error: BaseException) -> None:
    assert not isinstance(error, OUTAGE_ERRORS)
    assert not isinstance(error, DATA_ERRORS)


def test_no_class_is_both() -> None:
    both = [kind for kind in OUTAGE_ERRORS if issubclass(kind, DATA_ERRORS)]
    both += [kind for kind in DATA_ERRORS if issubclass(kind, OUTAGE_ERRORS)]
    assert both == []

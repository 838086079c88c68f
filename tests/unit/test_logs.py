"""Structured logs: one JSON object per line with the process's identity and the bound and
``extra=`` fields, text for a terminal, no secret in either, and library chatter held back."""

import io
import json
import logging
import sys
from collections.abc import Iterator

import pytest

from planstream.adapters import logs
from planstream.settings import Settings

SETTINGS = Settings(
    model_api_key="sk-canary-0123456789-model",
    s3_secret_access_key="aws-canary-abcdef-secret",
    postgres_password="pg-canary-4567-password",
)
REDACT = logs.Redactor.of(SETTINGS)


@pytest.fixture
def root() -> Iterator[logging.Logger]:
    """The root logger, its handlers and levels restored after the test."""
    logger = logging.getLogger()
    handlers, level = list(logger.handlers), logger.level
    own = {name: logging.getLogger(name).level for name in logs.OWN_LOGGERS}
    yield logger
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    for handler in handlers:
        logger.addHandler(handler)
    logger.setLevel(level)
    for name, saved in own.items():
        logging.getLogger(name).setLevel(saved)
    logging.captureWarnings(False)


def _record(msg: str, *args: object, exc: bool = False, **extra: object) -> logging.LogRecord:
    record = logging.makeLogRecord(
        {"name": "planstream.test", "levelno": logging.INFO, "levelname": "INFO", "msg": msg}
    )
    record.args = args or None
    if exc:
        try:
            raise RuntimeError("it broke\n2026-01-01 INFO forged")
        except RuntimeError:
            record.exc_info = sys.exc_info()
    record.__dict__.update(extra)
    return record


def _json(record: logging.LogRecord) -> dict[str, object]:
    line = logs.JsonFormatter("image_io", "host-1", REDACT, 16_000).format(record)
    assert "\n" not in line and "\r" not in line
    parsed: dict[str, object] = json.loads(line)
    return parsed


def test_a_json_line_holds_identity_message_and_fields() -> None:
    line = _json(_record("received %s", "StepRequested", job_id="job_1", epoch=3))
    assert list(line)[:6] == ["ts", "level", "logger", "msg", "service", "instance_id"]
    assert line["msg"] == "received StepRequested"
    assert (line["level"], line["logger"]) == ("INFO", "planstream.test")
    assert (line["service"], line["instance_id"]) == ("image_io", "host-1")
    assert (line["job_id"], line["epoch"]) == ("job_1", 3)
    assert str(line["ts"]).endswith("+00:00")


def test_bound_fields_reach_every_line_inside_and_extra_wins() -> None:
    with logs.bound(run_id="run_a", step_id=2, attempt=None):
        with logs.bound(topic="t", partition=1, offset=7):
            inner = _json(_record("inside", step_id=3))
        middle = _json(_record("middle"))
    outside = _json(_record("outside"))
    assert {k: inner[k] for k in ("run_id", "step_id", "topic", "partition", "offset")} == {
        "run_id": "run_a",
        "step_id": 3,
        "topic": "t",
        "partition": 1,
        "offset": 7,
    }
    assert "attempt" not in inner  # None is not bound
    assert middle["run_id"] == "run_a" and "topic" not in middle
    assert "run_id" not in outside


def test_an_extra_named_like_an_identity_field_does_not_replace_it() -> None:
    line = _json(_record("re-drove", service="image_io_job", ts="x", level="y"))
    assert (line["service"], line["level"]) == ("image_io", "INFO")
    assert (line["extra.service"], line["extra.ts"], line["extra.level"]) == (
        "image_io_job",
        "x",
        "y",
    )


@pytest.mark.parametrize(
    ("text", "kept", "gone"),
    [
        (
            "GET http://s3/b/k?X-Amz-Algorithm=A&X-Amz-Credential=AK%2F1&X-Amz-Signature=f00d",
            "X-Amz-Algorithm=A",
            "f00d",
        ),
        ("https://h/x?token=abc123&page=2", "page=2", "abc123"),
        ("key sk-proj-AbCdEf0123456789", "key ", "AbCdEf0123456789"),
        ("postgresql://planstream:hunter2@db:5432/x", "planstream:", "hunter2"),
        ("Authorization: Bearer eyJhbGciOi.x.y", "Authorization", "eyJhbGciOi"),
        ("{'password': 'hunter2', 'user': 'u'}", "'user': 'u'", "hunter2"),
        ("password=hunter2 user=u", "user=u", "hunter2"),
        ("the key is aws-canary-abcdef-secret!", "the key is", "aws-canary-abcdef-secret"),
        ("pw pg-canary-4567-password", "pw", "pg-canary-4567-password"),
    ],
)
def test_secrets_are_redacted(text: str, kept: str, gone: str) -> None:
    line = _json(_record("%s", text))
    assert kept in str(line["msg"]) and gone not in str(line["msg"])
    assert "[redacted]" in str(line["msg"])


def test_an_error_message_about_a_password_is_kept() -> None:
    text = 'password authentication failed for user "planstream"'
    assert REDACT(text) == text


def test_secrets_are_redacted_in_fields_and_tracebacks() -> None:
    record = _record("x", exc=True, url="http://h/k?X-Amz-Signature=f00d")
    record.exc_info = None
    record.exc_text = "Traceback\nValueError: sk-canary-0123456789-model"
    line = _json(record)
    assert "f00d" not in str(line["url"]) and "sk-canary" not in str(line["exc"])


def test_a_json_line_escapes_what_could_break_or_forge_a_line() -> None:
    line = logs.JsonFormatter("s", "i", REDACT, 16_000).format(
        _record("a\nb\rc\x1b[31md\u2028e\x85f", exc=True)
    )
    assert line.isascii() and len(line.splitlines()) == 1
    assert json.loads(line)["msg"] == "a\nb\rc\x1b[31md\u2028e\x85f"


def test_a_long_value_is_cut() -> None:
    line = json.loads(logs.JsonFormatter("s", "i", REDACT, 200).format(_record("x" * 5_000)))
    assert len(line["msg"]) < 300 and line["msg"].endswith("(5000 chars)")


def test_a_text_line_escapes_controls_and_indents_the_traceback() -> None:
    text = logs.TextFormatter("cli-dlq", "i", REDACT, 16_000).format(
        _record("one\n2026-01-01 INFO forged \x1b[31m", exc=True, run_id="run_a")
    )
    first, *rest = text.splitlines()
    assert "INFO    planstream.test [cli-dlq] one\\n2026-01-01 INFO forged \\x1b[31m" in first
    assert first.endswith("run_id=run_a")
    assert rest and all(line.startswith("  ") for line in rest)
    assert "\x1b" not in text


def test_install_writes_json_and_holds_library_chatter_back(root: logging.Logger) -> None:
    stream = io.StringIO()
    logs.install(SETTINGS, "sweeper", "json", stream)
    logging.getLogger("planstream.services.sweeper").info("re-drove a job")
    logging.getLogger("aiokafka.consumer").info("Joined group")
    logging.getLogger("faust.worker").info("[^Worker]: Ready")
    logging.getLogger("botocore.endpoint").warning("slow")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(line["logger"], line["msg"]) for line in lines] == [
        ("planstream.services.sweeper", "re-drove a job"),
        ("botocore.endpoint", "slow"),
    ]
    assert root.handlers == [root.handlers[0]] and len(root.handlers) == 1


def test_install_levels_come_from_the_settings(root: logging.Logger) -> None:
    stream = io.StringIO()
    chatty = SETTINGS.with_overrides(log_level="WARNING", log_library_level="DEBUG")
    logs.install(chatty, "x", "text", stream)
    logging.getLogger("planstream.a").info("quiet")
    logging.getLogger("aiokafka").debug("chatter")
    assert "quiet" not in stream.getvalue() and "chatter" in stream.getvalue()


def test_install_replaces_handlers_a_library_added(root: logging.Logger) -> None:
    stray = logging.StreamHandler(io.StringIO())
    root.addHandler(stray)  # as openai's OPENAI_LOG=debug does at import
    logs.install(SETTINGS, "x", "json", io.StringIO())
    assert stray not in root.handlers


def test_an_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="VERBOSE"):
        Settings(log_level="VERBOSE")
    assert Settings(log_level="debug").log_level == "DEBUG"


def test_a_secret_that_is_also_a_name_or_too_short_is_cut_only_by_shape() -> None:
    local = logs.Redactor.of(Settings())  # password "planstream", the user's and database's name
    assert local("planstream-image_io consumes t.planstream.step.requested.v1") == (
        "planstream-image_io consumes t.planstream.step.requested.v1"
    )
    assert local("postgresql://planstream:planstream@h/planstream") == (
        "postgresql://planstream:[redacted]@h/planstream"
    )
    short = logs.Redactor.of(Settings(postgres_password="abc12"))
    assert short("abc12 xabc12") == "abc12 xabc12"
    dsn = Settings(postgres_dsn="postgresql://app:Very-Long-Secret@db:5432/appdb")
    assert logs.Redactor.of(dsn)("app used Very-Long-Secret on appdb") == (
        "app used [redacted] on appdb"
    )


def test_a_kafka_api_key_number_is_no_secret() -> None:
    text = "ApiVersionResponse_v0(error_code=0, api_versions=[(api_key=0, min_version=0)])"
    assert REDACT(text) == text

"""The ingress's edge as pure functions: the strict JSON body, the media type, Host and Origin."""

import json

import pytest

from planstream.adapters.http.edge import (
    BodyRefused,
    allowed_hosts,
    allowed_origins,
    host_name,
    media_type_problem,
    origin_allowed,
    strict_json,
)
from planstream.domain.errors import ConfigurationError
from planstream.settings import Settings


@pytest.mark.parametrize(
    ("raw", "phrase", "field"),
    [
        (b'{"reason": "a", "reason": "b"}', "key 'reason' twice", "reason"),
        (b'{"a": {"b": 1, "b": 2}}', "key 'b' twice", "b"),
        (b'{"a": NaN}', "NaN", None),
        (b'{"a": Infinity}', "Infinity", None),
        (b'{"a": [-Infinity]}', "-Infinity", None),
        (b'{"a": 1e999}', "out of range", None),
        (b'{"a": -1e400}', "out of range", None),
        (b'{"a": ' + b"9" * 5_000 + b"}", "too long", None),
        (b"[" * 5_000 + b"]" * 5_000, "nests too deeply", None),
        (b'{"reason": "\xff"}', "not valid UTF-8 (byte 0xff at offset 12)", None),
        (b'{"reason": "\xed\xa0\x80"}', "not valid UTF-8", None),  # an encoded surrogate
        (b'\xef\xbb\xbf{"a": 1}', "not JSON", None),
        (b'{"a": "x\x00"}', "not JSON: Invalid control character at line 1", None),
        (b'{"a": 1,}', "not JSON", None),
        (b'{"reason": "x\\u0000"}', "reason holds a control character (U+0000)", "reason"),
        (b'{"reason": "\\u009b"}', "reason holds a control character (U+009B)", "reason"),
        (b'{"reason": "\\ud800"}', "reason holds a lone surrogate (U+D800)", "reason"),
        (b'{"reason": "x\\udfff"}', "reason holds a lone surrogate (U+DFFF)", "reason"),
        (b'{"reason": "\\ufdd0"}', "reason holds a non-character (U+FDD0)", "reason"),
        (b'{"reason": "\\uffff"}', "reason holds a non-character (U+FFFF)", "reason"),
        (b'{"list": ["ok", "\\u0007"]}', "list[1] holds a control character", "list[1]"),
        (b'"\\u0000"', "the body holds a control character", None),
        (b'{"a\\u0000": 1}', "a key of the body holds a control character (U+0000)", None),
    ],
)
def test_strict_json_refuses_naming_why(raw: bytes, phrase: str, field: str | None) -> None:
    with pytest.raises(BodyRefused) as refused:
        strict_json(raw)
    assert phrase in str(refused.value)
    assert refused.value.field == field


@pytest.mark.parametrize(
    "value",
    [
        {"action": "retry", "reason": "tab\t newline\n return\r"},
        {"request_text": "Küche 25 m², 日本語, 🏠"},
        {"n": [1, -2.5, 1e308, 0]},
        {"nested": {"a": {"b": None, "c": True}}},
        [],
    ],
)
def test_strict_json_reads_what_plain_json_reads(value: object) -> None:
    assert strict_json(json.dumps(value).encode()) == value


def test_an_escaped_surrogate_pair_is_one_character() -> None:
    assert strict_json(b'{"a": "\\ud83c\\udfe0"}') == {"a": "\U0001f3e0"}


@pytest.mark.parametrize(
    "header",
    [
        "application/json",
        "Application/JSON",
        "application/json; charset=utf-8",
        "application/json;charset=UTF-8",
        'application/json; charset="utf-8"',
        "application/json; charset=utf8;",
    ],
)
def test_json_media_types_pass(header: str) -> None:
    assert media_type_problem(header) is None


@pytest.mark.parametrize(
    ("header", "phrase"),
    [
        (None, "no Content-Type"),
        ("text/plain", "'text/plain', not application/json"),
        ("text/plain; charset=utf-8", "not application/json"),
        ("application/x-www-form-urlencoded", "not application/json"),
        ("multipart/form-data; boundary=x", "not application/json"),
        ("application/json-patch+json", "not application/json"),
        ("application/jsonx", "not application/json"),
        ("application/json; charset=latin-1", "charset=utf-8, not 'charset=latin-1'"),
        ("application/json; boundary=x", "charset=utf-8, not 'boundary=x'"),
        ("", "not application/json"),
    ],
)
def test_other_media_types_are_refused(header: str | None, phrase: str) -> None:
    problem = media_type_problem(header)
    assert problem is not None
    assert phrase in problem


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("127.0.0.1:18000", "127.0.0.1"),
        ("LocalHost", "localhost"),
        ("api.example.com.:443", "api.example.com"),
        ("[::1]:8080", "::1"),
        ("[::1]", "::1"),
        ("evil.example:x", "evil.example:x"),
    ],
)
def test_host_names_leave_out_the_port_and_case(header: str, name: str) -> None:
    assert host_name(header) == name


def test_the_default_hosts_are_the_bind_address_and_loopback() -> None:
    hosts = allowed_hosts(Settings(ingress_host="10.0.0.5"))
    assert hosts == {"10.0.0.5", "localhost", "127.0.0.1"}
    configured = Settings(ingress_allowed_hosts=("API.example.com", "[::1]"))
    assert allowed_hosts(configured) == {"api.example.com", "::1"}


ALLOWED = allowed_origins(["https://app.example.com", "http://localhost:5173"])


@pytest.mark.parametrize(
    ("origin", "host", "allowed"),
    [
        ("http://127.0.0.1:18000", "127.0.0.1:18000", True),  # same origin
        ("HTTP://LOCALHOST:18000", "localhost:18000", True),
        ("https://api.example.com", "api.example.com", True),  # TLS ended by a proxy
        ("https://api.example.com", "api.example.com:443", True),
        ("http://api.example.com", "api.example.com", True),
        ("https://app.example.com", "api.example.com", True),  # on the allow-list
        ("https://app.example.com:443", "api.example.com", True),
        ("http://localhost:5173", "127.0.0.1:18000", True),
        ("http://localhost:18000", "127.0.0.1:18000", False),  # another name: cross-site
        ("http://127.0.0.1:18001", "127.0.0.1:18000", False),  # another port
        ("https://evil.example", "127.0.0.1:18000", False),
        ("http://app.example.com", "api.example.com", False),  # the allowed one is https
        ("https://app.example.com.evil.example", "api.example.com", False),
        ("null", "127.0.0.1:18000", False),
        ("file://", "127.0.0.1:18000", False),
        ("http://127.0.0.1:18000/path", "127.0.0.1:18000", False),
        ("http://user@127.0.0.1:18000", "127.0.0.1:18000", False),
        ("http://127.0.0.1:99999", "127.0.0.1:18000", False),
        ("", "127.0.0.1:18000", False),
    ],
)
def test_origins_are_same_origin_or_allowed(origin: str, host: str, allowed: bool) -> None:
    assert origin_allowed(origin, host, ALLOWED) is allowed


def test_a_configured_origin_that_is_not_one_refuses_to_start() -> None:
    with pytest.raises(ConfigurationError, match="'null' is not an origin"):
        allowed_origins(["null"])

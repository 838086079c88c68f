"""Smuggled data (URLs, data URIs, base64, hex, invisible characters) is refused with a reason."""

import base64
import gzip
import json
import random
import uuid

import pytest

from planstream.domain.events import step_key
from planstream.domain.guards import find_smuggling, smuggling_in
from planstream.domain.ids import new_id

_RNG = random.Random(7)
_BLOB = bytes(_RNG.randrange(256) for _ in range(600))
_PNG = b"\x89PNG\r\n\x1a\n" + _BLOB[:200]
_B64 = base64.b64encode(_BLOB).decode()

SMUGGLED = [
    "data:image/png;base64," + base64.b64encode(_PNG).decode(),
    "DATA:image/jpeg;base64,/9j/4AAQ",
    base64.b64encode(_PNG).decode(),
    base64.b64encode(b"\xff\xd8\xff\xe0" + _BLOB[:60]).decode(),
    base64.b64encode(b"GIF89a" + _BLOB[:60]).decode(),
    base64.b64encode(b"%PDF-1.7" + _BLOB[:60]).decode(),
    base64.b64encode(gzip.compress(_BLOB[:100])).decode(),
    _B64[:40],
    _B64[:200],
    base64.urlsafe_b64encode(_BLOB[:90]).decode(),
    base64.urlsafe_b64encode(_BLOB[:90]).decode().rstrip("="),
    "\n".join(_B64[i : i + 76] for i in range(0, 300, 76)),
    " ".join(_B64[i : i + 4] for i in range(0, 80, 4)),
    "\t".join(_B64[i : i + 8] for i in range(0, 96, 8)),
    _BLOB[:80].hex(),
    _BLOB[:80].hex().upper(),
    "run\u200b_abc",
    "key\ufeff",
    "a\u2063b",
    json.dumps({"img": base64.b64encode(gzip.compress(_PNG)).decode()}),
    "http://127.0.0.1:5432/",
    "https://example.com/plan.png",
    "HTTP://169.254.169.254/latest/meta-data",
    "file:///etc/passwd",
    "gopher://localhost:9092/_",
    "s3://bucket/key",
    "//evil.example/x",
    "ftp://host/file",
    "javascript:alert(1)",
    "jar:file:/x!/y",
    "ldap://localhost",
    "dict://localhost:11211/",
    "prefix iVBORw0KGgoAAAANSUhEUgAA suffix",
    "see /9j/4AAQSkZJRg here",
    "R0lGODlhAQABAIAAAP",
    "UklGRiQAAABXRUJQVlA4",
    "UEsDBBQAAAAIAA",
    "H4sIAAAAAAAAA+3OMQ",
    _B64[:36] + "==",
    "x" + _B64[:64] + "x",
]

LEGITIMATE = [
    new_id("run"),
    new_id("art"),
    str(uuid.UUID(int=_RNG.getrandbits(128))),
    uuid.UUID(int=_RNG.getrandbits(128)).hex,
    "01HZX3Y4M8K7Q2W9E5R6T1Y0UP",
    "run-42:step-0",
    "checkout-2026-11-29-user-12345-step-0-attempt-1",
    "a" * 60,
    "0123456789abcdef" * 4,
    "I want three bedrooms, 2 bathrooms and an open kitchen facing the garden.",
    "Please keep the 4.2m x 3.1m living room; make bedroom 2 a study (approx 9 m2).",
    "Make it Scandinavian: oak floors, white walls, 2 sofas, 1 dining table for 6.",
    "Küche offen, Wohnzimmer 25 m², Bad mit Fenster",
    "",
]


@pytest.mark.parametrize("value", SMUGGLED)
def test_smuggled_values_are_refused_with_a_reason(value: str) -> None:
    reason = find_smuggling(value)
    assert reason is not None and reason.startswith("holds ")


@pytest.mark.parametrize("value", LEGITIMATE)
def test_legitimate_ids_and_text_pass(value: str) -> None:
    assert find_smuggling(value) is None


def test_corpus_is_large_enough() -> None:
    assert len(SMUGGLED) >= 40


def test_smuggling_in_names_the_path() -> None:
    found = smuggling_in({"a": [{"b": "ok"}, {"c": "data:text/plain,hi"}]})
    assert found == ("a[1].c", "holds a URL or data URI")
    assert smuggling_in({"a": ["ok", 1, None]}) is None


@pytest.mark.parametrize("step", range(7))
@pytest.mark.parametrize("attempt", range(1, 11))
def test_every_step_key_is_clean(step: int, attempt: int) -> None:
    assert find_smuggling(step_key(new_id("run"), step, attempt)) is None

"""T28's attack corpus: what an attacker sends the ingress, and the answer each must get.

Every HTTP attack is data (``HttpAttack``: the request, whose token it carries, the statuses it
may get and what a refusal must name), so the fault suite fires the whole corpus under load and
the system tests fire the same builders one by one: forged and expired tokens on every ``/v1``
endpoint (401 naming ``invalid_token``), NUL, C0/C1 controls, lone surrogates and non-characters
in every text field of every body and in a key (422 naming the field), duplicate keys, NaN,
bodies that are not JSON, not UTF-8, too big or a gzip bomb, a foreign Host (421) or Origin
(403), identifiers with a tail, another subject's run and upload (404, as if none), a user
reviewing (403). The raw events a producer could write without the ingress are in
``planstream.dev.chaos.raw_abuse``; the hostile files in ``planstream.dev.chaos.bombs``.
"""

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

from joserfc import jwt
from joserfc.jwk import OctKey

from planstream.adapters.http.tokens import mint
from planstream.dev.chaos.bombs import gzip_bomb
from planstream.settings import Settings

__all__ = [
    "CLOSED",
    "NO_RUN",
    "NO_UPLOAD",
    "STILL_OPEN",
    "UNSAFE_TEXTS",
    "Caller",
    "HttpAttack",
    "Outcome",
    "bad_authorizations",
    "body_attacks",
    "forged_token",
    "owner_attacks",
    "text_attacks",
    "token_attacks",
    "with_raw_value",
]

CLOSED: Final = 0
"""The status of an attack the server answered by closing the connection without a word."""
STILL_OPEN: Final = -1
"""The status of an attack whose connection was still open when the attacker gave up."""
NO_RUN: Final = "run_" + "0" * 32
NO_UPLOAD: Final = "upl_" + "0" * 32

Caller = Literal["user", "operator", "none"]
"""Whose token an attack carries: the load's subject, an operator, or none but its own headers."""

_JSON: Final = {"Content-Type": "application/json"}
_422: Final = frozenset({422})


@dataclass(frozen=True)
class HttpAttack:
    """One request and the answers it may get; ``names`` is what a refusal (>= 400) must name:
    the 422/404 body's ``field``, the 401 challenge's ``error``, or a 429's ``Retry-After``."""

    name: str
    family: str
    method: str
    path: str
    expected: frozenset[int]
    names: str | None = None
    caller: Caller = "user"
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None
    group: str = ""  # attacks whose answers are also counted together (a race, a quota)


@dataclass(frozen=True)
class Outcome:
    """What one attack got: the status and what the refusal named."""

    attack: HttpAttack
    status: int
    named: str | None = None
    subject: str = ""


def _post(
    name: str,
    family: str,
    path: str,
    body: bytes,
    status: int,
    names: str | None,
    caller: Caller = "user",
    headers: Mapping[str, str] = _JSON,
) -> HttpAttack:
    return HttpAttack(name, family, "POST", path, frozenset({status}), names, caller, headers, body)


# --- tokens --------------------------------------------------------------------------------


def forged_token(settings: Settings, **changes: object) -> str:
    """A token like a minted one, with ``changes`` to its claims or its signing key (``secret``)."""
    secret = str(changes.pop("secret", settings.auth_local_key_file.read_text().strip()))
    now = int(time.time())
    claims: dict[str, object] = {
        "iss": settings.auth_issuer,
        "aud": settings.auth_audience,
        "sub": "mallory",
    }
    claims.update({"iat": now, "exp": now + 300})
    claims.update(changes)
    return jwt.encode({"alg": "HS256"}, claims, OctKey.import_key(secret), algorithms=["HS256"])


def bad_authorizations(settings: Settings) -> dict[str, dict[str, str]]:
    """The Authorization headers every ``/v1`` endpoint answers 401: none, another scheme,
    ``alg: none``, a wrong key, a wrong audience, an expired token."""
    unsigned = mint(settings, "mallory").rsplit(".", 1)[0]
    none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + unsigned.split(".")[1] + "."
    return {
        "no token": {},
        "basic scheme": {"Authorization": "Basic bWFsbG9yeTpwdw=="},
        "alg none": {"Authorization": f"Bearer {none}"},
        "wrong key": {"Authorization": f"Bearer {forged_token(settings, secret='w' * 40)}"},
        "wrong audience": {"Authorization": f"Bearer {forged_token(settings, aud='elsewhere')}"},
        "expired": {
            "Authorization": f"Bearer {forged_token(settings, exp=int(time.time()) - 3600)}"
        },
    }


def _endpoints() -> list[tuple[str, str, Mapping[str, str], bytes | None]]:
    """Every ``/v1`` endpoint, as (method, path, headers, body) a valid caller could send."""
    review = json.dumps({"action": "approve", "reason": "ok"}).encode()
    return [
        ("POST", "/v1/uploads", _JSON, json.dumps({"content_type": "image/png"}).encode()),
        ("POST", "/v1/runs", _JSON, json.dumps({"upload_id": NO_UPLOAD}).encode()),
        ("POST", f"/v1/runs/{NO_RUN}/steps/0", {"Idempotency-Key": "k-1"}, None),
        ("GET", f"/v1/runs/{NO_RUN}", {}, None),
        ("POST", f"/v1/runs/{NO_RUN}/review", _JSON, review),
    ]


def token_attacks(settings: Settings) -> list[HttpAttack]:
    """Each bad Authorization on each ``/v1`` endpoint: 401 naming ``invalid_token``."""
    return [
        HttpAttack(
            f"{what}: {method} {path}",
            "token",
            method,
            path,
            frozenset({401}),
            "invalid_token",
            "none",
            {**headers, **auth},
            body,
        )
        for what, auth in bad_authorizations(settings).items()
        for method, path, headers, body in _endpoints()
    ]


# --- text and bodies -----------------------------------------------------------------------

UNSAFE_TEXTS: Final = (
    ("x\\u0000", "a control character (U+0000)"),
    ("bell \\u0007", "a control character (U+0007)"),
    ("\\u001b[2J", "a control character (U+001B)"),
    ("c1 \\u0085", "a control character (U+0085)"),
    ("\\u009f", "a control character (U+009F)"),
    ("\\ud800", "a lone surrogate (U+D800)"),
    ("tail \\udfff", "a lone surrogate (U+DFFF)"),
    ("\\ufdd0", "a non-character (U+FDD0)"),
    ("\\uffff", "a non-character (U+FFFF)"),
    ("\\ud83f\\udffe", "a non-character (U+1FFFE)"),  # a pair that encodes one
)
"""JSON string contents (escapes left for the server to decode) no text may hold, with how the
refusal names the character."""

# Every text field of every body: (path, caller, a valid body, the field).
_TEXT_FIELDS: Final[tuple[tuple[str, Caller, dict[str, str], str], ...]] = (
    ("/v1/uploads", "user", {"content_type": "image/png"}, "content_type"),
    *(
        ("/v1/runs", "user", {"upload_id": NO_UPLOAD, "request_text": "two rooms"}, name)
        for name in ("upload_id", "ratio", "quality_post_step4", "request_text")
    ),
    *(
        (f"/v1/runs/{NO_RUN}/review", "operator", {"action": "retry", "reason": "x"}, name)
        for name in ("action", "reason")
    ),
)


def with_raw_value(body: Mapping[str, str], name: str, raw: str) -> bytes:
    """``body`` as JSON with ``name``'s value replaced by ``raw``, escapes and all."""
    marker = "\u2063marker\u2063"
    text = json.dumps({**body, name: marker}, ensure_ascii=False)
    return text.replace(json.dumps(marker, ensure_ascii=False), f'"{raw}"').encode()


def text_attacks() -> list[HttpAttack]:
    """Each unsafe text in each text field of each body (422 naming the field), and in a key."""
    attacks = [
        _post(f"{name} {named}", "text", path, with_raw_value(body, name, raw), 422, name, caller)
        for path, caller, body, name in _TEXT_FIELDS
        for raw, named in UNSAFE_TEXTS
    ]
    attacks += [
        _post(
            f"key {named}",
            "text",
            "/v1/uploads",
            f'{{"content_type": "image/png", "k{raw}": 1}}'.encode(),
            422,
            None,
        )
        for raw, named in UNSAFE_TEXTS
    ]
    return attacks


_GOOD: Final = b'{"content_type": "image/png"}'
_TYPED: Final = b'{"content_type": "image/png", '
# Bodies the strict reader refuses with 422: (name, body, the key named if any).
_BAD_JSON: Final = (
    ("duplicate key", _TYPED + b'"content_type": "image/png"}', "content_type"),
    ("NaN", _TYPED + b'"size": NaN}', None),
    ("Infinity", _TYPED + b'"size": Infinity}', None),
    ("1e999", _TYPED + b'"size": 1e999}', None),
    ("trailing comma", _TYPED[:-1] + b"}", None),
    ("not UTF-8", _TYPED + b'"note": "\xff"}', None),
)
# A good body with headers the edge refuses: (name, family, headers, status).
_BAD_HEADERS: Final = (
    ("text/plain", "media", {"Content-Type": "text/plain"}, 415),
    ("form", "media", {"Content-Type": "application/x-www-form-urlencoded"}, 415),
    ("wrong Host", "address", {**_JSON, "Host": "evil.example"}, 421),
    ("rebinding Host", "address", {**_JSON, "Host": "127.0.0.2"}, 421),
    ("foreign Origin", "address", {**_JSON, "Origin": "https://evil.example"}, 403),
    ("null Origin", "address", {**_JSON, "Origin": "null"}, 403),
)


def body_attacks(settings: Settings) -> list[HttpAttack]:
    """Bodies that are ambiguous, not JSON, not UTF-8, too big or a gzip bomb; foreign Host and
    Origin headers; identifiers with a tail or a URL; a reviewer named in the body."""
    uploads = "/v1/uploads"
    attacks = [_post(name, "json", uploads, body, 422, key) for name, body, key in _BAD_JSON]
    attacks += [
        _post(name, family, uploads, _GOOD, status, None, headers=headers)
        for name, family, headers, status in _BAD_HEADERS
    ]
    oversized = _GOOD + b" " * (settings.max_request_bytes + 1 - len(_GOOD))
    attacks.append(_post("over the body limit", "size", uploads, oversized, 413, None))
    bomb = gzip_bomb(max(1, settings.max_request_bytes // 1_200))  # inflates far over the limit
    gzipped = {**_JSON, "Content-Encoding": "gzip"}
    attacks.append(_post("gzip bomb", "size", uploads, bomb, 413, None, headers=gzipped))
    named = json.dumps({"action": "approve", "reason": "ok", "reviewer": "olga"}).encode()
    review = f"/v1/runs/{NO_RUN}/review"
    attacks.append(_post("reviewer named", "role", review, named, 422, "reviewer", "operator"))
    url_key = {"Idempotency-Key": "http://evil.example/x"}
    step = f"/v1/runs/{NO_RUN}/steps/0"
    attacks.append(_post("URL key", "text", step, b"", 422, "Idempotency-Key", headers=url_key))
    attacks += [
        HttpAttack(f"run id{tail}", "text", "GET", f"/v1/runs/{NO_RUN}{tail}", _422, "run_id")
        for tail in ("%0A", "%00")
    ]
    return attacks


def owner_attacks(run_id: str, upload_id: str) -> list[HttpAttack]:
    """Another subject's run and upload (404, as for ids that do not exist), and a user who
    reviews (403)."""
    step = f"/v1/runs/{run_id}/steps/0"
    return [
        HttpAttack("another's run", "owner", "GET", f"/v1/runs/{run_id}", frozenset({404})),
        HttpAttack("no such run", "owner", "GET", f"/v1/runs/{NO_RUN}", frozenset({404})),
        HttpAttack(
            "another's step",
            "owner",
            "POST",
            step,
            frozenset({404}),
            headers={"Idempotency-Key": "not-mine-1"},
        ),
        _post(
            "another's upload",
            "owner",
            "/v1/runs",
            json.dumps({"upload_id": upload_id}).encode(),
            404,
            "upload_id",
        ),
        _post(
            "a user reviews",
            "role",
            f"/v1/runs/{run_id}/review",
            json.dumps({"action": "approve", "reason": "mine now"}).encode(),
            403,
            None,
        ),
    ]

"""The console's session, CSRF, headers and form checks, over aiohttp's test client.

The console is mounted on an application holding only the settings and the token verifier, as
the ingress holds them: every case here is decided before a page would read PostgreSQL, storage
or Kafka (those pages run on the real stack in tests/system/test_console_browser.py).
"""

import time
from collections.abc import AsyncIterator
from http.cookies import SimpleCookie

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from joserfc import jwt
from joserfc.jwk import OctKey

from planstream.adapters.http import edge
from planstream.adapters.http.auth import TokenVerifier, key_source
from planstream.adapters.http.console import PATH, create_console
from planstream.adapters.http.console.session import (
    COOKIE,
    content_security_policy,
    csrf_for,
    csrf_holds,
    remaining_life_s,
)
from planstream.adapters.http.resources import SETTINGS, VERIFIER
from planstream.adapters.http.tokens import mint
from planstream.settings import Settings

SECRET = "c" * 40
RUN = "run_" + "a" * 32
HOST = "127.0.0.1"


def _settings(**overrides: object) -> Settings:
    return Settings(**{"auth_hs256_secret": SECRET, **overrides})


def _app(settings: Settings) -> web.Application:
    app = web.Application(
        client_max_size=settings.max_request_bytes, middlewares=[edge.addressed(settings)]
    )
    app[SETTINGS] = settings
    app[VERIFIER] = TokenVerifier(settings, key_source(settings))
    app.add_subapp(PATH, create_console(settings))
    return app


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(_app(_settings()), host=HOST)) as test_client:
        yield test_client


def _operator(ttl_s: int = 600) -> str:
    return mint(_settings(), "ops-ana", roles=("operator",), ttl_s=ttl_s)


def _form(**fields: str) -> dict[str, object]:
    return {"data": fields, "allow_redirects": False}


def _signed_in(client: TestClient, token: str) -> None:
    client.session.cookie_jar.update_cookies({COOKIE: token})


def _set_cookie(answer: object) -> SimpleCookie:
    cookie: SimpleCookie = SimpleCookie()
    for header in answer.headers.getall("Set-Cookie", []):  # type: ignore[attr-defined]
        cookie.load(header)
    return cookie


# --- the session ----------------------------------------------------------------------------


async def test_an_operator_token_opens_a_strict_http_only_session(client: TestClient) -> None:
    answer = await client.post(f"{PATH}/sign-in", **_form(token=_operator()))
    assert answer.status == 303
    assert answer.headers["Location"] == f"{PATH}/blocked"
    morsel = _set_cookie(answer)[COOKIE]
    assert morsel["httponly"] and morsel["samesite"] == "Strict"
    assert morsel["path"] == PATH
    assert not morsel["secure"]  # plain HTTP, and the setting is off
    assert 590 <= int(morsel["max-age"]) <= 600  # the token's remaining life


async def test_the_cookie_is_secure_when_the_setting_says_so() -> None:
    settings = _settings(console_secure_cookie=True)
    async with TestClient(TestServer(_app(settings), host=HOST)) as client:
        answer = await client.post(f"{PATH}/sign-in", **_form(token=_operator()))
        assert _set_cookie(answer)[COOKIE]["secure"]


async def test_a_user_token_is_refused_at_sign_in(client: TestClient) -> None:
    answer = await client.post(f"{PATH}/sign-in", **_form(token=mint(_settings(), "ana")))
    assert answer.status == 403
    assert "for operators" in await answer.text()
    assert COOKIE not in _set_cookie(answer)


@pytest.mark.parametrize(
    ("token", "status", "phrase"),
    [
        ("not-a-token", 401, "The token was refused"),
        (mint(_settings(auth_hs256_secret="w" * 40), "ops", roles=("operator",)), 401, "verify"),
        ("", 422, "Paste an operator token"),
        (
            mint(_settings(), "ops", roles=("operator", *(f"r{i}-" + "x" * 45 for i in range(70)))),
            422,
            "a browser would not keep it",
        ),
    ],
)
async def test_a_bad_token_is_refused_naming_why(
    client: TestClient, token: str, status: int, phrase: str
) -> None:
    answer = await client.post(f"{PATH}/sign-in", **_form(token=token))
    assert answer.status == status
    assert phrase in await answer.text()


async def test_pages_send_a_visitor_without_a_session_to_sign_in(client: TestClient) -> None:
    for path in ("", "/blocked", f"/runs/{RUN}", "/dead-letters", "/flags"):
        answer = await client.get(PATH + path, allow_redirects=False)
        assert answer.status == 303, path
        assert answer.headers["Location"].startswith(f"{PATH}/sign-in"), path


@pytest.mark.parametrize(("token", "why"), [("expired", "expired"), ("garbage", "invalid")])
async def test_a_refused_session_goes_back_to_sign_in_and_is_forgotten(
    client: TestClient, token: str, why: str
) -> None:
    _signed_in(client, _expired_token() if token == "expired" else token)
    answer = await client.get(f"{PATH}/blocked", allow_redirects=False)
    assert answer.status == 303
    assert answer.headers["Location"] == f"{PATH}/sign-in?why={why}"
    assert _set_cookie(answer)[COOKIE]["max-age"] == "0"


def _expired_token() -> str:
    now = int(time.time())
    claims = {
        "iss": "planstream-local",
        "aud": "planstream",
        "sub": "ops",
        "iat": now - 600,
        "exp": now - 300,
        "app_metadata": {"planstream_roles": ["operator"]},
    }
    return jwt.encode({"alg": "HS256"}, claims, OctKey.import_key(SECRET), algorithms=["HS256"])


async def test_a_session_of_a_user_token_is_refused_with_403(client: TestClient) -> None:
    _signed_in(client, mint(_settings(), "ana"))
    answer = await client.get(f"{PATH}/blocked", allow_redirects=False)
    assert answer.status == 403
    assert "for operators" in await answer.text()


async def test_the_sign_in_page_explains_why_by_code_only(client: TestClient) -> None:
    answer = await client.get(f"{PATH}/sign-in?why=expired")
    assert "has expired" in await answer.text()
    answer = await client.get(f"{PATH}/sign-in?why=<script>alert(1)</script>")
    text = await answer.text()
    assert "<script>alert" not in text and "alert(1)" not in text


# --- CSRF -------------------------------------------------------------------------------------


def test_the_csrf_field_is_bound_to_the_session_token() -> None:
    one, other = _operator(), _operator()
    assert csrf_for(one) == csrf_for(one) != csrf_for(other)
    assert csrf_holds(one, csrf_for(one))
    assert not csrf_holds(one, csrf_for(other))
    assert not csrf_holds(one, None)
    assert not csrf_holds(one, "")


@pytest.mark.parametrize(
    ("path", "fields"),
    [
        (f"/runs/{RUN}/review", {"action": "approve", "reason": "looks fine"}),
        ("/dead-letters/redrive", {"letter": "0:1", "reason": "fixed"}),
        ("/sign-out", {}),
    ],
)
@pytest.mark.parametrize("csrf", [None, "0" * 64])
async def test_a_post_without_the_sessions_csrf_field_is_refused(
    client: TestClient, path: str, fields: dict[str, str], csrf: str | None
) -> None:
    _signed_in(client, _operator())
    if csrf is not None:
        fields = {**fields, "csrf": csrf}
    answer = await client.post(PATH + path, **_form(**fields))
    assert answer.status == 403
    assert "CSRF" in await answer.text()


# --- the forms --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "status", "phrase"),
    [
        ({"action": "destroy", "reason": "x"}, 422, "approve, retry or reject"),
        ({"action": "approve", "reason": ""}, 422, "reason"),
        ({"action": "approve", "reason": "x" * 501}, 422, "reason"),
        ({"action": "approve", "reason": "aGVsbG8gd29ybGQgdGhpcyBpcyBiYXNlNjQgZGF0YQ=="}, 422, ""),
        ({"action": "approve", "reason": "bell\x07"}, 422, "control character"),
        ({"action": "approve", "reason": "ok", "reviewer": "someone"}, 422, "no field"),
    ],
)
async def test_a_review_form_is_validated_before_anything_happens(
    client: TestClient, fields: dict[str, str], status: int, phrase: str
) -> None:
    token = _operator()
    _signed_in(client, token)
    answer = await client.post(f"{PATH}/runs/{RUN}/review", **_form(csrf=csrf_for(token), **fields))
    assert answer.status == status
    assert phrase in await answer.text()


async def test_a_review_of_something_not_a_run_id_is_404(client: TestClient) -> None:
    token = _operator()
    _signed_in(client, token)
    answer = await client.post(
        f"{PATH}/runs/run_1/review", **_form(csrf=csrf_for(token), action="approve", reason="x")
    )
    assert answer.status == 404


async def test_a_field_given_twice_is_refused(client: TestClient) -> None:
    token = _operator()
    _signed_in(client, token)
    body = f"csrf={csrf_for(token)}&action=approve&action=reject&reason=x"
    answer = await client.post(
        f"{PATH}/runs/{RUN}/review",
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        allow_redirects=False,
    )
    assert answer.status == 422
    assert "more than once" in await answer.text()


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        ('{"token": "x"}', "application/json", 415),
        ("token=" + "x" * 20_000, "application/x-www-form-urlencoded", 413),
        ("token=%ff%fe", "application/x-www-form-urlencoded", 422),
        ("token=x", "application/x-www-form-urlencoded; charset=latin-1", 415),
    ],
)
async def test_a_body_that_is_no_small_utf8_form_is_refused(
    client: TestClient, body: str, content_type: str, status: int
) -> None:
    answer = await client.post(f"{PATH}/sign-in", data=body, headers={"Content-Type": content_type})
    assert answer.status == status


@pytest.mark.parametrize(
    ("letter", "phrase"), [("", "at least one"), ("1-2", "partition:offset"), ("0:x", "offset")]
)
async def test_a_redrive_names_letters_and_a_reason(
    client: TestClient, letter: str, phrase: str
) -> None:
    token = _operator()
    _signed_in(client, token)
    fields = {"csrf": csrf_for(token), "reason": "fixed the parser"}
    if letter:
        fields["letter"] = letter
    answer = await client.post(f"{PATH}/dead-letters/redrive", **_form(**fields))
    assert answer.status == 422
    assert phrase in await answer.text()


@pytest.mark.parametrize(
    "query", ["reason=<b>", "step=7", "step=-1", "step=01", "reason=a&reason=b"]
)
async def test_a_bad_queue_filter_is_refused(client: TestClient, query: str) -> None:
    _signed_in(client, _operator())
    answer = await client.get(f"{PATH}/blocked?{query}")
    assert answer.status == 422


async def test_only_an_artifact_id_is_looked_up(client: TestClient) -> None:
    _signed_in(client, _operator())
    answer = await client.get(f"{PATH}/runs/{RUN}/artifacts/art_not-an-id", allow_redirects=False)
    assert answer.status == 404


async def test_sign_out_forgets_the_session(client: TestClient) -> None:
    token = _operator()
    _signed_in(client, token)
    answer = await client.post(f"{PATH}/sign-out", **_form(csrf=csrf_for(token)))
    assert answer.status == 303
    assert answer.headers["Location"] == f"{PATH}/sign-in?why=signed-out"
    assert _set_cookie(answer)[COOKIE]["max-age"] == "0"


# --- headers and the edge -----------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["", "/sign-in", "/static/console.css", "/static/sign-in.js", "/no-such-page"]
)
async def test_every_answer_carries_the_consoles_headers(client: TestClient, path: str) -> None:
    answer = await client.get(PATH + path, allow_redirects=False)
    csp = answer.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "'unsafe-inline'" not in csp
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Referrer-Policy"] == "same-origin"
    assert answer.headers["Cache-Control"] == "no-store"


def test_images_may_come_from_the_storage_endpoint_only() -> None:
    csp = content_security_policy(_settings(s3_endpoint="http://127.0.0.1:15000/"))
    assert "img-src 'self' http://127.0.0.1:15000;" in csp
    aws = content_security_policy(_settings(s3_endpoint=None, s3_region="eu-west-1"))
    assert "img-src 'self' https://s3.eu-west-1.amazonaws.com;" in aws


async def test_a_cross_site_form_post_is_refused_by_the_edge(client: TestClient) -> None:
    answer = await client.post(
        f"{PATH}/sign-in",
        data={"token": _operator()},
        headers={"Origin": "https://evil.example"},
        allow_redirects=False,
    )
    assert answer.status == 403
    assert COOKIE not in _set_cookie(answer)


def test_the_remaining_life_is_read_from_exp() -> None:
    token = _operator(ttl_s=120)
    assert 115 <= remaining_life_s(token, time.time()) <= 120
    assert remaining_life_s(token, time.time() + 500) == 0
    assert remaining_life_s("a.b.c", time.time()) == 0

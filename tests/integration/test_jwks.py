"""Keys from an issuer's JWKS URL, served over real HTTP on loopback: RS256 and ES256 tokens,
key rotation, algorithm confusion, and an issuer that goes away."""

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from joserfc import jwt
from joserfc.jwk import ECKey, Key, RSAKey

from planstream.adapters.http.auth import InvalidToken, TokenVerifier, key_source
from planstream.dev.isolation import free_port
from planstream.settings import Settings

pytestmark = pytest.mark.integration


@dataclass
class Issuer:
    """A JWKS endpoint whose keys the test changes; it counts the fetches."""

    keys: list[Key] = field(default_factory=list)
    fetches: int = 0
    down: bool = False
    url: str = ""

    def sign(self, key: Key, algorithm: str, **claims: Any) -> str:
        now = int(time.time())
        payload = {"iss": "https://issuer.test", "aud": "authenticated", "sub": "u-1"}
        payload.update({"iat": now, "exp": now + 300, **claims})
        return jwt.encode({"alg": algorithm, "kid": key.kid}, payload, key, algorithms=[algorithm])


@pytest.fixture
async def issuer() -> AsyncIterator[Issuer]:
    state = Issuer(keys=[RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})])

    async def jwks(request: web.Request) -> web.Response:
        state.fetches += 1
        if state.down:
            return web.Response(status=503)
        return web.json_response({"keys": [k.as_dict(private=False) for k in state.keys]})

    app = web.Application()
    app.router.add_get("/.well-known/jwks.json", jwks)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    state.url = f"http://127.0.0.1:{port}/.well-known/jwks.json"
    yield state
    await runner.cleanup()


@pytest.fixture
async def verifier(issuer: Issuer) -> AsyncIterator[TokenVerifier]:
    settings = Settings(
        auth_jwks_url=issuer.url,
        auth_issuer="https://issuer.test",
        auth_audience="authenticated",
        auth_jwks_refresh_min_s=0.05,
    )
    verifier = TokenVerifier(settings, key_source(settings))
    yield verifier
    await verifier.close()


async def test_rs256_and_es256_tokens_of_the_key_set_verify(issuer, verifier) -> None:
    ec = ECKey.generate_key("P-256", parameters={"kid": "ec-1"})
    issuer.keys.append(ec)
    assert (await verifier.verify(issuer.sign(issuer.keys[0], "RS256"))).subject == "u-1"
    assert (await verifier.verify(issuer.sign(ec, "ES256", sub="u-2"))).subject == "u-2"
    assert issuer.fetches == 1  # the key set is kept


async def test_a_rotated_key_is_fetched_once_and_a_removed_one_stays_cached(
    issuer, verifier
) -> None:
    old = issuer.keys[0]
    await verifier.verify(issuer.sign(old, "RS256"))
    new = RSAKey.generate_key(2048, parameters={"kid": "rsa-2"})
    issuer.keys = [new]
    time.sleep(0.1)  # past auth_jwks_refresh_min_s
    assert (await verifier.verify(issuer.sign(new, "RS256"))).subject == "u-1"
    assert issuer.fetches == 2
    with pytest.raises(InvalidToken, match="no key with kid 'rsa-1'"):
        await verifier.verify(issuer.sign(old, "RS256"))  # refetched: the old key is gone


async def test_an_unknown_kid_does_not_refetch_more_than_the_minimum_period(issuer) -> None:
    settings = Settings(
        auth_jwks_url=issuer.url,
        auth_issuer="https://issuer.test",
        auth_audience="authenticated",
        auth_jwks_refresh_min_s=60,
    )
    verifier = TokenVerifier(settings, key_source(settings))
    stranger = RSAKey.generate_key(2048, parameters={"kid": "stranger"})
    for _ in range(5):
        with pytest.raises(InvalidToken, match="no key with kid"):
            await verifier.verify(issuer.sign(stranger, "RS256"))
    assert issuer.fetches == 1  # a flood of unknown kids does not flood the issuer
    await verifier.close()


async def test_an_hs256_token_keyed_with_the_public_key_is_refused(issuer, verifier) -> None:
    """Algorithm confusion: HS256 is on the allow-list, but an RSA key never verifies HMAC."""
    rsa = issuer.keys[0]
    header = {"alg": "HS256", "kid": rsa.kid}
    now = int(time.time())
    claims = {"iss": "https://issuer.test", "aud": "authenticated", "sub": "x", "exp": now + 60}

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    public = rsa.as_pem(private=False)
    mac = hmac.new(public, signing_input.encode(), hashlib.sha256).digest()
    with pytest.raises(InvalidToken, match="signature does not verify"):
        await verifier.verify(f"{signing_input}.{b64(mac)}")


async def test_an_issuer_outage_keeps_the_cached_keys(issuer, verifier) -> None:
    token = issuer.sign(issuer.keys[0], "RS256")
    await verifier.verify(token)
    issuer.down = True
    time.sleep(0.1)
    stranger = RSAKey.generate_key(2048, parameters={"kid": "other"})
    with pytest.raises(InvalidToken, match="no key with kid 'other'"):
        await verifier.verify(issuer.sign(stranger, "RS256"))  # tries, fails, keeps the keys
    assert (await verifier.verify(token)).subject == "u-1"


async def test_an_issuer_that_never_answered_refuses_tokens(issuer) -> None:
    issuer.down = True
    settings = Settings(
        auth_jwks_url=issuer.url, auth_issuer="https://issuer.test", auth_audience="authenticated"
    )
    verifier = TokenVerifier(settings, key_source(settings))
    with pytest.raises(InvalidToken, match="key set is unavailable"):
        await verifier.verify(issuer.sign(issuer.keys[0], "RS256"))
    await verifier.close()

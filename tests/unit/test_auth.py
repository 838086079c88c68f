"""Token verification: every way a token can be wrong is refused with its reason named."""

import asyncio
import base64
import hashlib
import hmac
import json
import time
from pathlib import Path

import pytest
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from planstream.adapters.http.auth import InvalidToken, TokenVerifier, key_source
from planstream.adapters.http.tokens import ensure_local_key, mint
from planstream.domain.errors import ConfigurationError
from planstream.domain.principals import Principal
from planstream.settings import Settings

SECRET = "s" * 40


@pytest.fixture
def settings() -> Settings:
    return Settings(auth_hs256_secret=SECRET)


def _verify(settings: Settings, token: str) -> Principal:
    return asyncio.run(TokenVerifier(settings, key_source(settings)).verify(token))


def _claims(**changes: object) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {
        "iss": "planstream-local",
        "aud": "planstream",
        "sub": "alice",
        "iat": now,
        "exp": now + 600,
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _signed(claims: dict[str, object], secret: str = SECRET) -> str:
    return jwt.encode({"alg": "HS256"}, claims, OctKey.import_key(secret), algorithms=["HS256"])


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_a_minted_token_names_its_subject_and_roles(settings: Settings) -> None:
    principal = _verify(settings, mint(settings, "alice", roles=["operator"]))
    assert principal.subject == "alice"
    assert principal.is_operator
    assert not _verify(settings, mint(settings, "bob")).is_operator


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (_signed(_claims(), secret="w" * 40), "signature does not verify"),
        (_signed(_claims(aud="authenticated")), "'aud'"),
        (_signed(_claims(iss="https://elsewhere")), "'iss'"),
        (_signed(_claims(exp=int(time.time()) - 3600)), "expired"),
        (_signed(_claims(exp=None)), "'exp'"),
        (_signed(_claims(sub=None)), "'sub'"),
        (_signed(_claims(sub="alice\nbob")), "subject"),
        (_b64({"alg": "none", "typ": "JWT"}) + "." + _b64(_claims()) + ".", "'none'"),
        (_b64({"alg": "HS256"}) + "." + _b64(_claims()) + ".AAAA", "signature"),
        ("not-a-jwt", "not a compact JWS"),
        ("a.b.c", "not a JWT"),
        ("x" * 10_000, "size"),
    ],
)
def test_a_bad_token_is_refused_naming_why(settings: Settings, token: str, reason: str) -> None:
    with pytest.raises(InvalidToken, match=reason):
        _verify(settings, token)


def test_expiry_has_a_small_leeway(settings: Settings) -> None:
    just_expired = _signed(_claims(exp=int(time.time()) - 5))
    assert _verify(settings, just_expired).subject == "alice"
    with pytest.raises(InvalidToken, match="expired"):
        _verify(settings.with_overrides(auth_leeway_s=0), just_expired)


def test_an_rsa_public_key_is_not_taken_as_an_hmac_secret() -> None:
    """Algorithm confusion: an HS256 token "signed" with the RSA public key is refused."""
    public = RSAKey.generate_key(2048).as_pem(private=False)
    signing_input = f"{_b64({'alg': 'HS256'})}.{_b64(_claims())}"
    mac = hmac.new(public, signing_input.encode(), hashlib.sha256).digest()
    token = f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    settings = Settings(auth_hs256_secret="k" * 40, auth_algorithms=("RS256",))
    with pytest.raises(InvalidToken, match="'HS256' is not accepted"):
        _verify(settings, token)


def test_roles_come_from_the_configured_claim(settings: Settings) -> None:
    token = _signed(_claims(roles=["operator"], app_metadata={"planstream_roles": "operator"}))
    assert not _verify(settings, token).is_operator  # a string is not a list of roles
    assert _verify(settings.with_overrides(auth_roles_claim="roles"), token).is_operator


def test_none_is_never_an_accepted_algorithm() -> None:
    with pytest.raises(ValueError, match="'none'"):
        Settings(auth_algorithms=("none",))


def test_without_any_key_the_ingress_refuses_to_start(tmp_path: Path) -> None:
    settings = Settings(auth_local_key_file=tmp_path / "missing.key")
    with pytest.raises(ConfigurationError, match="PLANSTREAM_AUTH_JWKS_URL"):
        key_source(settings)


def test_the_local_key_is_made_once_and_readable_by_its_owner_only(tmp_path: Path) -> None:
    settings = Settings(auth_local_key_file=tmp_path / "auth" / "hs256.key")
    ensure_local_key(settings)
    first = settings.auth_local_key_file.read_text()
    ensure_local_key(settings)
    assert settings.auth_local_key_file.read_text() == first
    assert settings.auth_local_key_file.stat().st_mode & 0o777 == 0o600
    assert _verify(settings, mint(settings, "carol")).subject == "carol"

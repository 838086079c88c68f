"""Checking an S3 presigned URL (AWS Signature Version 4 in the query string) without S3.

A presigned URL is a bearer credential whose signature covers the method, the path, every
``X-Amz-*`` parameter but the signature and the signed headers. Recomputing it with the secret
key tells whether a URL is one this key signed, unaltered, and when it stops working: the
storage adapter uses that before it reuses a cached URL (a URL signed by a rotated key, for
another object, altered, or past its own expiry is minted again instead of handed to the
model), and the fault suite's S3 gate uses it to refuse what S3 refuses.
"""

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final
from urllib.parse import parse_qsl, quote, unquote, urlsplit

__all__ = ["ALGORITHM", "MAX_EXPIRES_S", "Presigned", "parse", "signature", "signed_until"]

ALGORITHM: Final = "AWS4-HMAC-SHA256"
MAX_EXPIRES_S: Final = 604_800  # S3 refuses a presigned URL valid for longer than 7 days
_DATE: Final = re.compile(r"^\d{8}T\d{6}Z$")
_SIGNATURE: Final = re.compile(r"^[0-9a-f]{64}$")
_REQUIRED: Final = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
)


@dataclass(frozen=True)
class Presigned:
    """The signing parameters of a presigned URL, as its query string states them."""

    query: tuple[tuple[str, str], ...]  # every parameter, decoded, in URL order
    access_key_id: str
    scope: str  # date/region/service/aws4_request
    region: str
    signed_at: datetime
    expires_s: int
    signed_headers: tuple[str, ...]
    signature: str

    @property
    def expires_at(self) -> datetime:
        return self.signed_at + timedelta(seconds=self.expires_s)


def parse(raw_query: str) -> Presigned | None:
    """The SigV4 parameters of a raw (still encoded) query string; None when any is missing,
    repeated or malformed."""
    pairs = tuple(parse_qsl(raw_query, keep_blank_values=True))
    found: dict[str, str] = {}
    for name, value in pairs:
        if name in _REQUIRED:
            if name in found:
                return None
            found[name] = value
    if len(found) != len(_REQUIRED) or found["X-Amz-Algorithm"] != ALGORITHM:
        return None
    date, expires = found["X-Amz-Date"], found["X-Amz-Expires"]
    parts = found["X-Amz-Credential"].split("/")
    if (
        not _DATE.fullmatch(date)
        or not expires.isdigit()
        or not 1 <= int(expires) <= MAX_EXPIRES_S
        or not _SIGNATURE.fullmatch(found["X-Amz-Signature"])
        or len(parts) != 5
        or parts[1] != date[:8]
        or parts[3:] != ["s3", "aws4_request"]
    ):
        return None
    signed_at = datetime.strptime(date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    headers = tuple(found["X-Amz-SignedHeaders"].split(";"))
    return Presigned(
        pairs,
        parts[0],
        "/".join(parts[1:]),
        parts[2],
        signed_at,
        int(expires),
        headers,
        found["X-Amz-Signature"],
    )


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def _encode(text: str) -> str:
    return quote(text, safe="-_.~")


def signature(
    presigned: Presigned,
    method: str,
    raw_path: str,
    headers: Mapping[str, str],
    secret_access_key: str,
) -> str | None:
    """The signature ``secret_access_key`` gives this request (``headers`` by lower-case name);
    None when a signed header is absent."""
    canonical_query = "&".join(
        f"{_encode(name)}={_encode(value)}"
        for name, value in sorted(presigned.query)
        if name != "X-Amz-Signature"
    )
    lines = []
    for name in presigned.signed_headers:
        value = headers.get(name)
        if value is None:
            return None
        lines.append(f"{name}:{' '.join(value.split())}\n")
    canonical = "\n".join(
        (
            method,
            raw_path or "/",
            canonical_query,
            "".join(lines),
            ";".join(presigned.signed_headers),
            "UNSIGNED-PAYLOAD",
        )
    )
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    amz_date = presigned.signed_at.strftime("%Y%m%dT%H%M%SZ")
    to_sign = f"{ALGORITHM}\n{amz_date}\n{presigned.scope}\n{digest}"
    key = ("AWS4" + secret_access_key).encode()
    for part in presigned.scope.split("/"):
        key = _hmac(key, part)
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def signed_until(
    url: str,
    *,
    endpoint: str | None,
    bucket: str,
    key: str,
    access_key_id: str,
    secret_access_key: str,
    region: str,
) -> datetime | None:
    """When ``url`` stops working, if it is a GET of ``bucket``/``key`` (path style) at
    ``endpoint`` (AWS's own when None) that these credentials signed and nobody altered; else
    None."""
    parts = urlsplit(url)
    home = urlsplit(endpoint) if endpoint else parts
    presigned = parse(parts.query)
    if (
        presigned is None
        or (parts.scheme, parts.netloc) != (home.scheme, home.netloc)
        or unquote(parts.path) != f"/{bucket}/{key}"
        or presigned.access_key_id != access_key_id
        or presigned.region != region
        or presigned.signed_headers != ("host",)
    ):
        return None
    expected = signature(presigned, "GET", parts.path, {"host": parts.netloc}, secret_access_key)
    if expected is None or not hmac.compare_digest(expected, presigned.signature):
        return None
    return presigned.expires_at

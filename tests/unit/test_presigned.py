"""Presigned URL checks against botocore's own presigner (signing is local: no S3 is reached):
every URL it signs is recognised with its expiry, and any change of byte, object, key, region,
endpoint or credentials is not."""

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.config import Config

from planstream.adapters.presigned import parse, signature, signed_until

ENDPOINT = "http://127.0.0.1:15999"
CREDENTIALS = {"access_key_id": "chaos-test", "secret_access_key": "aws-canary-secret"}


def _client(secret: str = "aws-canary-secret", endpoint: str = ENDPOINT) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="chaos-test",
        aws_secret_access_key=secret,
        region_name="us-east-1",
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )


def _get(key: str, expires_s: int = 60, **client: str) -> str:
    url: str = _client(**client).generate_presigned_url(
        "get_object", Params={"Bucket": "b", "Key": key}, ExpiresIn=expires_s
    )
    return url


def _until(url: str, key: str, **overrides: str) -> datetime | None:
    arguments = {"endpoint": ENDPOINT, "bucket": "b", "key": key, "region": "us-east-1"}
    return signed_until(url, **{**arguments, **CREDENTIALS, **overrides})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "key", ["runs/run_1/step-0.png", "uploads/a b+c.png", "checked/ü~x/%41.png", "k"]
)
def test_a_url_botocore_signed_is_recognised_with_its_expiry(key: str) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    until = _until(_get(key, 90), key)
    assert until is not None
    assert before + timedelta(seconds=89) <= until <= datetime.now(UTC) + timedelta(seconds=90)


def test_any_change_makes_it_unknown() -> None:
    key = "runs/run_1/step-0.png"
    url = _get(key)
    flipped = url[:-1] + ("0" if url[-1] != "0" else "1")
    other_path = url.replace("step-0.png", "step-1.png")
    longer = url.replace("X-Amz-Expires=60", "X-Amz-Expires=600")
    assert _until(flipped, key) is None  # a signature byte
    assert _until(other_path, key.replace("0", "1")) is None  # the signature covers the path
    assert _until(longer, key) is None  # and the expiry
    assert _until(url, "runs/run_1/step-1.png") is None  # a URL for another object
    assert _until(url, key, region="eu-west-1") is None
    assert _until(url, key, endpoint="http://127.0.0.1:16000") is None
    assert _until(url, key, secret_access_key="rotated") is None  # a rotated key
    assert _until(url, key, access_key_id="someone-else") is None
    assert _until(f"{url}&X-Amz-Expires=600", key) is None  # a repeated parameter
    assert _until(url.split("?")[0], key) is None  # no signature at all


def test_a_signed_put_verifies_with_its_signed_headers() -> None:
    url = _client().generate_presigned_url(
        "put_object", Params={"Bucket": "b", "Key": "up/x", "ContentType": "image/png"}
    )
    parts = urlsplit(url)
    presigned = parse(parts.query)
    assert presigned is not None and presigned.signed_headers == ("content-type", "host")
    headers = {"host": parts.netloc, "content-type": "image/png"}
    secret = CREDENTIALS["secret_access_key"]
    assert signature(presigned, "PUT", parts.path, headers, secret) == presigned.signature
    wrong = {**headers, "content-type": "text/html"}
    assert signature(presigned, "PUT", parts.path, wrong, secret) != presigned.signature
    assert signature(presigned, "PUT", parts.path, {"host": parts.netloc}, secret) is None

"""A Python client of the ingress: upload an image straight to storage, start runs, read them."""

import argparse
import asyncio
import getpass
import io
import json
import mimetypes
import os
import uuid
from pathlib import Path
from typing import Any

import aiohttp

from planstream.adapters.http.tokens import mint
from planstream.domain.errors import PermanentError, RetryableError
from planstream.domain.principals import OPERATOR
from planstream.settings import Settings

__all__ = ["IngressError", "PlanstreamClient", "cli_token", "post_upload", "run_command"]

_CONTENT_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
}


class IngressError(PermanentError):
    """The ingress refused a request."""


class PlanstreamClient:
    """Talks to the ingress over HTTP as the subject of ``token``; the image itself goes to the
    presigned URL, not the API."""

    def __init__(self, base_url: str, session: aiohttp.ClientSession, token: str) -> None:
        self._base = base_url.rstrip("/")
        self._session = session
        self._auth = {"Authorization": f"Bearer {token}"}

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        kwargs["headers"] = {**self._auth, **kwargs.get("headers", {})}
        try:
            async with self._session.request(method, self._base + path, **kwargs) as response:
                body = await response.json(content_type=None)
                if response.status >= 500:
                    raise RetryableError(f"ingress answered {response.status}: {body}")
                if response.status >= 400:
                    raise IngressError(f"{method} {path} -> {response.status}: {body['error']}")
                return body
        except aiohttp.ClientConnectionError as exc:
            raise RetryableError(f"ingress unreachable at {self._base}: {exc}") from None

    async def upload(self, image: bytes, content_type: str) -> str:
        """Upload ``image`` through a presigned POST form; returns the upload id."""
        slot = await self._call("POST", "/v1/uploads", json={"content_type": content_type})
        if len(image) > int(slot["max_bytes"]):
            raise IngressError(f"the image has {len(image)} bytes, over {slot['max_bytes']}")
        status = await post_upload(self._session, slot, image, content_type)
        if status >= 300:
            raise IngressError(f"storage refused the upload with {status}")
        upload_id: str = slot["upload_id"]
        return upload_id

    async def create_run(
        self,
        upload_id: str,
        *,
        request_text: str | None = None,
        quality_post_step4: str = "2K",
        ratio: str = "4:3",
    ) -> str:
        body = {"upload_id": upload_id, "ratio": ratio, "quality_post_step4": quality_post_step4}
        if request_text is not None:
            body["request_text"] = request_text
        created = await self._call("POST", "/v1/runs", json=body)
        run_id: str = created["run_id"]
        return run_id

    async def request_step(
        self, run_id: str, step_id: int, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """Ask for a step; the same key again returns the same job and publishes nothing."""
        key = idempotency_key or uuid.uuid4().hex
        accepted: dict[str, Any] = await self._call(
            "POST", f"/v1/runs/{run_id}/steps/{step_id}", headers={"Idempotency-Key": key}
        )
        return accepted

    async def review(self, run_id: str, action: str, reason: str) -> None:
        """Approve, retry or reject a blocked run (an operator's token; it names the reviewer)."""
        body = {"action": action, "reason": reason}
        await self._call("POST", f"/v1/runs/{run_id}/review", json=body)

    async def show_run(self, run_id: str) -> dict[str, Any]:
        view: dict[str, Any] = await self._call("GET", f"/v1/runs/{run_id}")
        return view


async def post_upload(
    session: aiohttp.ClientSession, slot: dict[str, Any], image: bytes, content_type: str
) -> int:
    """POST ``image`` with the upload form ``slot`` (``UploadCreated``): its fields in order,
    then the file; the storage's HTTP status. ``session`` must not carry an Authorization
    header: S3 refuses a request with two authentication mechanisms."""
    form = aiohttp.FormData()
    for name, value in slot["fields"].items():
        form.add_field(name, value)
    # A file object, not bytes: aiohttp streams it instead of copying it into the loop.
    form.add_field("file", io.BytesIO(image), filename="upload", content_type=content_type)
    async with session.post(slot["upload_url"], data=form) as response:
        await response.read()
        return response.status


def _content_type(path: Path) -> str:
    content_type = _CONTENT_TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0]
    if content_type not in ("image/png", "image/jpeg", "image/webp"):
        raise IngressError(f"{path} is not a PNG, JPEG or WebP file")
    return content_type


def cli_token(settings: Settings, *, operator: bool) -> str:
    """``PLANSTREAM_TOKEN`` when set; else a token the local stack's key signs, for the OS user
    (an operator's only for what operators do)."""
    given = os.environ.get("PLANSTREAM_TOKEN", "").strip()
    if given:
        return given
    return mint(settings, getpass.getuser(), roles=(OPERATOR,) if operator else ())


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    base = f"http://{settings.ingress_host}:{settings.ingress_port}"
    timeout = aiohttp.ClientTimeout(total=60)
    reviewing = args.action in ("approve", "retry", "reject")
    async with aiohttp.ClientSession(timeout=timeout) as session:
        client = PlanstreamClient(base, session, cli_token(settings, operator=reviewing))
        if args.action == "create":
            image = args.image.read_bytes()
            upload_id = await client.upload(image, _content_type(args.image))
            run_id = await client.create_run(
                upload_id,
                request_text=args.request,
                quality_post_step4=args.quality,
                ratio=args.ratio,
            )
            await client.request_step(run_id, 0, idempotency_key=f"{run_id}:step-0")
            print(run_id)
        elif args.action in ("approve", "retry", "reject"):
            await client.review(args.run_id, args.action, args.reason)
            print(f"{args.action} of {args.run_id} sent to the Supervisor")
        else:
            print(json.dumps(await client.show_run(args.run_id), indent=2))
    return 0


def run_command(args: argparse.Namespace, settings: Settings) -> int:
    """`planstream runs create|show`."""
    return asyncio.run(_run(args, settings))

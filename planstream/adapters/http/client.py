"""A Python client of the ingress: upload an image straight to storage, start runs, read them."""

import argparse
import asyncio
import json
import mimetypes
import uuid
from pathlib import Path
from typing import Any

import aiohttp

from planstream.domain.errors import PermanentError, RetryableError
from planstream.settings import Settings

__all__ = ["IngressError", "PlanstreamClient", "run_command"]

_CONTENT_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}


class IngressError(PermanentError):
    """The ingress refused a request."""


class PlanstreamClient:
    """Talks to the ingress over HTTP; the image itself goes to the presigned URL, not the API."""

    def __init__(self, base_url: str, session: aiohttp.ClientSession) -> None:
        self._base = base_url.rstrip("/")
        self._session = session

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
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
        """Upload ``image`` through a presigned PUT URL; returns the upload id."""
        slot = await self._call("POST", "/v1/uploads", json={"content_type": content_type})
        async with self._session.put(
            slot["upload_url"], data=image, headers=slot["headers"]
        ) as response:
            if response.status >= 300:
                raise IngressError(f"storage refused the upload with {response.status}")
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

    async def review(self, run_id: str, action: str, reason: str, reviewer: str) -> None:
        """Approve, retry or reject a blocked run."""
        body = {"action": action, "reason": reason, "reviewer": reviewer}
        await self._call("POST", f"/v1/runs/{run_id}/review", json=body)

    async def show_run(self, run_id: str) -> dict[str, Any]:
        view: dict[str, Any] = await self._call("GET", f"/v1/runs/{run_id}")
        return view


def _content_type(path: Path) -> str:
    content_type = _CONTENT_TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0]
    if content_type not in ("image/png", "image/jpeg", "image/webp"):
        raise IngressError(f"{path} is not a PNG, JPEG or WebP file")
    return content_type


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    base = f"http://{settings.ingress_host}:{settings.ingress_port}"
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        client = PlanstreamClient(base, session)
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
            await client.review(args.run_id, args.action, args.reason, args.reviewer)
            print(f"{args.action} of {args.run_id} sent to the Supervisor")
        else:
            print(json.dumps(await client.show_run(args.run_id), indent=2))
    return 0


def run_command(args: argparse.Namespace, settings: Settings) -> int:
    """`planstream runs create|show`."""
    return asyncio.run(_run(args, settings))

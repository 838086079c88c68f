"""``POST /v1/images/edits``: a deterministic render of a known image at the asked size."""

import asyncio
import hashlib
import logging

from aiohttp import web

from planstream.dev.modelserver.completions import image_edit
from planstream.dev.modelserver.errors import bad_request
from planstream.dev.modelserver.quota import IMAGE_INPUT_TOKENS
from planstream.dev.modelserver.renders import PNG_SIGNATURE, RenderRefused, parse_size, render
from planstream.dev.modelserver.state import STATE

__all__ = ["image_edits"]

log = logging.getLogger(__name__)


async def _fields(request: web.Request) -> tuple[bytes, str, str, str]:
    """The upload, the prompt, the size and the model of the multipart form."""
    try:
        form = await request.post()
    except ValueError:
        raise bad_request("the request must be a multipart form") from None
    upload = form.get("image") or form.get("image[]")
    if not isinstance(upload, web.FileField):
        raise bad_request("image is required: one PNG file", param="image")
    prompt, size, count = form.get("prompt"), form.get("size"), form.get("n", "1")
    model = form.get("model")
    if not isinstance(prompt, str) or not prompt.strip():
        raise bad_request("prompt is required", param="prompt")
    if not isinstance(size, str):
        raise bad_request("size is required, as WIDTHxHEIGHT", param="size")
    if count != "1":
        raise bad_request("the scripted server makes one image per call: n must be 1", param="n")
    data = upload.file.read()
    if not data.startswith(PNG_SIGNATURE):
        raise bad_request("image must be a PNG file", param="image")
    return data, prompt, size, model if isinstance(model, str) else ""


async def image_edits(request: web.Request) -> web.Response:
    """Render the uploaded image (a sample or an earlier render) and register the result."""
    state = request.app[STATE]
    data, prompt, size_text, model = await _fields(request)
    charged = len(prompt) // 4 + IMAGE_INPUT_TOKENS
    state.quota.admit(model, charged)
    try:
        size = parse_size(size_text, state.max_image_pixels)
    except RenderRefused as exc:
        raise bad_request(str(exc), param="size") from None
    sha256 = hashlib.sha256(data).hexdigest()
    made_from = await state.registry.lookup(sha256)
    if made_from is None:
        raise bad_request(
            f"unknown image: not one of the scripted samples or their renders (sha256 {sha256})",
            code="unknown_image",
            param="image",
        )
    try:
        png = await asyncio.to_thread(render, data, size, prompt, state.max_image_pixels)
    except RenderRefused as exc:
        raise bad_request(str(exc), param="image") from None
    state.registry.register_render(hashlib.sha256(png).hexdigest(), made_from, size)
    log.info("render of %s at %dx%d", made_from.sample.id, size[0], size[1])
    body = image_edit(png, prompt, size)
    state.quota.settle(model, charged, body["usage"]["total_tokens"])
    return web.json_response(body)

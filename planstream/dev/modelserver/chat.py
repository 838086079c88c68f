"""``POST /v1/chat/completions``: extraction, request comparison and audit, told apart by schema."""

import asyncio
import json
import logging
from typing import Any

from aiohttp import web

from planstream.dev.modelserver.audit import audit
from planstream.dev.modelserver.comparison import mismatches
from planstream.dev.modelserver.completions import chat_completion
from planstream.dev.modelserver.errors import ApiError, bad_request
from planstream.dev.modelserver.messages import ChatRequest, parse_chat_request
from planstream.dev.modelserver.registry import ScriptedImage
from planstream.dev.modelserver.scripts import ErrorReply, Hang, Reply, dump, extraction_reply
from planstream.dev.modelserver.state import STATE, ServerState
from planstream.dev.modelserver.validation import check_answer
from planstream.domain.spaces import SpacesDocument, load_spaces, parse_json

__all__ = ["chat_completions"]

log = logging.getLogger(__name__)


async def _json(request: web.Request) -> object:
    try:
        return parse_json(await request.read())
    except ValueError:
        raise bad_request("the request body is not JSON") from None


def _data(chat: ChatRequest) -> dict[str, Any]:
    """The JSON object the user message of a comparison or an audit carries as its text."""
    try:
        data = parse_json(chat.user_text)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise bad_request(f"the user message of {chat.schema_name} must hold one JSON object")
    return data


def _document(value: object) -> SpacesDocument | None:
    """The Spaces document in a request, or None when there is no valid one."""
    loaded = load_spaces(value) if value is not None else None
    return loaded if isinstance(loaded, SpacesDocument) else None


async def _image(state: ServerState, chat: ChatRequest) -> tuple[str, ScriptedImage]:
    """The hash and the sample of the image the user message points at."""
    if chat.image_url is None:
        raise bad_request(f"the user message of {chat.schema_name} has no image_url part")
    sha256 = await state.fetcher.sha256(chat.image_url)
    image = await state.registry.lookup(sha256)
    if image is None:
        raise bad_request(
            f"unknown image: not one of the scripted samples (sha256 {sha256})",
            code="unknown_image",
        )
    return sha256, image


def _kind(reply: Reply) -> str:
    """What kind of reply this is, for the log (never its content)."""
    if isinstance(reply, ErrorReply):
        return f"HTTP {reply.status}"
    if isinstance(reply, Hang):
        return "hang"
    return f"answer ({reply.finish_reason})"


async def _hang(seconds: float) -> None:
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        log.info("a hanging call was abandoned by its client")
        raise


async def _extraction(state: ServerState, chat: ChatRequest) -> dict[str, Any]:
    """The scenario's reply to this call for the image: a document, an error or a hang."""
    sha256, image = await _image(state, chat)
    call = state.registry.next_call(sha256)
    sample = image.sample
    reply = extraction_reply(sample.scenario, image.truth, call, image.is_source)
    role = "source" if image.is_source else "render"
    log.info(
        "extraction call %d of %s (%s, %s): %s",
        call,
        sample.id,
        role,
        sample.scenario,
        _kind(reply),
    )
    if isinstance(reply, ErrorReply):
        after = {"Retry-After": str(reply.retry_after_s)} if reply.retry_after_s else None
        raise ApiError(reply.status, reply.message, kind=reply.kind, code=reply.code, headers=after)
    if isinstance(reply, Hang):
        await _hang(state.hang_s)
        reply = reply.then
    if reply.schema_valid:
        check_answer(chat.schema, json.loads(reply.content), chat.schema_name)
    return chat_completion(chat, reply.content, reply.finish_reason, f"{sha256}:{call}")


def _comparison(chat: ChatRequest) -> dict[str, Any]:
    """Room counts of the quoted request against the document's."""
    data = _data(chat)
    request_text = data.get("request_text")
    text = request_text if isinstance(request_text, str) else ""
    answer = {"mismatches": mismatches(text, _document(data.get("spaces")))}
    check_answer(chat.schema, answer, chat.schema_name)
    return chat_completion(chat, dump(answer), "stop", chat.user_text)


async def _audit(state: ServerState, chat: ChatRequest) -> dict[str, Any]:
    """The document's rooms against the truth of the image the message points at."""
    data = _data(chat)
    sha256, image = await _image(state, chat)
    answer = audit(image.truth, _document(data.get("spaces")))
    check_answer(chat.schema, answer, chat.schema_name)
    return chat_completion(chat, dump(answer), "stop", f"{sha256}:{chat.user_text}")


async def chat_completions(request: web.Request) -> web.Response:
    """Answer one chat completion the way the schema it asks for is scripted (within the
    quota, if one is set)."""
    state = request.app[STATE]
    chat = parse_chat_request(await _json(request))
    charged = len(await request.read()) // 4 + (chat.max_completion_tokens or 0)
    state.quota.admit(chat.model, charged)
    if state.delay_s > 0:
        await asyncio.sleep(state.delay_s)
    if chat.schema_name == "spaces_v1":
        body = await _extraction(state, chat)
    elif chat.schema_name == "request_comparison_v1":
        body = _comparison(chat)
    else:
        body = await _audit(state, chat)
    state.quota.settle(chat.model, charged, body["usage"]["total_tokens"])
    return web.json_response(body)

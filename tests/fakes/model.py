"""A scripted model client: each call takes the next scripted reply, or fails loudly.

A reply is an answer, an exception to raise (``throttled()``, ``server_error()``,
``timed_out()``, ``refused()`` build them as ``adapters/model.py`` translates OpenAI's), or an
async function of the request (to act while the "model" thinks, e.g. let a lease lapse).
"""

import io
import json
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from PIL import Image

from planstream.ports import ChatAnswer, ImageAnswer, ModelRefused, ModelUnavailable

__all__ = [
    "ChatReply",
    "ChatRequest",
    "FakeModelClient",
    "ImageReply",
    "ImageRequest",
    "chat_answer",
    "refused",
    "server_error",
    "throttled",
    "timed_out",
    "unreachable",
]


@dataclass(frozen=True)
class ChatRequest:
    model: str
    messages: Sequence[Mapping[str, Any]]
    schema_name: str
    schema: dict[str, Any]


@dataclass(frozen=True)
class ImageRequest:
    model: str
    image_png: bytes
    prompt: str
    width: int
    height: int


ChatReply = ChatAnswer | Exception | Callable[[ChatRequest], Awaitable[ChatAnswer]]
ImageReply = ImageAnswer | Exception | Callable[[ImageRequest], Awaitable[ImageAnswer]]


def chat_answer(
    content: object,
    *,
    finish_reason: str = "stop",
    refusal: str | None = None,
    input_tokens: int = 1_200,
    output_tokens: int = 300,
) -> ChatAnswer:
    """An answer whose content is ``content`` (a str as is, anything else as JSON), with the
    raw body an OpenAI-compatible server would send."""
    text = content if isinstance(content, str) else json.dumps(content)
    body = {
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "finish_reason": finish_reason,
                "message": {"role": "assistant", "content": text, "refusal": refusal},
            }
        ],
        "usage": {"prompt_tokens": input_tokens, "completion_tokens": output_tokens},
    }
    return ChatAnswer(
        content=text,
        refusal=refusal,
        finish_reason=finish_reason,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        latency_ms=5,
        raw=json.dumps(body).encode(),
    )


def throttled(retry_after_s: float | None = 0.0) -> ModelUnavailable:
    """A 429 (``retry_after_s`` 0 by default, so a budgeted retry does not sleep)."""
    return ModelUnavailable("the model throttled the call (429)", "throttled", retry_after_s)


def server_error(status: int = 500, retry_after_s: float | None = 0.0) -> ModelUnavailable:
    return ModelUnavailable(f"the model failed with {status}", "failed", retry_after_s)


def timed_out() -> ModelUnavailable:
    return ModelUnavailable("the model did not answer within the timeout", "timeout")


def unreachable() -> ModelUnavailable:
    return ModelUnavailable("the model server is unreachable", "unreachable")


def refused(status: int = 400, message: str = "invalid request") -> ModelRefused:
    return ModelRefused(f"the model refused the call with {status}: {message}")


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "white").save(buffer, "PNG")
    return buffer.getvalue()


class FakeModelClient:
    """``ModelClient`` playing scripted replies in order; every request is kept."""

    def __init__(self) -> None:
        self._chat: deque[ChatReply] = deque()
        self._images: deque[ImageReply] = deque()
        self.chat_requests: list[ChatRequest] = []
        self.image_requests: list[ImageRequest] = []

    async def start(self) -> None:
        """Nothing to open."""

    async def stop(self) -> None:
        """Nothing to close."""

    def script_chat(self, *replies: ChatReply) -> None:
        """Queue the replies to the next chat calls, in order."""
        self._chat.extend(replies)

    def script_image(self, *replies: ImageReply) -> None:
        """Queue the replies to the next image edits; unscripted, an edit answers a blank PNG
        of the requested size."""
        self._images.extend(replies)

    @property
    def unplayed(self) -> int:
        """Scripted chat replies no call has taken yet."""
        return len(self._chat)

    async def chat(
        self,
        *,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        schema_name: str,
        schema: dict[str, Any],
    ) -> ChatAnswer:
        request = ChatRequest(model, messages, schema_name, schema)
        self.chat_requests.append(request)
        if not self._chat:
            raise AssertionError(f"the fake model has no scripted reply for {schema_name}")
        reply = self._chat.popleft()
        if isinstance(reply, Exception):
            raise reply
        if isinstance(reply, ChatAnswer):
            return reply
        return await reply(request)

    async def edit_image(
        self, *, model: str, image_png: bytes, prompt: str, width: int, height: int
    ) -> ImageAnswer:
        request = ImageRequest(model, image_png, prompt, width, height)
        self.image_requests.append(request)
        if not self._images:
            return ImageAnswer(_png(width, height), 1_000, 4_000, 5)
        reply = self._images.popleft()
        if isinstance(reply, Exception):
            raise reply
        if isinstance(reply, ImageAnswer):
            return reply
        return await reply(request)

"""OpenAI's answer bodies: a chat completion and an image edit, with deterministic ids and usage."""

import base64
import hashlib
from typing import Any, Final

from planstream.dev.modelserver.messages import ChatRequest

__all__ = ["CREATED", "FINGERPRINT", "chat_completion", "image_edit"]

CREATED: Final = 1_767_225_600
"""The ``created`` time of every answer (2026-01-01T00:00:00Z): the same request, the same bytes."""
FINGERPRINT: Final = "fp_planstream_scripted"
_CHARS_PER_TOKEN: Final = 4
_IMAGE_OUTPUT_TOKENS_PER_MPX: Final = 4160
"""gpt-image-1 bills about 4,160 output tokens for a high-quality 1024x1024 image."""


def _tokens(chars: int) -> int:
    return max(1, -(-chars // _CHARS_PER_TOKEN))


def chat_completion(
    request: ChatRequest, content: str, finish_reason: str, key: str
) -> dict[str, Any]:
    """A ``chat.completion`` holding ``content``; ``key`` makes its id (same key, same id)."""
    digest = hashlib.sha256(f"{key}\n{request.model}\n{content}".encode()).hexdigest()
    prompt_tokens = _tokens(request.prompt_chars) + request.image_tokens
    completion_tokens = _tokens(len(content))
    if finish_reason == "length" and request.max_completion_tokens is not None:
        completion_tokens = request.max_completion_tokens
    return {
        "id": f"chatcmpl-{digest[:29]}",
        "object": "chat.completion",
        "created": CREATED,
        "model": request.model,
        "system_fingerprint": FINGERPRINT,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": content,
                    "refusal": None,
                    "annotations": [],
                },
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def image_edit(png: bytes, prompt: str, size: tuple[int, int]) -> dict[str, Any]:
    """An ``images/edits`` answer in gpt-image-1's shape, holding one base64 PNG."""
    text_tokens = _tokens(len(prompt))
    image_tokens = 1105
    output_tokens = round(size[0] * size[1] / 1024**2 * _IMAGE_OUTPUT_TOKENS_PER_MPX)
    return {
        "created": CREATED,
        "data": [{"b64_json": base64.b64encode(png).decode("ascii")}],
        "output_format": "png",
        "size": f"{size[0]}x{size[1]}",
        "usage": {
            "input_tokens": text_tokens + image_tokens,
            "input_tokens_details": {"text_tokens": text_tokens, "image_tokens": image_tokens},
            "output_tokens": output_tokens,
            "total_tokens": text_tokens + image_tokens + output_tokens,
        },
    }

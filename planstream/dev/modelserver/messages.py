"""What a chat completion request asks: its schema, its user message's text and image."""

from dataclasses import dataclass
from typing import Any, Final

from planstream.dev.modelserver.errors import bad_request

__all__ = ["SCHEMA_NAMES", "ChatRequest", "parse_chat_request"]

SCHEMA_NAMES: Final = ("spaces_v1", "request_comparison_v1", "decision_audit_v1")
_IMAGE_TOKENS: Final = {"low": 85, "high": 1105, "auto": 1105}
"""Prompt tokens an image costs by its ``detail`` (a 2K image at high detail is 1,105)."""


@dataclass(frozen=True)
class ChatRequest:
    """The parts of ``POST /v1/chat/completions`` the scripted answers depend on."""

    model: str
    schema_name: str
    schema: dict[str, Any]
    user_text: str
    image_url: str | None
    image_tokens: int
    prompt_chars: int
    max_completion_tokens: int | None


def _parts(content: object, where: str) -> list[dict[str, Any]]:
    """A message's content as a list of parts (a plain string is one text part)."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list) or not all(isinstance(p, dict) for p in content):
        raise bad_request(f"{where}.content must be a string or a list of parts", param=where)
    return content


def _schema(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The name and schema of ``response_format``; only the three protocol schemas are served."""
    response_format = body.get("response_format")
    spec = response_format.get("json_schema") if isinstance(response_format, dict) else None
    if not isinstance(response_format, dict) or response_format.get("type") != "json_schema":
        raise bad_request(
            "response_format must be {'type': 'json_schema', ...}: the scripted server only "
            "answers structured outputs",
            param="response_format",
        )
    name = spec.get("name") if isinstance(spec, dict) else None
    schema = spec.get("schema") if isinstance(spec, dict) else None
    if name not in SCHEMA_NAMES or not isinstance(schema, dict):
        raise bad_request(
            f"response_format.json_schema.name must be one of {', '.join(SCHEMA_NAMES)} "
            f"with a schema object; got {str(name)[:60]!r}",
            param="response_format.json_schema.name",
        )
    return str(name), schema


def parse_chat_request(body: object) -> ChatRequest:
    """The request in ``body``, or a 400 ApiError naming what is wrong with it."""
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object")
    model, messages = body.get("model"), body.get("messages")
    if not isinstance(model, str) or not model:
        raise bad_request("model is required", param="model")
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise bad_request("messages must be a list of message objects", param="messages")
    name, schema = _schema(body)
    users = [i for i, m in enumerate(messages) if m.get("role") == "user"]
    if not users:
        raise bad_request("messages hold no user message", param="messages")
    prompt_chars, image_tokens, user_text, image_url = 0, 0, [], None
    for index, message in enumerate(messages):
        for part in _parts(message.get("content"), f"messages[{index}]"):
            if part.get("type") == "text" and isinstance(part.get("text"), str):
                prompt_chars += len(part["text"])
                if index == users[-1]:
                    user_text.append(part["text"])
            elif part.get("type") == "image_url" and isinstance(part.get("image_url"), dict):
                detail = part["image_url"].get("detail", "auto")
                image_tokens += _IMAGE_TOKENS.get(str(detail), _IMAGE_TOKENS["auto"])
                url = part["image_url"].get("url")
                if index == users[-1] and isinstance(url, str):
                    image_url = url
    limit = body.get("max_completion_tokens")
    return ChatRequest(
        model=model,
        schema_name=name,
        schema=schema,
        user_text="\n".join(user_text),
        image_url=image_url,
        image_tokens=image_tokens,
        prompt_chars=prompt_chars,
        max_completion_tokens=limit if isinstance(limit, int) else None,
    )

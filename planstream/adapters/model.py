"""The model, through ``openai.AsyncOpenAI``: structured chat answers and image edits.

The client's own retries are off; ``planstream.services.model_budget`` decides, so that every
call counts toward the step's budget. OpenAI's exceptions are translated here, at the boundary.
Every answer body is capped while it streams, before and during decompression
(``planstream.adapters.body_caps``): ``model_max_response_bytes`` for a chat answer,
``model_max_image_response_bytes`` for an image.
"""

import asyncio
import base64
import email.utils
import json
import re
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, cast

import httpx2
import openai
from openai.types.chat import ChatCompletionMessageParam

from planstream.adapters import tracing
from planstream.adapters.body_caps import BodyCaps, BodyEncodingRefused, BodyTooLarge
from planstream.ports import ChatAnswer, ImageAnswer, ModelRefused, ModelUnavailable
from planstream.settings import Settings

__all__ = ["ModelClient"]


_DEADLINE = "the model did not finish its answer within the timeout"
# Secret-shaped tokens a server may echo back (OpenAI keys, bearer tokens).
_KEY_SHAPED = re.compile(r"(?:sk|pk|rk)-[A-Za-z0-9_-]{6,}|(?i:bearer)\s+[A-Za-z0-9._~+/=-]{8,}")


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    """The wait the server asked for: ``retry-after-ms`` (OpenAI's, precise) or ``Retry-After``
    (whole seconds or an HTTP date)."""
    millis = headers.get("retry-after-ms") if headers is not None else None
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after") if headers is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        moment = email.utils.parsedate_to_datetime(value)
        return max(0.0, (moment - datetime.now(UTC)).total_seconds())


def _translate(exc: openai.OpenAIError) -> Exception:
    """OpenAI's exception as ours; never echoes a request (it may hold a signed URL)."""
    if isinstance(exc, openai.APITimeoutError):
        return ModelUnavailable("the model did not answer within the timeout", "timeout")
    if isinstance(exc, openai.APIConnectionError):
        return ModelUnavailable("the model server is unreachable", "unreachable")
    if isinstance(exc, openai.RateLimitError):
        after = _retry_after(exc.response.headers)
        return ModelUnavailable("the model throttled the call (429)", "throttled", after)
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code >= 500 or exc.status_code in (408, 409):
            after = _retry_after(exc.response.headers)
            return ModelUnavailable(f"the model failed with {exc.status_code}", "failed", after)
        return ModelRefused(f"the model refused the call with {exc.status_code}: {exc.message}")
    return ModelUnavailable(f"the model call failed: {type(exc).__name__}", "failed")


class ModelClient:
    """One AsyncOpenAI client per process, opened by ``start`` and closed by ``stop``."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client: openai.AsyncOpenAI | None = None

    async def start(self) -> None:
        s = self._settings
        caps = BodyCaps(self._cap)
        self._client = openai.AsyncOpenAI(
            base_url=s.model_base_url,
            api_key=s.model_api_key,
            max_retries=0,
            timeout=s.model_timeout_s,
            # A redirect from the model's address is never followed (no SSRF through it).
            http_client=openai.DefaultAsyncHttpxClient(
                follow_redirects=False, event_hooks=caps.event_hooks()
            ),
        )

    def _cap(self, request: httpx2.Request) -> int:
        """The most an answer to ``request`` may hold, decompressed: an image or a chat."""
        if request.url.path.rstrip("/").endswith("/images/edits"):
            return self._settings.model_max_image_response_bytes
        return self._settings.model_max_response_bytes

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    def _scrubbed(self, error: Exception) -> Exception:
        """``error`` with the API key (or anything shaped like one) cut out of its message."""
        text = str(error)
        key = self._settings.model_api_key
        if key and len(key) >= 4:
            text = text.replace(key, "[redacted]")
        text = _KEY_SHAPED.sub("[redacted]", text)
        if isinstance(error, ModelUnavailable):
            return ModelUnavailable(text, error.outcome, error.retry_after_s)
        return type(error)(text)

    @property
    def _api(self) -> openai.AsyncOpenAI:
        assert self._client is not None, "ModelClient.start() was not awaited"
        return self._client

    async def chat(
        self,
        *,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        schema_name: str,
        schema: dict[str, Any],
    ) -> ChatAnswer:
        """A structured answer against ``schema`` (strict); size-capped, never retried here.
        Each call is one span (``planstream.adapters.tracing``)."""
        with tracing.model_span("chat", model, {"planstream.schema": schema_name}) as span:
            answer = await self._chat(model, messages, schema_name, schema)
            tracing.record_usage(
                span, answer.input_tokens, answer.output_tokens, answer.finish_reason
            )
            return answer

    async def _chat(
        self,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        schema_name: str,
        schema: dict[str, Any],
    ) -> ChatAnswer:
        started = time.monotonic()
        try:
            async with asyncio.timeout(self._settings.model_timeout_s):
                response = await self._api.chat.completions.with_raw_response.create(
                    model=model,
                    # The prompts build OpenAI's message shape; the port keeps it a plain mapping.
                    messages=cast(list[ChatCompletionMessageParam], list(messages)),
                    response_format={
                        "type": "json_schema",
                        "json_schema": {"name": schema_name, "strict": True, "schema": schema},
                    },
                    max_completion_tokens=self._settings.model_max_output_tokens,
                )
                raw = response.content  # the whole body, capped, inside the deadline
        except TimeoutError:
            raise ModelUnavailable(_DEADLINE, "timeout") from None
        except BodyTooLarge as exc:  # on the wire or inflated, whatever the status
            latency_ms = int((time.monotonic() - started) * 1000)
            return ChatAnswer(None, None, "oversize", 0, 0, latency_ms, exc.head)
        except BodyEncodingRefused as exc:
            raise ModelRefused(str(exc)) from None
        except openai.OpenAIError as exc:
            raise self._scrubbed(_translate(exc)) from None
        latency_ms = int((time.monotonic() - started) * 1000)
        completion = response.parse()
        choice = completion.choices[0]
        usage = completion.usage
        return ChatAnswer(
            content=choice.message.content,
            refusal=choice.message.refusal,
            finish_reason=choice.finish_reason,
            input_tokens=usage.prompt_tokens if usage else 0,
            output_tokens=usage.completion_tokens if usage else 0,
            latency_ms=latency_ms,
            raw=raw,
        )

    async def edit_image(
        self, *, model: str, image_png: bytes, prompt: str, width: int, height: int
    ) -> ImageAnswer:
        """The model's edit of ``image_png`` at exactly ``width`` x ``height`` (as it claims).
        Each call is one span (``planstream.adapters.tracing``)."""
        size = f"{width}x{height}"
        with tracing.model_span("image_edit", model, {"planstream.size": size}) as span:
            answer = await self._edit_image(model, image_png, prompt, width, height)
            tracing.record_usage(span, answer.input_tokens, answer.output_tokens, None)
            return answer

    async def _edit_image(
        self, model: str, image_png: bytes, prompt: str, width: int, height: int
    ) -> ImageAnswer:
        started = time.monotonic()
        try:
            async with asyncio.timeout(self._settings.model_timeout_s):
                response = await self._api.images.edit(
                    model=model,
                    image=("source.png", image_png, "image/png"),
                    prompt=prompt,
                    size=f"{width}x{height}",
                    n=1,
                )
        except TimeoutError:
            raise ModelUnavailable(_DEADLINE, "timeout") from None
        except (BodyTooLarge, BodyEncodingRefused) as exc:
            raise ModelRefused(f"the image answer was refused: {exc}") from None
        except openai.OpenAIError as exc:
            raise self._scrubbed(_translate(exc)) from None
        data = response.data[0].b64_json if response.data else None
        if not data:
            raise ModelRefused("the image answer holds no base64 image")
        usage = response.usage
        return ImageAnswer(
            png=base64.b64decode(data, validate=True),
            input_tokens=usage.input_tokens if usage else 0,
            output_tokens=usage.output_tokens if usage else 0,
            latency_ms=int((time.monotonic() - started) * 1000),
        )


def dumps(value: object) -> str:
    """Compact JSON for a prompt's data part."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)

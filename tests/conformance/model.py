"""What the model budget and the workers rely on from the model client: an answer with its
content, usage and raw body; every transient failure as ModelUnavailable with its outcome;
a refusal as ModelRefused; an image edit at the size asked for."""

import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import pytest
from PIL import Image

from planstream.domain.errors import PermanentError, RetryableError
from planstream.ports import ModelClient, ModelRefused, ModelUnavailable

__all__ = ["Call", "ModelClientContract", "ModelHarness", "Scenario"]

Scenario = Literal["answer", "throttled", "server_error", "timeout", "unreachable", "refused"]


@dataclass(frozen=True)
class Call:
    """A client and the chat request that plays one scenario on it."""

    client: ModelClient
    model: str
    messages: Sequence[Mapping[str, Any]]
    schema_name: str
    schema: dict[str, Any]

    async def chat(self) -> Any:
        return await self.client.chat(
            model=self.model,
            messages=self.messages,
            schema_name=self.schema_name,
            schema=self.schema,
        )


class ModelHarness(Protocol):
    async def scenario(self, name: Scenario) -> Call:
        """A call whose first try plays ``name``; a second try of the same call is answered."""

    async def image(self) -> tuple[ModelClient, str, bytes]:
        """A client, the image model's name and a PNG it will edit."""


class ModelClientContract:
    """The suite; subclass it with a ``harness`` fixture."""

    async def test_an_answer_carries_content_usage_and_raw_body(
        self, harness: ModelHarness
    ) -> None:
        answer = await (await harness.scenario("answer")).chat()
        assert isinstance(json.loads(answer.content), dict)
        assert (answer.finish_reason, answer.refusal) == ("stop", None)
        assert answer.input_tokens > 0 and answer.output_tokens > 0 and answer.latency_ms >= 0
        body = json.loads(answer.raw)
        assert body["choices"][0]["message"]["content"] == answer.content

    async def test_a_429_is_unavailable_throttled_then_answered(
        self, harness: ModelHarness
    ) -> None:
        call = await harness.scenario("throttled")
        with pytest.raises(ModelUnavailable) as throttled:
            await call.chat()
        assert throttled.value.outcome == "throttled"
        assert throttled.value.retry_after_s is not None and throttled.value.retry_after_s > 0
        assert isinstance(throttled.value, RetryableError)
        assert json.loads((await call.chat()).content)

    async def test_a_server_error_is_unavailable_failed(self, harness: ModelHarness) -> None:
        call = await harness.scenario("server_error")
        with pytest.raises(ModelUnavailable) as failed:
            await call.chat()
        assert failed.value.outcome == "failed"
        assert "500" in str(failed.value)

    async def test_a_hung_call_is_unavailable_timeout(self, harness: ModelHarness) -> None:
        call = await harness.scenario("timeout")
        with pytest.raises(ModelUnavailable) as hung:
            await call.chat()
        assert hung.value.outcome == "timeout"

    async def test_an_unreachable_server_is_unavailable(self, harness: ModelHarness) -> None:
        call = await harness.scenario("unreachable")
        with pytest.raises(ModelUnavailable) as gone:
            await call.chat()
        assert gone.value.outcome == "unreachable"

    async def test_a_refusal_is_permanent(self, harness: ModelHarness) -> None:
        call = await harness.scenario("refused")
        with pytest.raises(ModelRefused) as refused:
            await call.chat()
        assert isinstance(refused.value, PermanentError)
        assert not isinstance(refused.value, RetryableError)

    async def test_an_image_edit_is_a_png_of_the_size_asked(self, harness: ModelHarness) -> None:
        client, model, png = await harness.image()
        answer = await client.edit_image(
            model=model, image_png=png, prompt="Furnish every room.", width=640, height=480
        )
        with Image.open(io.BytesIO(answer.png)) as image:
            assert (image.format, image.size) == ("PNG", (640, 480))
        assert answer.input_tokens >= 0 and answer.output_tokens >= 0

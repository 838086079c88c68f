"""The scripted server's rate limits: within them it answers, beyond them a 429 says when to come
back (``Retry-After``, ``retry-after-ms``), each model apart, and an answer's usage gives back
what it did not use of its charge."""

from collections.abc import AsyncIterator

import openai
import pytest

from planstream.dev.isolation import free_port
from planstream.dev.modelserver import server
from planstream.dev.modelserver.errors import ApiError
from planstream.dev.modelserver.quota import Quota
from planstream.domain.prompts import COMPARISON, comparison_messages
from planstream.settings import Settings


def test_no_limit_set_admits_everything() -> None:
    quota = Quota(rpm=0, tpm=0, burst_s=60.0)
    for _ in range(1_000):
        quota.admit("m", 10**9)
    assert quota.refused == 0


def test_beyond_the_requests_a_429_says_when_the_next_one_is_there() -> None:
    quota = Quota(rpm=60, tpm=0, burst_s=2.0)  # two at once, one a second
    quota.admit("m", 0)
    quota.admit("m", 0)
    quota.admit("other-model", 0)  # each model has its own limit
    with pytest.raises(ApiError) as refused:
        quota.admit("m", 0)
    assert refused.value.status == 429 and refused.value.code == "rate_limit_exceeded"
    assert refused.value.headers["Retry-After"] == "1"
    assert 900 <= int(refused.value.headers["retry-after-ms"]) <= 1_000
    assert "requests per minute" in refused.value.message and quota.refused == 1


def test_unused_tokens_are_given_back() -> None:
    quota = Quota(rpm=0, tpm=600, burst_s=60.0)  # 600 at once, 10 a second
    quota.admit("m", 600)
    with pytest.raises(ApiError) as refused:
        quota.admit("m", 100)
    assert "tokens per minute" in refused.value.message
    quota.settle("m", 600, 100)
    quota.admit("m", 400)


@pytest.fixture(scope="module")
async def limited_url() -> AsyncIterator[str]:
    settings = Settings(model_server_rpm=2, model_server_burst_s=60.0)
    port = free_port()
    runner = await server.start(settings, "127.0.0.1", port)
    yield f"http://127.0.0.1:{port}/v1"
    await runner.cleanup()


async def test_the_server_answers_429_beyond_its_limit(limited_url: str) -> None:
    api = openai.AsyncOpenAI(base_url=limited_url, api_key=Settings().model_api_key, max_retries=0)
    schema = {"name": COMPARISON.schema_name, "strict": True, "schema": COMPARISON.schema}

    async def compare() -> None:
        await api.chat.completions.create(
            model="planstream-scripted-vision",
            messages=comparison_messages("Two bedrooms.", None),
            response_format={"type": "json_schema", "json_schema": schema},  # type: ignore[typeddict-item]
            max_completion_tokens=500,
        )

    try:
        await compare()
        await compare()
        with pytest.raises(openai.RateLimitError) as limited:
            await compare()
    finally:
        await api.close()
    headers = limited.value.response.headers
    assert 25 <= int(headers["retry-after"]) <= 30  # one request every 30 s
    assert limited.value.code == "rate_limit_exceeded"

"""Errors from the model server never carry the API key (or anything shaped like a key) onward."""

import pytest

from planstream.adapters.model import ModelClient
from planstream.ports import ModelRefused, ModelUnavailable
from planstream.settings import Settings

KEY = "sk-canary-0123456789-model"


@pytest.mark.parametrize(
    "error",
    [
        ModelRefused(f"the model refused the call with 401: Incorrect API key provided: {KEY}"),
        ModelUnavailable(f"proxy said: Bearer {KEY}", "failed", 2.0),
        ModelRefused("echo: sk-proj-AbCdEf0123456789 and pk-live-zz99zz99zz"),
    ],
)
def test_a_key_echoed_by_the_server_is_redacted(error: Exception) -> None:
    client = ModelClient(Settings.from_env({}).with_overrides(model_api_key=KEY))
    scrubbed = client._scrubbed(error)
    assert type(scrubbed) is type(error)
    assert "[redacted]" in str(scrubbed)
    assert KEY not in str(scrubbed) and "sk-proj" not in str(scrubbed)
    if isinstance(error, ModelUnavailable):
        assert (scrubbed.outcome, scrubbed.retry_after_s) == ("failed", 2.0)  # type: ignore[attr-defined]

"""The wait a throttled call is told: OpenAI's precise ``retry-after-ms`` first, then
``Retry-After`` in seconds; anything unreadable is not a wait."""

import pytest

from planstream.adapters.model import _retry_after


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after-ms": "1500", "retry-after": "2"}, 1.5),
        ({"retry-after": "2"}, 2.0),
        ({"retry-after-ms": "soon", "retry-after": "3"}, 3.0),
        ({"retry-after-ms": "-40"}, 0.0),
        ({}, None),
        (None, None),
    ],
)
def test_retry_after(headers: dict[str, str] | None, seconds: float | None) -> None:
    assert _retry_after(headers) == seconds

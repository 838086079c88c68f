"""Which acknowledgements FlowSafeConsumer lets count toward the commit."""

from types import SimpleNamespace
from typing import Any, cast

import pytest

from planstream.adapters.faust.consumer import acknowledgeable


def _message(*, tracked: bool, generation_id: int) -> Any:
    return cast(Any, SimpleNamespace(tracked=tracked, generation_id=generation_id))


@pytest.mark.parametrize(
    ("tracked", "generation", "flow_active", "counts"),
    [
        (True, 7, True, True),  # a stream took and handled it
        (True, 6, False, True),  # handled, even if a rebalance began since
        (False, 7, True, True),  # a decode failure: dead-lettered, then acknowledged
        (False, 6, True, False),  # fetched in the last generation and skipped by the stream
        (False, 7, False, False),  # skipped because the flow stopped
    ],
)
def test_only_messages_some_stream_handled_are_acknowledged(
    tracked: bool, generation: int, flow_active: bool, counts: bool
) -> None:
    message = _message(tracked=tracked, generation_id=generation)
    assert acknowledgeable(message, flow_active=flow_active, generation_id=7) is counts

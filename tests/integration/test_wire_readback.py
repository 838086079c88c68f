"""Reads every topic of this session back: every event is small and carries no smuggled data.

Runs after the ingress and Image I/O tests (files are collected in name order), so the topics
hold what the real services published.
"""

import json

from planstream.guards import smuggling_in
from planstream.settings import Settings
from tests.integration.stackkit import read_topic
from topics import CATALOGUE, DEAD_LETTER


async def test_every_event_is_under_50_kb_and_holds_no_base64_or_url(settings: Settings) -> None:
    seen = 0
    for spec in CATALOGUE:
        if spec is DEAD_LETTER:  # holds refused input verbatim, by design
            continue
        for key, value, _ in await read_topic(settings, spec):
            seen += 1
            assert value is not None and len(value) < settings.max_event_bytes, spec.name
            found = smuggling_in(json.loads(value))
            assert found is None, f"{spec.name}: {found}"
            assert key is not None and key.decode() == json.loads(value)["run_id"]
    assert seen > 0, "no events were read: did the ingress and Image I/O tests run first?"

"""Reads every topic of this session back: every event is small and carries no smuggled data.

Runs after the ingress and Image I/O tests (files are collected in name order), so the topics
hold what the real services published, plus the poison the tests injected, which must all have
been refused into the dead-letter topic.
"""

import json

from planstream.domain.guards import smuggling_in
from planstream.settings import Settings
from tests.stackkit import read_topic
from topics import CATALOGUE, DEAD_LETTER


async def test_every_event_is_under_50_kb_and_holds_no_base64_or_url(settings: Settings) -> None:
    refused = {
        (
            h["planstream-source-topic"].decode(),
            int(h["planstream-source-partition"]),
            int(h["planstream-source-offset"]),
        )
        for h in (dict(r.headers) for r in await read_topic(settings, DEAD_LETTER))
    }
    seen = 0
    for spec in CATALOGUE:
        if spec is DEAD_LETTER:  # holds refused input verbatim, by design
            continue
        name = spec.full_name(settings.topic_namespace)
        for record in await read_topic(settings, spec):
            if (name, record.partition, record.offset) in refused:
                continue
            seen += 1
            assert record.value is not None, name
            assert len(record.value) < settings.max_event_bytes, name
            event = json.loads(record.value)
            assert smuggling_in(event) is None, f"{name}: {smuggling_in(event)}"
            assert record.key is not None and record.key.decode() == event["run_id"]
    assert seen > 0, "no events were read: did the ingress and Image I/O tests run first?"

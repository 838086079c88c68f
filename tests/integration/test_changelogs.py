"""A worker's table changelogs exist before it starts (F15): created compacted and
co-partitioned by the entry point, found again without a change, and refused when an existing
one has another partition count."""

import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from planstream.adapters.faust.app import app_id, create_app
from planstream.adapters.kafka import ensure_changelogs
from planstream.domain.errors import ConfigurationError
from planstream.settings import Settings
from tests.stackkit import wait_for


def _own(settings: Settings) -> Settings:
    """This test's own app ids, so its changelogs are its own."""
    return settings.with_overrides(
        app_id_suffix=f"{settings.app_id_suffix}-cl{uuid.uuid4().hex[:8]}"
    )


async def _described(settings: Settings, name: str) -> tuple[int, str] | None:
    """The topic's partition count and cleanup policy, once the broker lists its configs."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        [topic] = await admin.describe_topics([name])
        [configs] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
    finally:
        await admin.close()
    values = {entry[0]: entry[1] for entry in configs.resources[0][4]}
    if "cleanup.policy" not in values:
        return None
    return len(topic["partitions"]), values["cleanup.policy"]


async def test_a_workers_changelogs_are_made_before_it_starts(settings: Settings) -> None:
    own = _own(settings)
    app = create_app(own, "image_io")
    names = app.changelog_topics()
    assert names == [f"{app_id(own, 'image_io')}-dedup-changelog"]

    assert await ensure_changelogs(own, names) == names  # returns once the metadata has it
    described = await wait_for(lambda: _described(own, names[0]), timeout_s=30)
    assert described == (own.topic_partitions, "compact")
    assert await ensure_changelogs(own, names) == []  # there already: nothing to do


async def test_a_changelog_with_another_partition_count_is_refused(settings: Settings) -> None:
    own = _own(settings)
    name = f"{app_id(own, 'supervisor')}-dedup-changelog"
    admin = AIOKafkaAdminClient(bootstrap_servers=own.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, own.topic_partitions + 1, 1)])
    finally:
        await admin.close()

    # At once: the topic may not be listed yet, and is found when ensure creates it again.
    with pytest.raises(ConfigurationError, match="must be co-partitioned"):
        await ensure_changelogs(own, [name])

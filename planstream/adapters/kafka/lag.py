"""Consumer lag: how far each planstream consumer group is behind the end of its topics.

For every group (a Faust worker's app id, the decisions sink's group) the committed offsets are
read with the admin client and set against the partitions' end offsets. Only the catalogue
topics a group has committed on count: those are the ones it consumes (a topic it subscribes to
but never committed on shows once it does). Lag is summed over a topic's partitions.
"""

from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from planstream.adapters.kafka.security import client_options
from planstream.domain.service_names import WORKERS
from planstream.settings import Settings
from topics import CATALOGUE

__all__ = ["ConsumerLag", "consumer_groups"]


def consumer_groups(settings: Settings) -> list[str]:
    """The group id of every planstream process that consumes (all workers but the sweeper)."""
    return [f"planstream-{name}{settings.app_id_suffix}" for name in WORKERS if name != "sweeper"]


class ConsumerLag:
    """Reads the lag of ``groups`` on the catalogue topics; ``start`` and ``stop`` it."""

    def __init__(self, settings: Settings, groups: Sequence[str]) -> None:
        self._groups = tuple(groups)
        self._namespace = settings.topic_namespace
        self._catalogue = {
            spec.full_name(settings.topic_namespace): spec.name for spec in CATALOGUE
        }
        self._admin = AIOKafkaAdminClient(**client_options(settings), request_timeout_ms=15_000)
        self._ends = AIOKafkaConsumer(
            **client_options(settings),
            enable_auto_commit=False,
            request_timeout_ms=15_000,
        )

    async def start(self) -> None:
        await self._admin.start()
        await self._ends.start()

    async def stop(self) -> None:
        await self._ends.stop()
        await self._admin.close()

    async def read(self) -> dict[tuple[str, str], int]:
        """{(group, catalogue topic): messages past the group's committed offsets}."""
        committed: dict[str, dict[TopicPartition, int]] = {}
        for group in self._groups:
            offsets = await self._admin.list_consumer_group_offsets(group)
            committed[group] = {
                tp: meta.offset
                for tp, meta in offsets.items()
                if tp.topic in self._catalogue and meta.offset >= 0
            }
        partitions = sorted({tp for found in committed.values() for tp in found})
        if not partitions:
            return {}
        ends: dict[TopicPartition, int] = await self._ends.end_offsets(partitions)
        lags: dict[tuple[str, str], int] = {}
        for group, found in committed.items():
            for tp, offset in found.items():
                key = (group, self._catalogue[tp.topic])
                lags[key] = lags.get(key, 0) + max(0, ends.get(tp, offset) - offset)
        return lags

"""What the console reads besides PostgreSQL: Spaces documents from storage and dead letters
from their topic. A source that fails leaves its part of the page saying why, not the page."""

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from planstream.adapters.http.console.timeline import Document
from planstream.adapters.kafka.redrive import DeadLetter, read_dead_letters
from planstream.adapters.kafka.security import client_options
from planstream.adapters.storage import Storage
from planstream.domain.errors import PlanstreamError
from planstream.settings import Settings
from topics import DEAD_LETTER

__all__ = ["Letters", "dead_letters_of", "letters_on_topic", "read_documents"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Letters:
    """Dead letters as read from the topic, or why they could not be."""

    letters: tuple[DeadLetter, ...]
    problem: str | None = None


async def _document(storage: Storage, settings: Settings, artifact: Mapping[str, Any]) -> Document:
    try:
        raw = await storage.read(
            artifact["storage_bucket"],
            artifact["storage_path"],
            settings.model_max_response_bytes,
        )
    except PlanstreamError as exc:  # missing, too large, storage unavailable: said, not fatal
        return Document(None, str(exc))
    return Document(raw)


async def read_documents(
    storage: Storage, settings: Settings, view: Mapping[str, Any], wanted: Sequence[str]
) -> dict[str, Document]:
    """The Spaces documents ``wanted`` (artifact ids of the run), read concurrently."""
    artifacts = {a["artifact_id"]: a for a in view["artifacts"]}
    found = [artifacts[i] for i in wanted if i in artifacts]
    read = await asyncio.gather(*(_document(storage, settings, a) for a in found))
    documents = {a["artifact_id"]: document for a, document in zip(found, read, strict=True)}
    for missing in (i for i in wanted if i not in artifacts):
        documents[missing] = Document(None, f"artifact {missing} is not recorded for this run")
    return documents


async def _topic_exists(settings: Settings) -> bool:
    """Whether the dead-letter topic exists (reading a missing one would wait for it)."""
    consumer = AIOKafkaConsumer(**client_options(settings), enable_auto_commit=False)
    await consumer.start()
    try:
        return DEAD_LETTER.full_name(settings.topic_namespace) in await consumer.topics()
    finally:
        await consumer.stop()


async def letters_on_topic(settings: Settings) -> Letters:
    """Every dead letter now on the topic, newest first (as ``planstream dlq list`` reads)."""
    limit = settings.console_dead_letters_timeout_s
    try:
        async with asyncio.timeout(limit):
            if not await _topic_exists(settings):
                return Letters((), "the dead-letter topic does not exist (run topics ensure)")
            letters = await read_dead_letters(settings)
    except TimeoutError:
        log.warning("dead letters not read within %g s", limit)
        return Letters((), f"the dead-letter topic was not read within {limit:g} s")
    except (KafkaError, OSError) as exc:
        log.warning("dead letters unreadable: %s", type(exc).__name__)
        return Letters((), f"the dead-letter topic could not be read ({type(exc).__name__})")
    letters.sort(key=lambda d: (d.dead_lettered_at is not None, d.dead_lettered_at, d.offset))
    return Letters(tuple(reversed(letters)))


async def dead_letters_of(settings: Settings, run_id: str) -> Letters:
    """The run's dead letters, newest first."""
    every = await letters_on_topic(settings)
    return Letters(tuple(d for d in every.letters if d.run_id == run_id), every.problem)

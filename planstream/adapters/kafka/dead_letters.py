"""Dead letters: a refused message, byte for byte, on the dead-letter topic with the error in
its headers, from a Faust worker (``DeadLetters``, ``DeadLetteringTopic``) or a plain process
(``ProducerDeadLetters``)."""

import logging
import traceback
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import faust
from faust.types import AppT, Message

from planstream.adapters.kafka.publisher import acknowledged_producer
from planstream.services import metrics
from planstream.settings import Settings
from topics import DEAD_LETTER

__all__ = [
    "DeadLetteringTopic",
    "DeadLetters",
    "ProducerDeadLetters",
    "Refused",
    "dead_letter_headers",
]

log = logging.getLogger(__name__)


class Refused(Protocol):
    """What dead-lettering needs of a refused message: a Faust Message or an aiokafka record."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes]] | Mapping[str, bytes] | None: ...


def dead_letter_headers(
    message: Refused, error: BaseException, service: str, now: datetime
) -> list[tuple[str, bytes]]:
    """Where a message came from and why it was refused, as Kafka headers."""
    stack = "".join(traceback.format_exception(error))[-4_000:]
    pairs = {
        "error": str(error)[:1_000] or type(error).__name__,
        "error_class": type(error).__name__,
        "error_stack": stack,
        "source_topic": message.topic,
        "source_partition": str(message.partition),
        "source_offset": str(message.offset),
        "service": service,
        "attempts": "1",
        "dead_lettered_at": now.isoformat(),
    }
    given = message.headers or []
    pairs_given = given.items() if isinstance(given, Mapping) else given
    original = [(k, v) for k, v in pairs_given if not k.startswith("planstream-")]
    ours = ((f"planstream-{k.replace('_', '-')}", v.encode()) for k, v in pairs.items())
    return [*original, *ours]


def _logged(message: Refused, error: BaseException) -> None:
    log.warning(
        "dead-lettered a message",
        extra={
            "source_topic": message.topic,
            "source_partition": message.partition,
            "source_offset": message.offset,
            "error": str(error)[:300],
        },
    )


class DeadLetters:
    """Sends a refused message, byte for byte, to the dead-letter topic, the error in headers."""

    def __init__(self, app: AppT, settings: Settings, service: str) -> None:
        self._app = app
        self._topic = DEAD_LETTER.full_name(settings.topic_namespace)
        self._service = service

    async def send(self, message: Message, error: BaseException) -> None:
        headers = dead_letter_headers(message, error, self._service, datetime.now(UTC))
        await self._app.producer.send_and_wait(
            self._topic, message.key, message.value, None, None, headers
        )
        metrics.count_dead_letter(self._service, error)
        _logged(message, error)


class ProducerDeadLetters:
    """DeadLetters for a process that is no Faust worker: the same record and headers, sent
    through its own idempotent producer (started and stopped by the caller)."""

    def __init__(self, settings: Settings, service: str) -> None:
        self._topic = DEAD_LETTER.full_name(settings.topic_namespace)
        self._service = service
        self._producer = acknowledged_producer(settings)

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def send(self, message: Refused, error: BaseException) -> None:
        headers = dead_letter_headers(message, error, self._service, datetime.now(UTC))
        await self._producer.send_and_wait(self._topic, message.value, message.key, headers=headers)
        metrics.count_dead_letter(self._service, error)
        _logged(message, error)


class DeadLetteringTopic(faust.Topic):
    """A topic whose undecodable messages go to the dead-letter topic; the agent carries on."""

    def __init__(self, *args: Any, dead_letters: DeadLetters, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.dead_letters = dead_letters

    def _clone_args(self) -> dict[str, Any]:
        return {**super()._clone_args(), "dead_letters": self.dead_letters}

    async def on_key_decode_error(self, exc: Exception, message: Message) -> None:
        await self.dead_letters.send(message, exc)

    async def on_value_decode_error(self, exc: Exception, message: Message) -> None:
        await self.dead_letters.send(message, exc)

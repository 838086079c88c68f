"""Kafka: topic administration, the event codec, dead letters, the plain producer, the
decisions sink and the dead-letter redrive. The names most callers need are re-exported here."""

from planstream.adapters.kafka.admin import ensure_changelogs, ensure_topics, read_all
from planstream.adapters.kafka.codec import EventCodec
from planstream.adapters.kafka.dead_letters import (
    DeadLetteringTopic,
    DeadLetters,
    ProducerDeadLetters,
    Refused,
    dead_letter_headers,
)
from planstream.adapters.kafka.publisher import EventPublisher

__all__ = [
    "DeadLetteringTopic",
    "DeadLetters",
    "EventCodec",
    "EventPublisher",
    "ProducerDeadLetters",
    "Refused",
    "dead_letter_headers",
    "ensure_changelogs",
    "ensure_topics",
    "read_all",
]

"""The Faust codec of one event model: size-checked JSON both ways, and the replay boundary."""

from typing import Any

from faust.serializers.codecs import Codec
from pydantic import BaseModel

from planstream.domain.errors import EventRejected
from planstream.domain.wire import decode_event, encode_event

__all__ = ["EventCodec", "ReplayMismatch"]


class ReplayMismatch(EventRejected):
    """A replay's event where production's belong, or production's where a replay's do: a
    replay event must never act in production, and a replay acts only on its own events."""


class EventCodec(Codec):
    """Faust codec for one event model: size-checked JSON both ways.

    A decode failure becomes faust's ValueDecodeError, which acks the message and hands it to
    the topic's ``on_value_decode_error`` (dead-lettered by DeadLetteringTopic), never a crash.

    ``replay`` says which side of the replay boundary the codec is on: a production codec
    refuses an event that carries a ``replay_id``, a replay codec one that carries none, both
    ways (so a wrong event is neither acted on nor sent).
    """

    def __init__(
        self, model: type[BaseModel], max_bytes: int, *, replay: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(model=model, max_bytes=max_bytes, replay=replay, **kwargs)
        self.model = model
        self.max_bytes = max_bytes
        self.replay = replay

    def _dumps(self, obj: Any) -> bytes:
        if not isinstance(obj, self.model):
            raise EventRejected(f"expected {self.model.__name__}, got {type(obj).__name__}")
        self._check_side(obj)
        return encode_event(obj, self.max_bytes)

    def _loads(self, data: bytes) -> BaseModel:
        event = decode_event(self.model, data, self.max_bytes)
        self._check_side(event)
        return event

    def _check_side(self, event: BaseModel) -> None:
        replay_id = getattr(event, "replay_id", None)
        name = type(event).__name__
        if self.replay and replay_id is None:
            raise ReplayMismatch(
                f"{name} carries no replay_id: a replay worker acts only on a replay's events"
                " (planstream.replay.* topics; planstream replay start publishes them)"
            )
        if not self.replay and replay_id is not None:
            raise ReplayMismatch(
                f"{name} carries replay_id {replay_id}: a replay's event never acts in"
                " production (replay events belong on planstream.replay.* topics)"
            )

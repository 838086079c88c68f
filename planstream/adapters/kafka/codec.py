"""The Faust codec of one event model: size-checked JSON both ways."""

from typing import Any

from faust.serializers.codecs import Codec
from pydantic import BaseModel

from planstream.domain.errors import EventRejected
from planstream.domain.wire import decode_event, encode_event

__all__ = ["EventCodec"]


class EventCodec(Codec):
    """Faust codec for one event model: size-checked JSON both ways.

    A decode failure becomes faust's ValueDecodeError, which acks the message and hands it to
    the topic's ``on_value_decode_error`` (dead-lettered by DeadLetteringTopic), never a crash.
    """

    def __init__(self, model: type[BaseModel], max_bytes: int, **kwargs: Any) -> None:
        super().__init__(model=model, max_bytes=max_bytes, **kwargs)
        self.model = model
        self.max_bytes = max_bytes

    def _dumps(self, obj: Any) -> bytes:
        if not isinstance(obj, self.model):
            raise EventRejected(f"expected {self.model.__name__}, got {type(obj).__name__}")
        return encode_event(obj, self.max_bytes)

    def _loads(self, data: bytes) -> BaseModel:
        return decode_event(self.model, data, self.max_bytes)

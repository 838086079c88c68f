"""A Faust consumer that never counts a message as read unless a stream took it.

faust-streaming 0.15 loses a message in two ways around a consumer-group rebalance
(docs/reliability.md, findings F2 and F8):

1. The fetcher hands each fetched message to the streams while racing the "flow stopped" signal
   a rebalance raises. When the signal wins, the message is dropped but its offset is still
   recorded as read, and the fetch position has moved past it. If the rebalance's seek to the
   committed offset came *before* that drop, nothing fetches the message again: the partition
   either stalls on it (F8) or, once the next message is acknowledged, the commit jumps over it
   (F2: the commit only refuses gaps wider than one).
2. A stream skips a message fetched in an earlier group generation (or while the flow is
   stopped) and acknowledges it, so the commit may move past a message nobody processed.

``FlowSafeConsumer`` fixes both at the consumer: when the flow stops before the streams took a
fetched message, the rest of that fetch is dropped and, once the flow resumes, every partition is
sought back to its committed offset before the next fetch (the message and anything fetched with
it come again); and an acknowledgement for a message no stream took during a rebalance is ignored
(the seek after the rebalance fetches it again). Both only add redeliveries, which the
idempotency keys absorb.
"""

import logging
from typing import ClassVar, cast

from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import Message
from mode import Service, ServiceT

__all__ = ["FlowSafeConsumer", "FlowSafeTransport", "acknowledgeable"]

log = logging.getLogger(__name__)


def acknowledgeable(message: Message, *, flow_active: bool, generation_id: int) -> bool:
    """Whether an acknowledgement of ``message`` means it was handled.

    A message a stream took is tracked; an untracked one is acknowledged without being handled
    only when a stream skipped it for a rebalance (flow stopped, or fetched in an earlier
    generation). Decode failures are acknowledged untracked too, but with the flow running.
    """
    if message.tracked:
        return True
    return flow_active and message.generation_id == generation_id


class FlowSafeConsumer(faust_aiokafka.Consumer):
    """The aiokafka consumer with the two rebalance losses above closed."""

    def ack(self, message: Message) -> bool:
        app = self.app
        if not acknowledgeable(
            message,
            flow_active=app.flow_control.is_active(),
            generation_id=app.consumer_generation_id,
        ):
            log.debug("ignored the ack of a message skipped during a rebalance: %s", message.tp)
            return False
        return super().ack(message)

    async def _drain_messages(self, fetcher: ServiceT) -> None:
        """Fetch and deliver until stopped; what the streams did not take is fetched again."""
        fetcher_stopped = cast(Service, fetcher)._stopped.is_set
        read_offset = self._read_offset
        acks_enabled_for = self.app.topics.acks_enabled_for
        reseek = False
        try:
            while not (self.should_stop or fetcher_stopped()):
                if reseek:
                    reseek = not await self._seek_to_committed_once_flowing()
                    continue
                self.diag.set_flag(CONSUMER_FETCHING)
                batch = self.getmany(timeout=1.0)
                await self.sleep(0)
                async for tp, message in batch:
                    offset = message.offset
                    last = read_offset[tp]
                    if last is not None and offset < last:
                        continue  # before the position a seek set: a stale prefetch
                    if last and offset - last > 1 and acks_enabled_for(message.topic):
                        await self._add_gap(tp, last + 1, offset)  # compacted-away offsets
                    await self._maybe_commit_every()
                    if not await self._deliver(message):
                        reseek = not self.should_stop
                        break  # the fetch's remaining messages come again after the seek
                    read_offset[tp] = offset
                self.diag.unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if not self.transport.app.should_stop:
                raise
            log.info("Broker stopped the consumer while the app stops")
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)

    async def _deliver(self, message: Message) -> bool:
        """Hand ``message`` to its streams; False when the flow stopped before they took it."""
        delivery = self.callback(message)
        result = await self.wait_first(delivery, self.suspend_flow.wait())
        return delivery in result.done

    async def _seek_to_committed_once_flowing(self) -> bool:
        """Wait for the flow, then seek every partition to its committed offset; False if the
        seek failed (a rebalance is under way: the caller tries again)."""
        if not self.flow_active:
            await self.wait(self.can_resume_flow)  # type: ignore[arg-type]  # an asyncio.Event
            return False  # look again: stopping, or flowing now
        try:
            await self.perform_seek()
        except Exception as exc:  # any failure means: seek again next time
            log.warning("could not seek back to the committed offsets (%r); trying again", exc)
            await self.sleep(1.0)
            return False
        log.info("flow stopped before a fetched message was taken; fetching again from commits")
        return True

    async def _maybe_commit_every(self) -> None:
        every = self._commit_every
        if every is not None and self._n_acked >= every:
            self._n_acked = 0
            await self.commit()


class FlowSafeTransport(faust_aiokafka.Transport):
    """The aiokafka transport, with ``FlowSafeConsumer``."""

    Consumer: ClassVar[type[faust_aiokafka.Consumer]] = FlowSafeConsumer

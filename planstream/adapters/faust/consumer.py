"""A Faust consumer that never moves past a fetched message no stream took.

faust-streaming 0.15 can lose a message around a consumer-group rebalance or a restart
(docs/reliability.md, findings F2 and F8), in three ways:

1. Its fetch loop drops records without a trace: records of a partition that is paused or not
   yet active, the rest of a fetch once the flow stops or the group generation changes, and a
   message whose hand-over to the streams lost the race against the "flow stopped" signal
   (its offset is even recorded as read). And the recovery resumes its flow control, which
   empties every stream buffer, just *after* it seeks to the committed offsets. The fetch
   position has moved past all of these, and aiokafka's seek to the committed offsets leaves
   a partition with nothing committed where it is: the partition stalls (F8) or, once a later
   message is acknowledged, the commit jumps over the gap.
2. The commit refuses only gaps wider than one (faust-streaming #606), so a single missing
   message at the head is committed over (F2).
3. A stream skips a message fetched in an earlier group generation (or while the flow is
   stopped) and, on the pure-Python path, *acknowledges* it.

``FlowSafeConsumer`` closes all three and backs them with a repair:

- its fetch loop hands every fetched record over or seeks its partition back to it, so the
  next fetch returns it again; after every flow resume (the buffers were just emptied) it seeks
  every partition to its committed offset, and one with nothing committed to its beginning;
- it never commits past an unacknowledged message at the head of a partition;
- it ignores the acknowledgement of a message no stream took during a rebalance;
- every ``consumer_repair_s`` (a setting, 10 s) it looks for a partition whose next message to
  commit is neither acknowledged nor being processed although the partition moved past it, and
  seeks the partition back to it when two checks in a row find it so.

All of this only adds redeliveries, which the idempotency keys absorb.
"""

import logging
from typing import Any, ClassVar, cast

from faust.transport.consumer import CONSUMER_FETCHING, RecordMap
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, Message
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
    """The aiokafka consumer with the losses above closed; its app has planstream `settings`."""

    # Faust's own lines about the consumer stay under Faust's loggers (as PlanstreamApp's).
    logger = logging.getLogger("faust.transport.planstream")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._first: dict[TP, int] = {}  # first offset fetched since a seek, if none committed
        self._missing: dict[TP, int] = {}  # partitions found stalled at the last check
        self._rewinds: dict[TP, int] = {}  # seeks the repair asked for; the fetch loop does them
        self._reseek = False  # the stream buffers were cleared: seek before fetching again

    def ack(self, message: Message) -> bool:
        app = self.app
        if not acknowledgeable(
            message,
            flow_active=app.flow_control.is_active(),
            generation_id=app.consumer_generation_id,
        ):
            log.info(
                "ignored the ack of %s@%d: a stream skipped it during a rebalance",
                message.tp,
                message.offset,
            )
            return False
        return super().ack(message)

    def resume_flow(self) -> None:
        # Faust resumes its flow control (which empties every stream buffer) just before this:
        # whatever was handed over and still buffered is gone, so fetch it again.
        self._reseek = True
        super().resume_flow()

    async def perform_seek(self) -> None:
        """Seek every stream partition to its committed offset, and one with nothing committed
        to its beginning (aiokafka leaves those where the last fetch left them)."""
        await super().perform_seek()
        self._first.clear()
        self._rewinds.clear()  # every partition now starts at or before what the repair asked
        self._missing = {}
        changelogs = self.app.tables.changelog_topics
        for tp in self.assignment():
            if not self._committed_offset[tp] and tp.topic not in changelogs:
                await self.seek(tp, 0)  # before the log start, aiokafka resets to it

    async def seek(self, partition: TP, offset: int) -> None:
        await super().seek(partition, offset)
        self._first.pop(partition, None)

    def _head(self, tp: TP) -> int | None:
        """The offset of ``tp``'s next message to commit, when known."""
        return self._committed_offset[tp] or self._first.get(tp)

    def _new_offset(self, tp: TP) -> int | None:
        head = self._head(tp)
        acked = self._acked[tp]
        if head is not None and acked and not self._gap[tp] and min(acked) > head:
            return None  # the message at the head is not acknowledged yet
        return super()._new_offset(tp)

    @Service.task
    async def _repair_every(self) -> None:
        period: float = self.app.settings.consumer_repair_s  # type: ignore[attr-defined]
        while not self.should_stop:
            await self.sleep(period)
            if not self.should_stop:
                await self._repair_stalled_partitions()

    async def _repair_stalled_partitions(self) -> None:
        """Seek back a partition whose next message to commit went missing on its way."""
        if self.app.rebalancing or self.app.in_recovery or not self.flow_active:
            self._missing = {}
            return
        if self._commit_fut is not None:
            return  # a commit took its acknowledged offsets but has not recorded the new head
        missing = {tp: head for tp in self.assignment() if (head := self._lost(tp)) is not None}
        for tp, head in missing.items():
            if self._missing.get(tp) == head:
                acked = self._acked[tp]
                log.warning(
                    "%s: the message at %d went missing; fetching it again (committed %s,"
                    " read %s, %d acknowledged from %s, gaps %d)",
                    tp,
                    head,
                    self._committed_offset[tp],
                    self._read_offset[tp],
                    len(acked),
                    min(acked, default=None),
                    len(self._gap[tp]),
                )
                self._rewinds[tp] = head  # not now: the fetch loop may be mid-batch
        self._missing = missing

    def _lost(self, tp: TP) -> int | None:
        """The offset of ``tp``'s next message to commit if it was handed over (or skipped) but
        is neither acknowledged nor in the hands of the topic's agent; else None."""
        head = self._head(tp)
        handed = self._read_offset[tp]
        if head is None or handed is None or handed < head:
            return None  # not fetched yet
        acked = self._acked[tp]
        if acked and min(acked) > head:
            return head  # a later message was acknowledged: this one can no longer come
        end = self.highwater(tp)
        if acked or end is None or end <= head:
            return None  # acknowledged, or nothing there yet
        # Handed over, not acknowledged: lost unless the agent is still busy with its topic.
        if any(message.topic == tp.topic for message in self._unacked_messages):
            return None
        return head

    async def _drain_messages(self, fetcher: ServiceT) -> None:
        """Fetch and hand over until stopped; a record not handed over is fetched again."""
        fetcher_stopped = cast(Service, fetcher)._stopped.is_set
        try:
            while not (self.should_stop or fetcher_stopped()):
                if self._reseek and self.flow_active:
                    await self._seek_after_resume()
                if self._rewinds:
                    rewinds, self._rewinds = self._rewinds, {}
                    for tp, offset in rewinds.items():
                        await self._rewind(tp, offset)
                self.diag.set_flag(CONSUMER_FETCHING)
                records, active = await self._wait_next_records(1.0)
                self._beat()
                await self.sleep(0)
                if records and not self.should_stop:
                    await self._hand_over(records, active)
                self.diag.unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if not self.transport.app.should_stop:
                raise
            log.info("Broker stopped the consumer while the app stops")
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)

    def _beat(self) -> None:
        """Tell the app's liveness (its /healthz) that the fetch loop went round: it does about
        every second even when idle, and stops when a full stream buffer holds it up."""
        liveness = getattr(self.app, "liveness", None)
        if liveness is not None:
            liveness.beat()

    async def _seek_after_resume(self) -> None:
        self._reseek = False
        if not self.assignment():
            return
        try:
            await self.perform_seek()
        except Exception as exc:  # a rebalance under way: it seeks and resumes again
            log.info("could not seek to the committed offsets after a resume (%r)", exc)

    async def _hand_over(self, records: RecordMap, active: set[TP] | None) -> None:
        """Deliver one fetch, partitions interleaved; rewind each partition to its first record
        that was not delivered (paused, flow stopped, generation changed, hand-over lost)."""
        generation = self.app.consumer_generation_id
        read_offset = self._read_offset
        acks_enabled_for = self.app.topics.acks_enabled_for
        rewind: dict[TP, int] = {}
        for tp, record in self.scheduler.iterate(records):
            offset = record.offset
            if tp in rewind or tp in self._rewinds:
                continue  # an earlier record was not delivered, or the repair rewinds it
            last = read_offset[tp]
            if last is not None and offset < last:
                continue  # before the position a seek set: a stale prefetch
            if not self._committed_offset[tp]:
                self._first.setdefault(tp, offset)  # the head, until something is committed
            if not self._may_deliver(tp, active, generation):
                rewind[tp] = offset
                continue
            if last and offset - last > 1 and acks_enabled_for(record.topic):
                await self._add_gap(tp, last + 1, offset)  # compacted-away offsets
            await self._maybe_commit_every()
            self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
            if await self._deliver(self._to_message(tp, record)):
                read_offset[tp] = offset
            else:
                rewind[tp] = offset
        for tp, offset in rewind.items():
            await self._rewind(tp, offset)

    def _may_deliver(self, tp: TP, active: set[TP] | None, generation: int) -> bool:
        if not self.flow_active or self.app.consumer_generation_id != generation:
            return False
        return active is None or tp in active or tp in self._buffered_partitions

    async def _deliver(self, message: Message) -> bool:
        """Hand ``message`` to its streams; False when the flow stopped before they took it."""
        delivery = self.callback(message)
        result = await self.wait_first(delivery, self.suspend_flow.wait())
        return delivery in result.done

    async def _rewind(self, tp: TP, offset: int) -> None:
        """Make the next fetch of ``tp`` start at ``offset`` (unless ``tp`` was revoked: its
        next owner starts from the committed offset)."""
        if tp not in self.assignment():
            return
        try:
            await self.seek(tp, offset)
        except Exception as exc:  # revoked meanwhile, or the consumer is stopping
            log.warning("could not rewind %s to %d (%r)", tp, offset, exc)
            return
        log.info("%s@%d was fetched but not delivered; it will be fetched again", tp, offset)

    async def _maybe_commit_every(self) -> None:
        every = self._commit_every
        if every is not None and self._n_acked >= every:
            self._n_acked = 0
            await self.commit()


class FlowSafeTransport(faust_aiokafka.Transport):
    """The aiokafka transport, with ``FlowSafeConsumer``."""

    Consumer: ClassVar[type[faust_aiokafka.Consumer]] = FlowSafeConsumer

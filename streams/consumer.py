"""The stream worker's Kafka consumer: Faust's, with the ways it skipped records closed.

Measured with `gsp bench --early-kill` (the worker SIGKILLed as its first results appear, then
restarted): the successor lost 68 to 334 of 1,500 records at the match stage, and the fault suite
one record at a time. A diagnostic build of Faust showed the causes; each is closed here:

1. **A stale batch past a seek.** A worker starting (or rebalanced) fetches records while its tables
   recover, then seeks its stream partitions to their committed offsets. Faust's fetch loop
   (``Consumer._drain_messages``) went on delivering the batch fetched before that seek and moved
   each partition's *read offset* past it, so the records fetched again were dropped as already read
   ("DROPPED MESSAGE ROFF"). Here every seek and revocation starts an *epoch*; a batch that sees the
   epoch change is left, sets no read offset, and the partitions are sought to their committed
   offsets again. A callback cut short by a rebalance no longer sets the read offset either.
2. **Buffers cleared behind the read offset.** Faust clears the agents' buffers on every resume of
   the flow (table recovery resumes it several times), throwing away events already counted as
   read. A clear that threw events away now seeks to the committed offsets again.
3. **A commit over a hole.** Faust commits the acked offsets' first run of consecutive numbers unless
   it starts *more than one* past the committed offset (``Consumer._new_offset``), so a record right
   at the committed offset that was never acked was committed over. Here only a run that starts at
   the committed offset is committed.

Last line: a partition whose acks start past its committed offset (a *hole*), or whose records were
handed over and are nowhere (not acked, not in flight, not queued: a *stall*), for `HOLE_GRACE_S` is
sought back to its committed offset, with a warning and ``gsp_consumer_rewinds_total{reason}``. One
agent processes a partition in order, so neither is work in progress. Early-kill runs still show holes
being rewound (events handed over around the successor's second rebalance and never processed; where
inside Faust they are lost is not pinned down): those records arrive about 15 s late, not never.
Delivery stays at least once; a rewind only redelivers (the share stage's window of recent
deliveries keeps replays off the agencies' topics). ``_drain_messages`` is Faust 0.15.3's with the
changes marked ``# gsp:``; faust-streaming is pinned to that version (pyproject.toml) and
`tests/streams/test_consumer.py` checks it still is.

Also: Faust creates its aiokafka consumer with ``fetch_max_wait_ms=1500`` written into the call, and
the embedded broker answers a waiting fetch only when that wait ends, not when data arrives, so every
hop of an idle-ish pipeline waited up to 1.5 s (p99 of 4-5 s from a source row's commit to the
agency's sink over three hops, `gsp.tools.bench.latency`). The worker's consumer waits at most
`FETCH_MAX_WAIT_MS`: under load a fetch returns full long before; idle, it costs a small request
per 100 ms.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from mode import Service, ServiceT

__all__ = ["FAUST_VERSION", "FETCH_MAX_WAIT_MS", "HOLE_GRACE_S", "ProgressWatch", "SafeConsumer", "install"]

log = logging.getLogger("streams.consumer")

FAUST_VERSION = "0.15.3"  # the version whose fetch loop and commit rule this module replaces
HOLE_GRACE_S = 15.0  # a hole at the head of a partition's acked offsets older than this is rewound
FETCH_MAX_WAIT_MS = 100  # the longest a fetch waits for records (Faust's own: 1,500)


class _PromptConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # Private: aiokafka reads it when the consumer starts (its fetcher is made then); Faust offers no setting.
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer


class SafeConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer that never skips a record after a seek, a rebalance or a lost ack."""

    #: called with the reason of every rewind (``stale-batch``, ``cleared``, ``hole``, ``stall``); the worker counts them
    on_rewind: Callable[[str], None] = staticmethod(lambda reason: None)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._epoch = 0  # bumped by every seek and revocation
        self._holes: dict[TP, float] = {}  # partition -> since when its acks start past its committed offset
        self._stalls: dict[TP, float] = {}  # partition -> since when records handed over are nowhere
        self._due: dict[TP, str] = {}  # partitions to rewind after this commit, and why
        self._delivered: dict[TP, int] = {}  # partition -> the last offset handed to the agents since the last seek
        self._cleared = False  # events handed to the agents were thrown away since the last seek
        flow_control = self.app.flow_control
        clear = flow_control.clear

        def clear_and_tell() -> None:
            self._cleared = self._cleared or any(queue.qsize() for queue in flow_control._queues)
            clear()
        flow_control.clear = clear_and_tell  # type: ignore[method-assign] # Faust clears the agents' buffers on every resume of the flow

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _PromptConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def _bump(self) -> None:
        self._epoch += 1

    async def perform_seek(self) -> None:
        # before (a batch in flight during the seek is stale) and after (one fetched while it ran may be)
        self._cleared = False
        self._bump()
        self._delivered.clear()
        try:
            await super().perform_seek()
        finally:
            self._bump()

    async def seek(self, partition: TP, offset: int) -> None:
        self._bump()
        self._delivered.pop(partition, None)
        await super().seek(partition, offset)

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        self._bump()
        self._delivered.clear()
        await super().on_partitions_revoked(revoked)

    def _new_offset(self, tp: TP) -> int | None:
        """The offset to commit: the end of the acked run that starts right at the committed offset, or None."""
        acked = self._acked[tp]
        committed = self._committed_offset[tp]
        if acked and committed is not None:
            self._absorb_gaps(tp, acked)
            if min(acked) > committed:  # a hole at the head: nothing can be committed over it
                self._lasting(tp, self._holes, "hole")
                return None
        self._holes.pop(tp, None)
        return super()._new_offset(tp)

    def _absorb_gaps(self, tp: TP, acked: list[int]) -> None:
        """Offsets that are gaps in the log (compaction, transaction markers) count as acked (as Faust does)."""
        gaps = self._gap[tp]
        if gaps:
            upto = max(acked)
            for interval in sorted(gaps.overlap(0, upto), key=lambda i: i.begin):
                acked.extend(range(interval.begin, interval.end))
            gaps.chop(0, upto)
            acked.sort()

    def _lasting(self, tp: TP, since: dict[TP, float], reason: str) -> None:
        """A rewind of ``tp`` is due once ``reason`` has held for `HOLE_GRACE_S`."""
        first = since.setdefault(tp, time.monotonic())
        if time.monotonic() - first >= HOLE_GRACE_S:
            since.pop(tp, None)
            self._due[tp] = reason

    def _stalled(self, tp: TP) -> bool:
        """Records at or past the committed offset were handed over, and none is acked, processed or queued:
        the last records of a partition thrown away leave no hole behind them, only a stop."""
        committed, delivered = self._committed_offset[tp], self._delivered.get(tp)
        return (committed is not None and delivered is not None and delivered >= committed and not self._acked[tp]
                and not any(message.tp == tp for message in self._unacked_messages)
                and not any(queue.qsize() for queue in self.app.flow_control._queues))

    async def force_commit(self, topics: Any = None, start_new_transaction: bool = True) -> bool:
        done = cast(bool, await super().force_commit(topics, start_new_transaction=start_new_transaction))
        for tp in list(self._delivered):
            if self._stalled(tp):
                self._lasting(tp, self._stalls, "stall")
            else:
                self._stalls.pop(tp, None)
        while self._due:
            await self._rewind(*self._due.popitem())
        return done

    async def _rewind(self, tp: TP, reason: str) -> None:
        committed = self._committed_offset[tp]
        if committed is None or tp not in self.assignment():
            return
        acked = self._acked[tp]
        log.warning("consumer: %s[%d]: records from offset %d handed over %ss ago and never processed (%s); rewinding",
                    tp.topic, tp.partition, committed, HOLE_GRACE_S,
                    f"acked from {min(acked)}" if acked else "nothing after them acked")
        acked.clear()
        self._acked_index[tp].clear()
        self._delivered.pop(tp, None)
        self.on_rewind(reason)
        self._bump()
        try:
            await self.seek_wait({tp: committed})
            self._read_offset[tp] = committed
        except Exception as exc:  # a rebalance may have taken the partition: it seeks anyway
            log.warning("consumer: rewind of %s[%d] failed: %r", tp.topic, tp.partition, exc)
        finally:
            self._bump()

    async def _reseek(self) -> None:
        reason = "cleared" if self._cleared else "stale-batch"
        log.info("consumer: %s; seeking to the committed offsets again", "events handed to the agents were "
                 "thrown away" if self._cleared else "a batch fetched before a seek was left")
        self.on_rewind(reason)
        try:
            await self.perform_seek()
        except Exception as exc:  # as Faust's own seek when flow is not active
            log.warning("consumer: seek after a stale batch failed: %r", exc)

    async def _drain_messages(self, fetcher: ServiceT) -> None:  # pragma: no cover - Faust's loop
        callback = self.callback
        getmany = self.getmany
        consumer_should_stop = cast(Service, self)._stopped.is_set
        fetcher_should_stop = cast(Service, fetcher)._stopped.is_set
        read_offset = self._read_offset
        set_flag, unset_flag = self.diag.set_flag, self.diag.unset_flag
        commit_every = self._commit_every
        acks_enabled_for = self.app.topics.acks_enabled_for
        yield_every, num_since_yield = 100, 0
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                if self._cleared and self.flow_active:  # gsp: even when no new record comes
                    await self._reseek()
                set_flag(CONSUMER_FETCHING)
                ait = cast(AsyncIterator[tuple[TP, Any]], getmany(timeout=1.0))
                await self.sleep(0)
                if not self.should_stop:
                    epoch: int | None = None  # gsp: the epoch the batch was fetched in
                    stale = False
                    async for tp, message in ait:
                        if self._cleared:  # gsp: delivered events were thrown away: fetch them again
                            stale = True
                            break
                        if epoch is None:
                            epoch = self._epoch
                        elif epoch != self._epoch:  # gsp: a seek or a rebalance since: the rest is stale
                            stale = True
                            break
                        num_since_yield += 1
                        if num_since_yield > yield_every:
                            await asyncio.sleep(0)
                            num_since_yield = 0
                        offset = message.offset
                        r_offset = read_offset[tp]
                        if r_offset is None or offset >= r_offset:
                            gap = offset - (r_offset or 0)
                            if gap > 1 and r_offset and acks_enabled_for(message.topic):
                                await self._add_gap(tp, r_offset + 1, offset)
                            if commit_every is not None and self._n_acked >= commit_every:
                                self._n_acked = 0
                                await self.commit()
                            delivery = callback(message)
                            waited = await self.wait_first(delivery, self.suspend_flow.wait())
                            if epoch != self._epoch or self._cleared:  # gsp: the seek's read offset stands
                                stale = True
                                break
                            if delivery in waited.done:  # gsp: only an event handed over was read
                                read_offset[tp] = offset
                                self._delivered[tp] = offset
                    if stale:
                        await self._reseek()
                    unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            unset_flag(CONSUMER_FETCHING)


def install(app: Any, on_rewind: Callable[[str], None] | None = None) -> None:
    """Make ``app`` (a faust.App whose consumer does not exist yet) use `SafeConsumer`."""
    extra = {} if on_rewind is None else {"on_rewind": staticmethod(on_rewind)}
    consumer = type("WorkerConsumer", (SafeConsumer,), extra)
    setattr(app.transport, "Consumer", consumer)  # noqa: B010 - a ClassVar of Faust's transport, per app here


class ProgressWatch:
    """A worker that stopped: records wait on its input partitions and no input offset was committed for
    ``stuck_s``, or its table recovery (which keeps every input partition paused) read nothing for as long,
    while none of its agents declares a wait (``waiting``: a schema registry out of reach).

    Seen in CI after a broker restart: a worker that stopped processing for four minutes, every process
    healthy; once because Faust's table recovery waited for changelog records that never came ("No event
    received for active tp ... since recovery start"), its input paused all along. The worker then ends
    itself, logging where every task waits, and is restarted from its committed offsets. ``check`` is
    called every few seconds; it returns why the worker is stuck, or None.
    """

    def __init__(self, consumer: Any, waiting: Any, *, stuck_s: float, recovery: Any = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._consumer, self._waiting, self._stuck_s, self._clock = consumer, waiting, stuck_s, clock
        self._recovery = recovery  # Faust's table recovery: in_recovery, active_offsets
        self._seen: tuple[Any, ...] = ()
        self._since = clock()

    def check(self) -> str | None:
        consumer = self._consumer
        acked = consumer.app.topics.acks_enabled_for
        inputs = sorted((tp for tp in consumer.assignment() if acked(tp.topic)), key=lambda tp: (tp.topic, tp.partition))
        committed = tuple((tp, consumer._committed_offset.get(tp)) for tp in inputs)
        waiting = {tp: (consumer.highwater(tp) or 0) - (offset or 0) for tp, offset in committed}
        pending = sum(n for n in waiting.values() if n > 0)
        recovering = bool(self._recovery is not None and self._recovery.in_recovery)
        read = tuple(sorted(self._recovery.active_offsets.items())) if recovering else ()
        now = self._clock()
        if (committed, read) != self._seen or not (pending or recovering) or self._waiting or not self._stuck_s:
            self._seen, self._since = (committed, read), now
            return None
        if now - self._since < self._stuck_s:
            return None
        if recovering:
            return f"table recovery read nothing for {now - self._since:.0f} s (every input partition paused)"
        return f"{pending} records wait on {sum(1 for n in waiting.values() if n > 0)} input partitions and no " \
               f"offset was committed for {now - self._since:.0f} s"


def task_stacks() -> str:
    """Where every asyncio task waits (its chain of awaits, outermost first), for the log of a worker that stopped."""
    lines = []
    for task in asyncio.all_tasks():
        chain: list[str] = []
        awaited: Any = task.get_coro()
        while awaited is not None and len(chain) < 30:
            frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
            if frame is None:
                break
            chain.append(f"{frame.f_code.co_name} ({frame.f_code.co_filename.rsplit('/', 2)[-1]}:{frame.f_lineno})")
            awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)
        lines.append(f"{task.get_name()}: " + " > ".join(chain))
    return "\n".join(sorted(lines))

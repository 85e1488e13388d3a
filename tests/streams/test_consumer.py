"""The worker's consumer (`streams.consumer`): no commit over a record never processed, a lasting hole rewound.

The fetch loop's part (a batch fetched before a seek is left, and sought again) is proved end to end
by `tests/faults/test_kills.py::test_a_worker_killed_as_its_first_results_appear_loses_nothing`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from importlib.metadata import version
from types import SimpleNamespace

import faust
import pytest
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from streams import consumer as module
from streams.consumer import FAUST_VERSION, ProgressWatch, SafeConsumer, install

TOPIC = TP("clean.telecom.subscriber.v1", 0)


@pytest.fixture(scope="module")
def built() -> Iterator[tuple[SafeConsumer, list[str]]]:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    app = faust.App("gsp-test-consumer", broker="kafka://127.0.0.1:9", store="memory://", web_enabled=False)
    rewinds: list[str] = []
    install(app, on_rewind=rewinds.append)
    made = app.consumer  # built, never started: nothing connects
    assert isinstance(made, SafeConsumer)
    yield made, rewinds
    made._thread.thread_loop.close()  # the consumer thread's own loop (never started here)
    asyncio.set_event_loop(None)
    loop.close()


@pytest.fixture
def consumer(built: tuple[SafeConsumer, list[str]]) -> SafeConsumer:
    made, rewinds = built
    for state in (made._acked, made._acked_index, made._committed_offset, made._gap, made._holes, made._stalls,
                  made._due, made._delivered, rewinds):
        state.clear()
    return made


def acks(consumer: SafeConsumer, committed: int | None, acked: list[int]) -> None:
    consumer._committed_offset[TOPIC] = committed
    consumer._acked[TOPIC] = list(acked)
    consumer._acked_index[TOPIC] = set(acked)


def test_the_faust_this_module_replaces_parts_of_is_the_one_installed() -> None:
    assert version("faust-streaming") == FAUST_VERSION


def test_the_record_at_the_committed_offset_is_never_committed_over(consumer: SafeConsumer) -> None:
    acks(consumer, 20, [21, 22])
    assert consumer._new_offset(TOPIC) is None
    # Faust's own rule commits over offset 20 (the hole is only one record wide): the loss this closes
    acks(consumer, 20, [21, 22])
    assert faust_aiokafka.Consumer._new_offset(consumer, TOPIC) == 23


@pytest.mark.parametrize(("committed", "acked", "expected"), [
    (20, [20, 21, 22, 24], 23),  # the run from the committed offset, up to the next hole
    (20, [20], 21),
    (None, [0, 1, 2], 3),  # nothing committed yet: Faust's rule
    (20, [22, 23], None),
])
def test_what_is_committed(consumer: SafeConsumer, committed: int | None, acked: list[int],
                           expected: int | None) -> None:
    acks(consumer, committed, acked)
    assert consumer._new_offset(TOPIC) == expected


def test_gaps_in_the_log_count_as_acked(consumer: SafeConsumer) -> None:
    acks(consumer, 20, [20, 23])
    consumer._gap[TOPIC].addi(21, 23)  # offsets 21 and 22 do not exist (compaction, transaction markers)
    assert consumer._new_offset(TOPIC) == 24


def test_a_hole_that_lasts_is_rewound_one_that_closes_is_not(consumer: SafeConsumer,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(module.time, "monotonic", lambda: clock[0])
    acks(consumer, 20, [21])
    assert consumer._new_offset(TOPIC) is None and not consumer._due
    clock[0] += module.HOLE_GRACE_S - 1
    assert consumer._new_offset(TOPIC) is None and not consumer._due
    consumer._acked[TOPIC].append(20)  # the record arrived: the hole closes, its clock stops
    assert consumer._new_offset(TOPIC) == 22
    acks(consumer, 22, [23])
    assert consumer._new_offset(TOPIC) is None and not consumer._due
    clock[0] += module.HOLE_GRACE_S
    assert consumer._new_offset(TOPIC) is None
    assert consumer._due == {TOPIC: "hole"}


def test_records_handed_over_and_then_nowhere_are_rewound_after_a_while(consumer: SafeConsumer,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The last records of a partition thrown away leave no hole, only a stop; all processed is no stop."""
    clock = [1000.0]
    monkeypatch.setattr(module.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(faust_aiokafka.Consumer, "force_commit", lambda *args, **kwargs: asyncio.sleep(0, False))
    commit = asyncio.get_event_loop().run_until_complete
    rewound: list[tuple[TP, str]] = []

    async def rewind(tp: TP, reason: str) -> None:
        rewound.append((tp, reason))
    monkeypatch.setattr(consumer, "_rewind", rewind)
    acks(consumer, 20, [])
    consumer._delivered[TOPIC] = 19  # all handed over was processed and committed
    commit(consumer.force_commit())
    clock[0] += module.HOLE_GRACE_S
    commit(consumer.force_commit())
    assert rewound == []
    consumer._delivered[TOPIC] = 25  # 20..25 handed over, none acked, in flight or queued
    commit(consumer.force_commit())
    clock[0] += module.HOLE_GRACE_S - 1
    commit(consumer.force_commit())
    assert rewound == []
    clock[0] += 1
    commit(consumer.force_commit())
    assert rewound == [(TOPIC, "stall")]


class Worker:
    """What `ProgressWatch` reads of a consumer: its assignment, highwaters and committed offsets."""

    def __init__(self) -> None:
        self.app = SimpleNamespace(topics=SimpleNamespace(acks_enabled_for=lambda topic: not topic.endswith("-changelog")))
        self.highwaters = {TOPIC: 100, TP("gsp-streams-registry-changelog", 0): 5000}
        self._committed_offset: dict[TP, int | None] = {TOPIC: 40}

    def assignment(self) -> set[TP]:
        return set(self.highwaters)

    def highwater(self, tp: TP) -> int:
        return self.highwaters[tp]


def test_a_worker_whose_input_stops_moving_is_told_stuck_unless_it_declares_a_wait() -> None:
    clock = [0.0]
    worker, waiting = Worker(), dict[str, str]()
    watch = ProgressWatch(worker, waiting, stuck_s=120, clock=lambda: clock[0])
    assert watch.check() is None
    clock[0] = 119
    assert watch.check() is None
    clock[0] = 121
    assert watch.check() == "60 records wait on 1 input partitions and no offset was committed for 121 s"
    worker._committed_offset[TOPIC] = 70  # a commit: progress
    assert watch.check() is None
    clock[0] = 300
    waiting["match-telecom.subscriber:ready"] = "the registry replica being read"
    assert watch.check() is None  # a declared wait
    waiting.clear()
    clock[0] = 419
    assert watch.check() is None
    clock[0] = 421
    assert watch.check() is not None
    worker._committed_offset[TOPIC] = 100  # all committed: nothing waits (the changelog's lag never counts)
    clock[0] = 1000
    assert watch.check() is None and ProgressWatch(worker, {}, stuck_s=0).check() is None


def test_a_table_recovery_that_reads_nothing_is_told_stuck() -> None:
    clock = [0.0]
    worker = Worker()
    worker.highwaters[TOPIC] = 0  # paused by the recovery: no highwater known, nothing seen waiting
    worker._committed_offset[TOPIC] = None
    changelog = TP("gsp-streams-registry-changelog", 0)
    recovery = SimpleNamespace(in_recovery=True, active_offsets={changelog: 10})
    watch = ProgressWatch(worker, {}, stuck_s=120, recovery=recovery, clock=lambda: clock[0])
    assert watch.check() is None
    clock[0] = 100
    recovery.active_offsets[changelog] = 50  # it reads: progress
    assert watch.check() is None
    clock[0] = 219
    assert watch.check() is None
    clock[0] = 221
    assert watch.check() == "table recovery read nothing for 121 s (every input partition paused)"
    recovery.in_recovery = False  # done, nothing waits: not stuck
    assert watch.check() is None


def test_the_worker_consumer_waits_briefly_for_records(built: tuple[SafeConsumer, list[str]]) -> None:
    made, _ = built

    async def create() -> int:  # aiokafka makes its consumer inside a running loop; it is never started here
        made_here = made._thread._create_worker_consumer(made.app.transport)
        await made_here.stop()
        return int(made_here._fetch_max_wait_ms)

    loop = asyncio.new_event_loop()
    try:
        assert loop.run_until_complete(create()) == module.FETCH_MAX_WAIT_MS < 1500
    finally:
        loop.close()

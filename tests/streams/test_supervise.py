"""The worker's supervised coroutines: restarted with back-off after an error, stopped when told."""

import asyncio

from streams.supervise import Backoff, LoopState, supervised

FAST = Backoff(first_s=0.01, max_s=0.02)


def test_a_coroutine_that_raises_twice_is_restarted_twice() -> None:
    state, runs = LoopState(), []

    async def main() -> None:
        stopped = asyncio.Event()

        async def follow() -> None:
            runs.append(1)
            if len(runs) <= 2:
                raise ConnectionError(f"broker gone (run {len(runs)})")
            await stopped.wait()

        task = asyncio.create_task(supervised("follow", follow, stopped, state, backoff=FAST))
        for _ in range(200):
            if len(runs) == 3:
                break
            await asyncio.sleep(0.01)
        assert state.as_dict()["up"] is True and state.restarts == 2
        stopped.set()
        await asyncio.wait_for(task, timeout=5)

    asyncio.run(main())
    assert len(runs) == 3
    assert state.as_dict() == {"up": False, "restarts": 2, "last_error": "ConnectionError: broker gone (run 2)",
                               "since": state.since}


def test_a_coroutine_waiting_for_its_restart_is_down_and_stops_at_once_when_told() -> None:
    state = LoopState()

    async def main() -> None:
        stopped = asyncio.Event()

        async def broken() -> None:
            raise RuntimeError("registry unreachable")

        task = asyncio.create_task(supervised("broken", broken, stopped, state, backoff=Backoff(first_s=30, max_s=30)))
        await asyncio.sleep(0.1)
        assert state.up is False and state.last_error == "RuntimeError: registry unreachable"
        stopped.set()
        await asyncio.wait_for(task, timeout=2)  # not after the 30 s back-off

    asyncio.run(main())
    assert state.restarts == 0


def test_a_coroutine_that_returns_is_not_restarted() -> None:
    state, runs = LoopState(), []

    async def once() -> None:
        runs.append(1)

    asyncio.run(supervised("once", once, asyncio.Event(), state, backoff=FAST))
    assert runs == [1] and state.up is False and state.restarts == 0


def test_an_event_loop_that_stops_turning_is_told_from_a_thread_and_health_says_so() -> None:
    import threading
    import time

    from prometheus_client import CollectorRegistry

    from streams.book import SubscriptionBook
    from streams.metrics import StageMetrics
    from streams.observe import LOOP_LATE_S, WorkerGauges
    from streams.supervise import watch_event_loop

    turned: list[float | None] = [None]
    told: list[float] = []
    stuck = threading.Event()

    def on_stuck(seconds: float) -> None:
        told.append(seconds)
        stuck.set()
    watch_event_loop(lambda: turned[0], stuck_s=0.4, on_stuck=on_stuck, every_s=0.05)
    time.sleep(0.3)
    assert not told  # never turned yet (a worker starting): nothing to tell
    turned[0] = time.monotonic()
    assert stuck.wait(5) and told[0] >= 0.4

    gauges = WorkerGauges(StageMetrics.create(CollectorRegistry()), SubscriptionBook(codec=None),  # type: ignore[arg-type]
                          registry_records=lambda: 0, replica=None, waiting={"clean": "schema registry unreachable"})
    assert gauges.health()["status"] == "waiting" and gauges.health()["event_loop_late_s"] is None
    gauges.refresh([], {})
    assert gauges.health()["status"] == "waiting"
    gauges.refreshed_at = time.monotonic() - LOOP_LATE_S - 1
    health = gauges.health()
    assert health["status"].startswith("degraded: event loop (stalled 1") and health["event_loop_late_s"] > LOOP_LATE_S

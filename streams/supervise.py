"""Supervision of a worker's long-running coroutines (its followers), and what threads reuse of it.

A follower that raises is logged once with its traceback, marked down in its
:class:`LoopState` (the worker's ``/health`` shows it) and started again after an
exponential :class:`Backoff`; one that returns was told to stop. The control plane's
threads are supervised the same way, with the same state (`gsp.runtime.supervised`).

    state = LoopState()
    app.task(lambda: supervised("follow-subscriptions", lambda: book.follow(bootstrap, stopped), stopped, state))
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["DEFAULT_BACKOFF", "Backoff", "LoopState", "supervised", "watch_event_loop"]

log = logging.getLogger("streams.supervise")


@dataclass(frozen=True)
class Backoff:
    """Exponential back-off: ``first_s`` doubling to ``max_s``, back to ``first_s`` after ``healthy_s`` up."""

    first_s: float = 0.5
    max_s: float = 30.0
    healthy_s: float = 60.0

    def next(self, delay_s: float, up_for_s: float) -> float:
        """The wait before the next start, given the last wait and how long the last run stayed up."""
        return self.first_s if up_for_s >= self.healthy_s else min(self.max_s, delay_s * 2)


DEFAULT_BACKOFF = Backoff()


class LoopState:
    """What health tells of one supervised loop: up, restarts, the last error and since when (epoch seconds)."""

    def __init__(self) -> None:
        self.up = False
        self.restarts = 0
        self.last_error: str | None = None
        self.since = time.time()

    def mark(self, *, up: bool, error: BaseException | None = None) -> None:
        self.up, self.since = up, time.time()
        if error is not None:
            self.last_error = f"{type(error).__name__}: {error}"[:300]

    def as_dict(self) -> dict[str, Any]:
        return {"up": self.up, "restarts": self.restarts, "last_error": self.last_error, "since": self.since}


async def supervised(name: str, factory: Callable[[], Awaitable[Any]], stopped: asyncio.Event, state: LoopState, *,
                     backoff: Backoff = DEFAULT_BACKOFF) -> None:
    """Await ``factory()`` until it returns or ``stopped`` is set, starting it again after a back-off when it raises."""
    delay = backoff.first_s
    while not stopped.is_set():
        state.mark(up=True)
        started = time.monotonic()
        try:
            await factory()
        except asyncio.CancelledError:
            state.mark(up=False)
            raise
        except Exception as exc:
            delay = backoff.next(delay, time.monotonic() - started)
            state.mark(up=False, error=exc)
            log.exception("background loop failed; restarting", extra={"loop": name, "retry_in_s": delay})
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stopped.wait(), timeout=delay)
            if not stopped.is_set():
                state.restarts += 1
            continue
        break
    state.mark(up=False)


def watch_event_loop(last_turn: Callable[[], float | None], *, stuck_s: float,
                     on_stuck: Callable[[float], None], every_s: float = 5.0) -> threading.Thread:
    """A daemon thread that calls ``on_stuck(seconds)`` (which ends the process) once the event loop, having
    turned at least once (``last_turn``: a monotonic time it records, or None before), has not turned for
    ``stuck_s``: a loop blocked in a call nothing times out stops every agent, and a thread is all that
    can still tell."""
    def run() -> None:
        while True:
            time.sleep(min(every_s, stuck_s / 4))
            turned = last_turn()
            if turned is not None and time.monotonic() - turned >= stuck_s:
                on_stuck(time.monotonic() - turned)
                return

    thread = threading.Thread(target=run, name="gsp-event-loop-watch", daemon=True)
    thread.start()
    return thread

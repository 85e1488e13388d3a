"""Bounded exponential back-off for the runners, and the health of what a runner depends on.

An outage (source database, broker, sink database) is waited out, never a
reason to exit: the runner sleeps 0.5 s, 1 s, 2 s … up to ``cap_s`` between
attempts and logs once per step, so a night-long outage writes a handful of
lines per hour instead of one per poll. The first success after a failure
logs the recovery and starts again at the shortest step.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

__all__ = ["Backoff", "Dependency", "first_line"]


def first_line(exc: BaseException) -> str:
    """An exception as one line (drivers' messages span several)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


@dataclass
class Dependency:
    """Whether one thing a runner needs answers; ``error`` is the last failure, in one line."""
    up: bool = True
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"up": self.up, "error": self.error}


class Backoff:
    """Delays between attempts after failures of one dependency: doubling from ``base_s``, at most ``cap_s``."""

    def __init__(self, what: str, log: logging.Logger, *, base_s: float = 0.5, cap_s: float = 30.0,
                 extra: dict[str, Any] | None = None) -> None:
        self.what = what
        self.state = Dependency()
        self._log = log
        self._base_s = base_s
        self._cap_s = cap_s
        self._extra = extra or {}
        self._failures = 0

    def failed(self, exc: BaseException) -> float:
        """Record a failure; the seconds to wait before the next attempt. Logged once per step."""
        delay = min(self._cap_s, self._base_s * 2 ** self._failures)
        at_cap = self._failures > 0 and self._base_s * 2 ** (self._failures - 1) >= self._cap_s
        self._failures += 1
        self.state = Dependency(up=False, error=first_line(exc))
        if not at_cap:
            self._log.warning(f"{self.what} unavailable; retrying in {delay:g}s",
                              extra={**self._extra, "error": self.state.error, "attempt": self._failures})
        return delay

    def succeeded(self) -> None:
        if self._failures:
            self._log.warning(f"{self.what} is back after {self._failures} failed attempts", extra=self._extra)
        self._failures = 0
        self.state = Dependency()

"""The plugin interfaces. Everything else (Kafka, Avro, retries, metrics) is the runner's.

A :class:`Source` returns records that carry their own resume position; the
runner stores a position only after the broker has acknowledged every record
before it, so a crash replays and never skips (Kafka Connect's rule).

A :class:`Sink` receives decoded events in batches; ``flush`` makes them
durable. The runner commits consumer offsets only after ``flush`` returns, and
sinks upsert by event id, so a replay changes nothing.

Outages are the runner's too: a source that cannot be read raises
:class:`SourceUnavailable`, a sink that cannot write raises :class:`SinkFailed`,
and the runner backs off and retries (a sink is then handed the same events
again, which its upsert absorbs). Any other exception is a bug and stops the
process, so its supervisor restarts it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["Problem", "Sink", "SinkFailed", "Source", "SourceRecord", "SourceUnavailable"]


class SourceUnavailable(Exception):
    """The source system cannot be read now (database down, network); the position did not move."""


class SinkFailed(Exception):
    """The sink could not write or flush a batch; nothing of it may be committed."""


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a record read from the source is already known to be bad (a line that is not JSON, a short CSV row)."""
    rule: str                   # e.g. "file.line", "outbox.payload"
    reason: str                 # one line for a data steward, naming where the record was (file and line)
    original: bytes             # the record exactly as read


@dataclass(frozen=True, slots=True)
class SourceRecord:
    key: str                    # primary key in the source system
    version: str                # version of this row in the source (e.g. "ts:id")
    value: dict[str, Any]       # the row mapped to the contract's fields, header excluded
    position: dict[str, Any]    # where to resume after this record
    raw: dict[str, Any]         # the row as read, for logs and debugging
    deleted: bool = False       # the source deleted the record; its fields are the last ones it had
    problem: Problem | None = None  # set: the runner quarantines the record (its position is stored as usual)
    origin: str = ""            # where it was read when that is not obvious ("a.csv line 7"), for quarantine reasons


class Source(Protocol):
    name: str

    def start(self, position: dict[str, Any] | None) -> None:
        """Resume after ``position`` (None: from the beginning)."""

    def poll(self, max_records: int) -> list[SourceRecord]:
        """The next records in source order; an empty list when there is nothing new.

        The runner polls again only once every record returned before was acknowledged and its position
        stored, or after ``start`` rewound the source: a source may then finish what it read (a file source
        moves a finished file away).

        Raises :class:`SourceUnavailable` (its position unchanged) when the source cannot be read."""

    def close(self) -> None: ...


class Sink(Protocol):
    name: str

    def write_batch(self, events: list[dict[str, Any]]) -> None:
        """Stage decoded events (each with its ``header``) for writing."""

    def flush(self) -> None:
        """Make everything written so far durable; :class:`SinkFailed` when it could not."""

    def close(self) -> None: ...

"""Connectors at the edges of the data plane: sources publish, sinks deliver.

Plugins implement one tiny interface (:class:`Source` or :class:`Sink`);
runners own producing, consuming, encoding, positions and metrics.
"""

from connectors.base import Sink, SinkFailed, Source, SourceRecord, SourceUnavailable

__all__ = ["Sink", "SinkFailed", "Source", "SourceRecord", "SourceUnavailable"]

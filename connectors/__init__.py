"""Connectors at the edges of the data plane: sources publish, sinks deliver.

Plugins implement one tiny interface (:class:`Source` or :class:`Sink`);
runners own producing, consuming, encoding, positions and metrics.
"""

from connectors.base import Sink, Source, SourceRecord

__all__ = ["Sink", "Source", "SourceRecord"]

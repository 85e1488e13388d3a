"""The stream stages as plain classes over bytes: decode, apply the pure logic, encode.

The Faust module only wires topics to these; the benchmark and the tests call
them directly. Each ``process`` returns the events to send as
``(topic, key, value)``; a record that cannot be processed becomes a
quarantine event with its reason and the original bytes, never an exception.
"""

from streams.stages.base import Out, Where
from streams.stages.clean import CleanStage
from streams.stages.match import MatchStage
from streams.stages.registry import RegistryStage
from streams.stages.share import ShareStage

__all__ = ["CleanStage", "MatchStage", "Out", "RegistryStage", "ShareStage", "Where"]

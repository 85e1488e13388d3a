"""match.<dataset> -> share.<agency>.<dataset> for every subscription that covers the record."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from schemas.codec import Codec
from streams import share as sharing
from streams.quality import QualityTally
from streams.stages.base import Out

__all__ = ["ShareStage"]


class ShareStage:
    """match.<dataset> -> share.<agency>.<dataset> for every subscription that covers the record."""

    def __init__(self, codec: Codec, subscriptions: Callable[[str], Iterable[sharing.Subscription]], *,
                 tallies: dict[str, QualityTally] | None = None, clock: Callable[[], float] = time.time) -> None:
        self._codec = codec
        self._subscriptions = subscriptions
        self._tallies = tallies or {}
        self._clock = clock

    def process(self, value: bytes) -> list[tuple[Out, sharing.Subscription]]:
        _, result = self._codec.decode(value)
        _, record = self._codec.decode(result["record"])
        view = sharing.shared_view(record, personal_id=result["personal_id"], verdict=result["verdict"], score=result["score"])
        key = result["source_key"].encode()
        shared = [((s.topic, key, self._codec.encode(s.schema_id, sharing.project(s, view))), s)
                  for s in self._subscriptions(result["dataset"]) if sharing.covers(s, view)]
        tally = self._tallies.get(result["dataset"])
        if tally is not None and shared:
            tally.observe_delivery(self._clock() - result["header"]["ingested_at"] / 1000)
        return shared

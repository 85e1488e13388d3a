"""match.<linked dataset> | clean.<plain dataset> -> share.<agency>.<dataset> for every subscription that covers the record."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from schemas.codec import Codec
from streams import share as sharing
from streams.quality import QualityTally
from streams.stages.base import Out

__all__ = ["ShareStage"]


class ShareStage:
    """Records to share -> share.<agency>.<dataset> for every subscription that covers them.

    A linked dataset is shared from its match results (`process`): the cleaned record plus the
    outcome of matching, filtered by verdict. A plain dataset is shared straight from its clean
    topic (`process_clean`): the cleaned record, filtered by its rows only.
    """

    def __init__(self, codec: Codec, subscriptions: Callable[[str], Iterable[sharing.Subscription]], *,
                 tallies: dict[str, QualityTally] | None = None, clock: Callable[[], float] = time.time) -> None:
        self._codec = codec
        self._subscriptions = subscriptions
        self._tallies = tallies or {}
        self._clock = clock

    def process(self, value: bytes) -> list[tuple[Out, sharing.Subscription]]:
        """One MatchResult event of a linked dataset."""
        _, result = self._codec.decode(value)
        _, record = self._codec.decode(result["record"])
        view = sharing.shared_view(record, personal_id=result["personal_id"], verdict=result["verdict"], score=result["score"])
        return self._share(result["dataset"], view, result["source_key"], result["header"]["ingested_at"], plain=False)

    def process_clean(self, dataset: str, value: bytes) -> list[tuple[Out, sharing.Subscription]]:
        """One cleaned record of the plain dataset ``dataset``, as the clean stage wrote it."""
        _, record = self._codec.decode(value)
        header = record["header"]
        return self._share(dataset, sharing.plain_view(record), header["source_key"], header["ingested_at"], plain=True)

    def _share(self, dataset: str, view: dict[str, Any], source_key: str, ingested_at_ms: int, *,
               plain: bool) -> list[tuple[Out, sharing.Subscription]]:
        key = source_key.encode()
        now_ms = int(self._clock() * 1000)
        shared = [((s.topic, key, self._codec.encode(s.schema_id, sharing.project(s, view))), s)
                  for s in self._subscriptions(dataset)
                  if s.in_period(ingested_at_ms, now_ms) and sharing.covers(s, view, plain=plain)]
        tally = self._tallies.get(dataset)
        if tally is not None and shared:
            tally.observe_delivery(self._clock() - ingested_at_ms / 1000)
        return shared

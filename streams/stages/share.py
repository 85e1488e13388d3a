"""match.<linked dataset> | clean.<plain dataset> -> share.<agency>.<dataset> for every subscription that covers the record."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

from schemas.codec import Codec
from schemas.datasets import Dataset, declared
from streams import share as sharing
from streams.quality import QualityTally
from streams.stages.base import Out, Unreadable, read_record

__all__ = ["ShareStage", "Shared"]

log = logging.getLogger("gsp.streams")

_MATCH_RESULT = "vn.gsp.match.MatchResult"


class Shared(NamedTuple):
    """One record for one subscription: the event to send, and what the audit ledger is told of it
    (``record``: the platform's and the agency's event id, the person, the source system and version)."""

    out: Out
    subscription: sharing.Subscription
    record: dict[str, Any]


class ShareStage:
    """Records to share -> share.<agency>.<dataset> for every subscription that covers them.

    A linked dataset is shared from its match results (`process`): the cleaned record plus the
    outcome of matching, filtered by verdict. A plain dataset is shared straight from its clean
    topic (`process_clean`): the cleaned record, filtered by its rows only.
    """

    def __init__(self, codec: Codec, subscriptions: Callable[[str], Iterable[sharing.Subscription]], *,
                 tallies: dict[str, QualityTally] | None = None, clock: Callable[[], float] = time.time,
                 datasets: Mapping[str, Dataset] | None = None,
                 consented: Callable[[str, str | None], bool] = lambda subscription_id, personal_id: False) -> None:
        """``datasets``: the declarations it shares (default: the process's declared ones); ``consented``: whether
        a person's consent to a consent-based subscription is on record (default: never, so none is shared)."""
        self._codec = codec
        self._subscriptions = subscriptions
        self._tallies = tallies or {}
        self._clock = clock
        self._consented = consented
        known = (declared() if datasets is None else datasets).values()
        # dataset -> its key field: approved or not, it decides whether the agency sees the source key
        self._keys = {d.name: d.key for d in known}
        self._contracts = {d.name: d.contract for d in known}

    def _key_field(self, dataset: str) -> str:
        return self._keys[dataset]

    def process(self, value: bytes | None) -> list[Shared]:
        """One MatchResult event of a linked dataset; nothing for one that is not (an error is logged)."""
        try:
            result = read_record(self._codec, value, dataset="match result", contract=_MATCH_RESULT)
            record = read_record(self._codec, result["record"], dataset=result["dataset"],
                                 contract=self._contract(result["dataset"]))
        except Unreadable as exc:
            return self._unshared(exc)
        view = sharing.shared_view(record, personal_id=result["personal_id"], verdict=result["verdict"], score=result["score"])
        return self._share(result["dataset"], view, result["header"]["ingested_at"], plain=False,
                           personal_id=result["personal_id"])

    def process_clean(self, dataset: str, value: bytes | None) -> list[Shared]:
        """One cleaned record of the plain dataset ``dataset``, as the clean stage wrote it; nothing for bytes that
        are not one (an error is logged)."""
        try:
            record = read_record(self._codec, value, dataset=dataset, contract=self._contract(dataset))
        except Unreadable as exc:
            return self._unshared(exc)
        header = record["header"]
        return self._share(dataset, sharing.plain_view(record), header["ingested_at"], plain=True, personal_id=None)

    def _contract(self, dataset: str) -> str:
        contract = self._contracts.get(dataset)
        if contract is None:
            raise Unreadable("share.dataset", f"dataset {dataset!r} is not one this worker shares")
        return contract

    @staticmethod
    def _unshared(exc: Unreadable) -> list[Shared]:
        # Nothing is shared from what cannot be read (fail closed); its own stage quarantined bad input already.
        log.error("unreadable record not shared", extra={"stage": "share", "rule": exc.rule, "error": str(exc)[:200]})
        return []

    def _share(self, dataset: str, view: dict[str, Any], ingested_at_ms: int, *, plain: bool,
               personal_id: str | None) -> list[Shared]:
        now_ms = int(self._clock() * 1000)
        key_field = self._key_field(dataset)
        shared = []
        for s in self._subscriptions(dataset):
            if not (s.pseudonym_key and s.in_period(ingested_at_ms, now_ms) and sharing.covers(s, view, plain=plain)):
                continue
            if s.consent and not self._consented(s.subscription_id, personal_id):
                continue  # the legal basis is consent, and this person's is not on record
            # The view's header (the record's) is the platform's; the agency gets its own (`sharing.Envelope`).
            header = view["header"]
            outer = sharing.envelope(s, header, key_field=key_field, personal_id=personal_id)
            out = (s.topic, outer.message_key, self._codec.encode(s.schema_id, sharing.project(s, view, outer)))
            shared.append(Shared(out, s, {"event_id": header["event_id"], "agency_event_id": outer.event_id,
                                          "personal_id": personal_id, "source_system": header["source_system"],
                                          "source_version": header["source_version"]}))
        tally = self._tallies.get(dataset)
        if tally is not None and shared:
            tally.observe_delivery(self._clock() - ingested_at_ms / 1000)
        return shared

"""What a worker tells the audit ledger: one LedgerFact per subscription and micro-batch it delivered.

Pure (no Faust, no Kafka). The share agent sends its records, waits for the broker to acknowledge
them (so a fact says where each record is), then sends the facts on ``gsp.ledger``, keyed by
subscription id; the control plane's ledger writer chains them (`gsp.governance.ledger`). Faust
commits the agent's input only after the producer flushed, so a record whose fact was not sent is
shared and reported again after a restart: a fact may repeat, none is lost.

Lineage travels as Kafka headers between the platform's own stages: the clean stage writes where
it read the raw record (``gsp-raw``), the match stage adds where it read the clean one
(``gsp-clean``). Agencies receive no such header: their messages carry only what they were approved for.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from schemas import topics
from streams.share import Subscription
from streams.stages.share import Shared

__all__ = ["CLEAN", "RAW", "facts", "lineage_headers", "position", "verification_fact", "way"]

RAW, CLEAN = "gsp-raw", "gsp-clean"


def position(partition: int, offset: int) -> str:
    return f"{partition}:{offset}"


def lineage_headers(incoming: Mapping[str, bytes] | None, own: str, where: str) -> list[tuple[str, bytes]]:
    """The lineage headers an output carries: its input's, and ``own`` (RAW or CLEAN) at ``where``."""
    kept = [(name, value) for name, value in (incoming or {}).items() if name in (RAW, CLEAN) and name != own]
    return [*kept, (own, where.encode())]


def way(source: str, headers: Mapping[str, bytes] | Iterable[tuple[str, bytes]] | None, partition: int,
        offset: int) -> dict[str, str]:
    """Where a record read from ``source`` at (``partition``, ``offset``) has been: its lineage headers, then there."""
    dataset = source.split(".", 1)[1].rsplit(".", 1)[0]
    carried = dict(headers or {})
    out = {topics.raw(dataset): carried[RAW].decode()} if RAW in carried else {}
    if CLEAN in carried:
        out[topics.clean(dataset)] = carried[CLEAN].decode()
    out[source] = position(partition, offset)
    return out


def facts(shared: Sequence[Shared], shared_at: Sequence[tuple[int, int]], ways: Sequence[dict[str, str]], *,
          at_ms: int, actor: str, channel: str = "topic") -> list[tuple[bytes, dict[str, Any]]]:
    """(key, LedgerFact) per subscription among ``shared``: ``shared_at[i]`` is where the i-th landed on its
    share topic, ``ways[i]`` the positions it had before (topic -> partition:offset)."""
    grouped: dict[str, list[int]] = defaultdict(list)
    for i, item in enumerate(shared):
        grouped[item.subscription.subscription_id].append(i)
    out = []
    for sid, members in grouped.items():
        s = shared[members[0]].subscription
        records = []
        for i in members:
            record = shared[i].record
            records.append({**record, "positions": {**ways[i], s.topic: position(*shared_at[i])}, "verdict": None})
        out.append((sid.encode(), {
            "kind": "delivery", "at": at_ms, "actor": actor, "channel": channel, "agency": s.agency,
            "subscription_id": sid, "version": s.version, "dataset": s.dataset, "fields": list(s.fields),
            "records": records}))
    return out


def verification_fact(subscription: Subscription, channel: str, requests: Sequence[Mapping[str, Any]],
                      answers: Sequence[Mapping[str, Any]], *, at_ms: int, actor: str) -> tuple[bytes, dict[str, Any]]:
    """(key, LedgerFact) of one answered verification batch: per request, the person asked about and the verdict
    given (the supplied names and dates are not kept: the ledger says who asked about whom, and what it was told)."""
    records: list[dict[str, Any]] = []
    for request, answer in zip(requests, answers, strict=False):
        personal_id = request.get("personal_id")
        records.append({"event_id": f"verify:{subscription.subscription_id}:{answer.get('request_id')}",
                        "agency_event_id": None,
                        "personal_id": personal_id if isinstance(personal_id, str) and personal_id else None,
                        "source_system": None, "source_version": None, "positions": {},
                        "verdict": answer.get("verdict") or ("ERROR" if answer.get("error") else None)})
    return subscription.subscription_id.encode(), {
        "kind": "verification", "at": at_ms, "actor": actor, "channel": channel, "agency": subscription.agency,
        "subscription_id": subscription.subscription_id, "version": subscription.version,
        "dataset": subscription.dataset, "fields": list(subscription.fields), "records": records}

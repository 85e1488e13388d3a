"""The pull feed: an agency without Kafka reads its subscription's records over HTTP, page by page.

    GET /api/subscriptions/{id}/records?cursor=<opaque>&limit=<1..1000, default 500>
        -> {"subscription_id", "records": [{"partition", "offset", "event": {"header": {...}, <fields>,
            "person_key"}} | {"partition", "offset", "error"}, ...], "next_cursor": "...", "more": bool}

Records come in topic order per partition. Ask again with ``next_cursor`` until ``more`` is false;
an empty page answers the cursor it was given. No cursor: from the beginning of the topic.

The cursor is ``<payload>.<mac>``, both urlsafe base64 without padding: the payload is
``{"v": 1, "o": {"<partition>": <next offset>, ...}}``, the mac an HMAC-SHA256 of the subscription
id and the payload under a key derived from the control plane's ledger key (GSP_LEDGER_KEY or
GSP_HOME/ledger.key, the same on every control plane of one database), so a cursor is bound to its
subscription and cannot be altered. Anything else is a 400.

Only the consumer agency of the subscription reads it: 404 for an unknown subscription, 403 for
another agency's, 409 while it is not approved or active (requested, refused, suspended, revoked,
expired) and for a verify subscription, which receives no records. The records were entered in the
audit ledger when they were shared onto the topic; reading them again records nothing new.

Each request opens its own kafka-python consumer with manual assignment (no group, nothing
committed) and closes it, so no pool: on the embedded broker a page of 10 takes about 10 ms, one of
500 to 1,000 records 100 to 250 ms (one idle poll of 100 ms says a partition is read). A page is bounded by
``limit`` and the fetch timeout; a cursor past the end of a partition (a new, empty embedded
broker) reads that partition again from its beginning: delivery is at least once, and every event
carries the stable ``header.event_id`` to upsert by.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from prometheus_client import CollectorRegistry, Counter

from gsp.errors import GspError, NotFound, UserError
from gsp.governance.identity import Forbidden, Identity
from gsp.governance.subscriptions import State, Subscriptions
from gsp.http.errors import BadRequest
from gsp.http.routes import Call, Query, Route, in_thread
from schemas.codec import Codec, CodecError, SchemaUnavailable
from streams.verify import VERIFY

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "BadCursor", "Feed", "FeedMetrics", "FeedUnavailable", "NotDelivering", "feed_routes"]

log = logging.getLogger("gsp.feed")

DEFAULT_LIMIT = 500
MAX_LIMIT = 1000
_VERSION = 1
_READABLE = (State.APPROVED, State.ACTIVE)
_PART = re.compile(r"[A-Za-z0-9_-]{1,4096}")
_MAX_OFFSET = 2**63 - 1


class BadCursor(BadRequest):
    """A cursor this feed did not issue for this subscription: garbage, altered, or another subscription's."""


class NotDelivering(UserError):
    """The subscription is not approved or active, or receives no records (verify): 409."""

    http_status = 409


class FeedUnavailable(GspError):
    """The broker or the registry did not answer: 503, and the same cursor may be asked again."""

    http_status = 503


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    if not _PART.fullmatch(text):
        raise ValueError("not urlsafe base64")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Cursors:
    """Issues and checks cursors under one key."""

    def __init__(self, key: bytes) -> None:
        self._key = hmac.new(key, b"gsp.feed.cursor", hashlib.sha256).digest()  # a key of its own, derived

    def _mac(self, subscription_id: str, payload: bytes) -> bytes:
        return hmac.new(self._key, subscription_id.encode() + b"\x00" + payload, hashlib.sha256).digest()

    def issue(self, subscription_id: str, offsets: Mapping[int, int]) -> str:
        payload = json.dumps({"v": _VERSION, "o": {str(p): offsets[p] for p in sorted(offsets)}},
                             separators=(",", ":")).encode()
        return f"{_b64(payload)}.{_b64(self._mac(subscription_id, payload))}"

    def read(self, subscription_id: str, cursor: str) -> dict[int, int]:
        """Partition -> next offset of a cursor issued for ``subscription_id``; BadCursor for anything else."""
        payload_text, dot, mac_text = cursor.partition(".")
        try:
            payload, mac = _unb64(payload_text), _unb64(mac_text)
        except (ValueError, binascii.Error):
            raise BadCursor("cursor: not a cursor this feed issued") from None
        if not dot or not hmac.compare_digest(mac, self._mac(subscription_id, payload)):
            raise BadCursor(f"cursor: not a cursor of subscription {subscription_id} (altered, or another's)")
        try:
            content = json.loads(payload)  # ours, as the mac proves; still checked in full
        except ValueError:
            content = None
        valid = isinstance(content, dict) and content.keys() == {"v", "o"} and content["v"] == _VERSION
        offsets = content["o"] if valid else None
        if not isinstance(offsets, dict) or not all(
                re.fullmatch(r"\d{1,9}", p) and type(o) is int and 0 <= o <= _MAX_OFFSET for p, o in offsets.items()):
            raise BadCursor("cursor: not a version of cursor this feed reads")
        return {int(p): o for p, o in offsets.items()}


@dataclass(frozen=True)
class FeedMetrics:
    records: Counter
    pages: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> FeedMetrics:
        return cls(records=Counter("gsp_feed_records_total", "Records served by the HTTP pull feed", ["agency"],
                                   registry=registry),
                   pages=Counter("gsp_feed_pages_total", "Pages answered by the HTTP pull feed", ["agency"],
                                 registry=registry))


class Feed:
    """Reads pages of share topics for the route; one per control plane. ``key``: the control plane's secret
    (its ledger key) the cursor key derives from; ``consumer_config``: kafka-python settings (TLS, SASL)."""

    def __init__(self, bootstrap: str, codec: Codec, *, key: bytes, metrics: CollectorRegistry,
                 consumer_config: Mapping[str, Any] | None = None, fetch_timeout_s: float = 5.0,
                 idle_ms: int = 100) -> None:
        self._config = {**(consumer_config or {}), "bootstrap_servers": bootstrap, "group_id": None,
                        "enable_auto_commit": False, "auto_offset_reset": "earliest", "client_id": "gsp-feed",
                        # A fetch that includes a partition already at its end waits this long for new records.
                        "fetch_max_wait_ms": min(idle_ms, 500)}
        self._codec = codec
        self.cursors = Cursors(key)
        self._fetch_timeout_s = fetch_timeout_s
        self._idle_ms = idle_ms
        self._metrics = FeedMetrics.create(metrics)

    def page(self, subscription: Mapping[str, Any], *, cursor: str | None, limit: int) -> dict[str, Any]:
        """Up to ``limit`` records of ``subscription``'s topic after ``cursor`` (None: from the beginning)."""
        sid = subscription["subscription_id"]
        offsets = self.cursors.read(sid, cursor) if cursor else {}
        try:
            read, more = self._read(subscription["topic"], offsets, limit)
        except KafkaError as exc:
            raise FeedUnavailable(f"the broker did not answer ({type(exc).__name__}); ask again with the same "
                                  "cursor") from None
        records = []
        for message in read:
            offsets[message.partition] = message.offset + 1
            records.append({"partition": message.partition, "offset": message.offset, **self._decoded(message)})
        agency = subscription["agency_slug"]
        self._metrics.records.labels(agency).inc(len(records))
        self._metrics.pages.labels(agency).inc()
        return {"subscription_id": sid, "records": records, "next_cursor": self.cursors.issue(sid, offsets),
                "more": more}

    def _decoded(self, message: Any) -> dict[str, Any]:
        try:
            return {"event": _plain(self._codec.decode(message.value)[1])}
        except SchemaUnavailable as exc:
            raise FeedUnavailable(f"the schema registry did not answer: {exc}") from None
        except CodecError as exc:  # not the platform's writing; shown in its place so the page goes on
            log.warning("unreadable record on a share topic",
                        extra={"topic": message.topic, "partition": message.partition, "offset": message.offset})
            return {"error": str(exc)}

    def _read(self, topic: str, offsets: Mapping[int, int], limit: int) -> tuple[list[Any], bool]:
        """The first ``limit`` records after ``offsets`` and whether more were there. One more is read than served:
        the end offsets of the embedded broker can fall short of the log's end, so only a record proves more."""
        consumer = KafkaConsumer(**self._config)
        try:
            partitions = sorted(consumer.partitions_for_topic(topic) or [])
            if not partitions:
                return [], False
            assigned = [TopicPartition(topic, p) for p in partitions]
            consumer.assign(assigned)
            for tp in assigned:
                if tp.partition in offsets:
                    consumer.seek(tp, offsets[tp.partition])
                else:
                    consumer.seek_to_beginning(tp)
            end = consumer.end_offsets(assigned)
            taken: list[Any] = []
            deadline = time.monotonic() + self._fetch_timeout_s
            while len(taken) <= limit and time.monotonic() < deadline:
                polled = consumer.poll(timeout_ms=self._idle_ms, max_records=limit + 1 - len(taken))
                for batch in polled.values():
                    taken.extend(batch)
                # A record is fetched with its whole batch: past the end offsets, an empty poll is the end.
                if not polled and all(consumer.position(tp) >= end[tp] for tp in assigned):
                    return taken, False
            # A prefix of records interleaved from ordered partitions is a prefix of each partition.
            return taken[:limit], len(taken) > limit or any(consumer.position(tp) < end[tp] for tp in assigned)
        finally:
            consumer.close(autocommit=False)


def _plain(value: Any) -> Any:
    """An Avro value as JSON can carry it: bytes as urlsafe base64 (no share contract has any today)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        return _b64(value)
    return value


def _readable(subscriptions: Subscriptions, who: Identity, sid: str) -> dict[str, Any]:
    """The caller's agency's subscription ``sid``, approved or active, of records; refused otherwise."""
    try:
        found = subscriptions.show(who, sid)
    except NotFound:
        if subscriptions.known(sid):
            raise Forbidden(f"subscription {sid} is not of {who.agency}: only its agency reads its records") from None
        raise
    if found["agency"] != who.agency:
        raise Forbidden(f"subscription {sid} is not of {who.agency}: only its agency reads its records")
    if found["mode"] == VERIFY:
        raise NotDelivering(f"subscription {sid} is for verification and receives no records")
    if found["state"] not in _READABLE:
        raise NotDelivering(f"subscription {sid} is {found['state']}: records are read while it is approved or active")
    return found


def feed_routes(subscriptions: Subscriptions, feed: Feed | None) -> list[Route]:
    """The feed's route; without a ``feed`` (a control plane without a broker) it answers 503 once the caller and
    the subscription are checked."""

    async def records(call: Call) -> dict[str, Any]:
        limit = call.query["limit"]
        if not 1 <= limit <= MAX_LIMIT:
            raise BadRequest(f"limit: must be from 1 to {MAX_LIMIT}, not {limit}")
        found = await in_thread(_readable, subscriptions, call.identity, call.path["subscription_id"])
        if feed is None:
            raise FeedUnavailable("the record feed is not served by this control plane")
        return await in_thread(feed.page, found, cursor=call.query["cursor"] or None, limit=limit)

    return [Route("GET", "/api/subscriptions/{subscription_id}/records", records, tag="subscriptions",
                  summary="Read a subscription's records after a cursor, a page at a time (agencies without Kafka)",
                  responds="{subscription_id, records: [{partition, offset, event} or {partition, offset, error}], "
                           "next_cursor, more}, in topic order per partition",
                  query=(Query("cursor", "next_cursor of the previous page; absent: from the beginning"),
                         Query("limit", f"records at most, 1 to {MAX_LIMIT}", kind="integer",
                               default=DEFAULT_LIMIT)))]

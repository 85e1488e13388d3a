"""The workers' verification consumer: VerificationRequest batches in, VerificationReply out, over Kafka.

Every worker runs one aiokafka consumer in the group ``<GSP_APP_ID>-verify``, subscribed by pattern
to every agency's ``verify.<agency>.requests.v1`` and to the control plane's ``gsp.verify.requests``
(its HTTP API's batches). Cluster metadata is refreshed every few seconds, so the request topic of
an agency approved a minute ago is picked up without a restart.

- On ``verify.<agency>.requests.v1`` the agency is the one the topic names, never one the message
  claims, and the reply goes to ``verify.<agency>.replies.v1``, keyed by the correlation id. Only the
  control plane writes ``gsp.verify.requests``: there the message names the agency (taken from the
  caller's credential), and the reply goes to ``gsp.verify.replies``.
- The agency must hold an active verify subscription (from the `SubscriptionBook`); the batch is
  verified under it (`streams.verify`): only the fields it lists may be supplied.
- Anything unreadable (garbage bytes, a tombstone, another contract, no subscription) is answered
  with an ``error`` and no answers when a correlation id can be read (from the value, else the
  message key); otherwise it is logged and counted (``gsp_verifications_total{outcome="unreadable"}``).
  The consumer goes on either way.
- Offsets are committed only after the broker acknowledged the replies of what was read: delivery
  is at-least-once, so an asker may see a reply twice (same correlation id, same answers). Replies
  the broker refuses `ATTEMPTS` times in a row are dropped (counted ``undelivered``), so one
  unanswerable message cannot stop every agency's verifications; their askers time out and ask again.
- ``on_answered(subscription, channel, requests, answers)`` is asked, for each answered batch, what to
  report of it: (topic, key, value) events sent with the replies and acknowledged with them before the
  offsets are committed (the audit ledger's facts, `streams.ledger.verification_fact`); ``channel`` is
  "kafka" or "http". A report may repeat when a round is answered again; none is lost.

The worker answers once its registry replica has caught up (`Replica.wait_ready`). With
GSP_LINKAGE_MODEL=off the lookup is the registry table, which holds only the partitions this worker
was assigned: exact with one worker, incomplete with several (the replica has no such limit).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from prometheus_client import Counter

from schemas import topics
from schemas.codec import Codec, CodecError
from streams.dedupe import Window
from streams.matching import Lookup
from streams.share import Subscription
from streams.verify import MAX_BATCH, REQUEST_ID, Verifier, error_answer, invalid

__all__ = ["HTTP", "KAFKA", "OnAnswered", "Reply", "VerificationLoop", "Verifications", "not_told"]

log = logging.getLogger("gsp.streams.verify")

KAFKA, HTTP = "kafka", "http"  # an agency's own topics; the control plane's HTTP API
UNREADABLE, REFUSED, ERROR, UNDELIVERED = "unreadable", "refused", "error", "undelivered"  # besides the verdicts
ATTEMPTS = 3  # at sending a round's replies, before its requests are dropped
OnAnswered = Callable[[Subscription, str, list[dict[str, Any]], list[dict[str, Any]]], Iterable[tuple[str, bytes, bytes]]]


def not_told(subscription: Subscription, channel: str, requests: list[dict[str, Any]],
             answers: list[dict[str, Any]]) -> Iterable[tuple[str, bytes, bytes]]:
    """The default `OnAnswered`: nothing to report."""
    return ()


@dataclass(frozen=True)
class Reply:
    """What one request message comes to: the reply to send, and what it answered."""

    topic: str
    key: bytes
    value: dict[str, Any]  # a VerificationReply
    agency: str
    channel: str
    subscription: Subscription | None = None  # None: the batch was refused
    requests: list[dict[str, Any]] = field(default_factory=list)  # flat: request_id and field values

    @property
    def answers(self) -> list[dict[str, Any]]:
        return list(self.value["answers"])


class Refused(Exception):
    """A batch that gets an error reply and no answers."""


class Verifications:
    """One request message in, its `Reply` out (None when no reply can be addressed). No Kafka here."""

    def __init__(self, verifier: Verifier, codec: Codec, *, subscriptions: Callable[[str], list[Subscription]],
                 lookup: Lookup, reply_schema_id: int, clock: Callable[[], float] = time.time) -> None:
        """``subscriptions``: an agency slug's verify subscriptions (`SubscriptionBook.verifying`);
        ``reply_schema_id``: the registry id of the VerificationReply contract."""
        self._verifier = verifier
        self._codec = codec
        self._subscriptions = subscriptions
        self._lookup = lookup
        self._reply_schema_id = reply_schema_id
        self._clock = clock

    def handle(self, topic: str, key: bytes | None, value: bytes | None) -> Reply | None:
        agency = topics.verify_agency(topic)
        channel = KAFKA if agency is not None else HTTP
        reply_topic = topics.verify_replies(agency) if agency is not None else topics.VERIFY_REPLIES
        correlation_id = _text(key)
        try:
            _, record = self._codec.decode(value)
        except CodecError as exc:
            return self._refused(reply_topic, correlation_id, agency or "", channel,
                                 f"not a VerificationRequest in the Confluent wire format: {exc}")
        correlation_id = _text(record.get("correlation_id")) or correlation_id
        if agency is None:  # the control plane's topic: it names the agency its caller's credential belongs to
            agency = _text(record.get("agency"))
            if agency is None:
                return self._refused(reply_topic, correlation_id, "", channel, "no agency named on gsp.verify.requests")
        try:
            items = _items(record)
            subscription = self._subscription(agency, _text(record.get("subscription_id")))
        except Refused as exc:
            return self._refused(reply_topic, correlation_id, agency, channel, str(exc))
        assert correlation_id is not None  # _items refuses a record without one
        requests = [flat for flat, _ in items]
        answers = [error_answer(flat, problem) if problem else self._answer(flat, subscription)
                   for flat, problem in items]
        return Reply(reply_topic, correlation_id.encode(),
                     {"correlation_id": correlation_id, "answers": answers, "error": None},
                     agency, channel, subscription, requests)

    def encode(self, reply: Reply) -> bytes:
        return self._codec.encode(self._reply_schema_id, {**reply.value, "answers": [
            {"request_id": a.get(REQUEST_ID), "verdict": a.get("verdict"), "mask": a.get("mask", {}),
             "error": a.get("error")} for a in reply.value["answers"]]})

    def _answer(self, request: dict[str, Any], subscription: Subscription) -> dict[str, Any]:
        problem = invalid(request, subscription.fields)
        return error_answer(request, problem) if problem else self._verifier.answer(request, self._lookup)

    def _subscription(self, agency: str, named: str | None) -> Subscription:
        now_ms = int(self._clock() * 1000)
        held = [s for s in self._subscriptions(agency) if s.valid_until is None or now_ms < s.valid_until]
        if named is not None:
            found = next((s for s in held if s.subscription_id == named), None)
            if found is None:
                raise Refused(f"{agency} holds no active verify subscription {named}")
            return found
        if not held:
            raise Refused(f"{agency} holds no active verify subscription")
        if len(held) > 1:
            raise Refused(f"{agency} holds {len(held)} verify subscriptions; name one in subscription_id: "
                          + ", ".join(s.subscription_id for s in held))
        return held[0]

    def _refused(self, topic: str, correlation_id: str | None, agency: str, channel: str, error: str) -> Reply | None:
        if correlation_id is None:
            log.warning("verification request without a correlation id ignored",
                        extra={"stage": "verify", "agency": agency, "error": error[:300]})
            return None
        return Reply(topic, correlation_id.encode(), {"correlation_id": correlation_id, "answers": [], "error": error},
                     agency, channel)


def _text(value: Any) -> str | None:
    """A non-empty string, from text or UTF-8 bytes; None otherwise."""
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return value if isinstance(value, str) and value.strip() else None


def _items(record: Mapping[str, Any]) -> list[tuple[dict[str, Any], str | None]]:
    """(flat request, why it is invalid as an item) for each VerificationItem of a decoded record; Refused when the
    record is not a VerificationRequest at all (another contract) or holds too many."""
    if _text(record.get("correlation_id")) is None or not isinstance(record.get("requests"), list):
        raise Refused("not a VerificationRequest: correlation_id and requests are required")
    requests: list[Any] = record["requests"]
    if len(requests) > MAX_BATCH:
        raise Refused(f"{len(requests)} requests in one message; at most {MAX_BATCH}")
    out: list[tuple[dict[str, Any], str | None]] = []
    for item in requests:
        values = item.get("fields") if isinstance(item, Mapping) else None
        if not isinstance(values, Mapping):
            out.append(({}, "a request must hold request_id and fields"))
            continue
        flat = {**values, REQUEST_ID: item.get(REQUEST_ID)}
        out.append((flat, f"fields: {REQUEST_ID} is not a field" if REQUEST_ID in values else None))
    return out


class VerificationLoop:
    """The worker's verification consumer (see the module): runs until ``stopped``."""

    def __init__(self, verifications: Verifications, *, bootstrap: str, group_id: str, counted: Counter,
                 on_answered: OnAnswered = not_told, consumer_config: Mapping[str, Any] | None = None,
                 metadata_max_age_ms: int = 3000) -> None:
        """``counted``: gsp_verifications_total (labels agency, channel, outcome); ``consumer_config``: aiokafka
        group settings (session and heartbeat)."""
        self._verifications = verifications
        self._bootstrap = bootstrap
        self._group_id = group_id
        self._counted = counted
        self._on_answered = on_answered
        self._consumer_config = dict(consumer_config or {})
        self._metadata_max_age_ms = metadata_max_age_ms
        self.answered = 0  # batches answered (a refused one included)
        self._failures = 0  # attempts at the current round's replies the broker did not acknowledge
        # Batches whose report the broker acknowledged, by (reply topic, correlation id): a batch read again
        # after a rebalance cut its commit is answered again (the asker may be waiting) but not reported
        # twice, so "who asked about me" counts it once. Bounded; a restart forgets it (then it is counted twice).
        self._reported = Window(100_000)

    async def run(self, stopped: asyncio.Event, ready: Callable[[], Awaitable[None]]) -> None:
        """Wait for ``ready`` (the registry replica caught up), then answer until ``stopped``."""
        await ready()
        consumer = AIOKafkaConsumer(bootstrap_servers=self._bootstrap, group_id=self._group_id, client_id=self._group_id,
                                    enable_auto_commit=False, auto_offset_reset="earliest",
                                    metadata_max_age_ms=self._metadata_max_age_ms,
                                    # An asker waits for the answer: a fetch returns within 50 ms, not 500.
                                    fetch_max_wait_ms=50, **self._consumer_config)
        producer = AIOKafkaProducer(bootstrap_servers=self._bootstrap, acks="all", linger_ms=2,
                                    request_timeout_ms=10_000, client_id=f"{self._group_id}-replies")
        await producer.start()
        try:
            await consumer.start()
            consumer.subscribe(pattern=topics.VERIFY_REQUESTS_PATTERN)
            log.info("verification consumer started", extra={"stage": "verify", "group": self._group_id})
            while not stopped.is_set():
                batches = await consumer.getmany(timeout_ms=500, max_records=200)
                if batches:
                    await self._round(consumer, producer, batches)
        finally:
            await consumer.stop()
            await producer.stop()

    async def _round(self, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer,
                     batches: Mapping[TopicPartition, Sequence[Any]]) -> None:
        """Answer what was read, wait for the broker's acknowledgements, then commit; on a broker failure, read
        the same messages again (at-least-once)."""
        replies = [(reply, self._verifications.encode(reply))
                   for messages in batches.values() for m in messages
                   if (reply := self._handled(m.topic, m.key, m.value)) is not None]
        reports = [event for reply, _ in replies for event in self._report(reply)]
        try:
            sent = [await producer.send(reply.topic, key=reply.key, value=value) for reply, value in replies]
            sent += [await producer.send(topic, key=key, value=value) for topic, key, value in reports]
            await asyncio.gather(*sent)
        except KafkaError as exc:
            self._failures += 1
            if self._failures < ATTEMPTS:
                log.error("verification replies not acknowledged; reading the requests again",
                          extra={"stage": "verify", "error": str(exc)[:300], "attempt": self._failures})
                for tp, messages in batches.items():
                    consumer.seek(tp, messages[0].offset)
                await asyncio.sleep(1.0)
                return
            # Not a poison pill for every agency (a replies topic gone, say): these askers time out and ask again.
            log.error("verification replies not acknowledged; these requests are dropped",
                      extra={"stage": "verify", "error": str(exc)[:300], "attempt": self._failures})
            for reply, _ in replies:
                self._counted.labels(reply.agency, reply.channel, UNDELIVERED).inc()
            replies = []
        self._failures = 0
        for reply, _ in replies:
            self._told(reply)
            self._reported.add((reply.topic, reply.key))
        try:
            await consumer.commit({tp: messages[-1].offset + 1 for tp, messages in batches.items()})
        except (CommitFailedError, KafkaError) as exc:  # a rebalance: whoever gets the partition answers them again
            log.warning("verification offsets not committed", extra={"stage": "verify", "error": str(exc)[:300]})

    def _handled(self, topic: str, key: bytes | None, value: bytes | None) -> Reply | None:
        try:
            reply = self._verifications.handle(topic, key, value)
        except Exception:  # a bug must not stop every agency's verifications: this message is dropped, and counted
            log.exception("verification request failed", extra={"stage": "verify", "topic": topic})
            reply = None
        if reply is None:
            self._counted.labels(topics.verify_agency(topic) or "", KAFKA if topics.verify_agency(topic) else HTTP,
                                 UNREADABLE).inc()
        return reply

    def _told(self, reply: Reply) -> None:
        self.answered += 1
        count = self._counted.labels
        if reply.subscription is None:
            count(reply.agency, reply.channel, REFUSED).inc()
            return
        for answer in reply.value["answers"]:
            count(reply.agency, reply.channel, answer.get("verdict") or ERROR).inc()

    def _report(self, reply: Reply) -> list[tuple[str, bytes, bytes]]:
        """What ``on_answered`` reports of an answered batch (nothing for a refused one)."""
        if reply.subscription is None or (reply.topic, reply.key) in self._reported:
            return []
        try:
            return list(self._on_answered(reply.subscription, reply.channel, reply.requests, reply.answers))
        except Exception:  # the hook's failure is its own; the asker has its reply
            log.exception("on_answered failed", extra={"stage": "verify", "agency": reply.agency})
            return []

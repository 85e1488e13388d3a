"""Verification over HTTP: the control plane hands an agency's batch to the stream workers over Kafka and waits.

    gateway = VerificationGateway(bootstrap, producer, codec, schema_id_of=control.schema_id)
    gateway.start()                                        # the reply dispatcher's thread
    answers = await gateway.verify("bo-y-te-bhxh", "bo-y-te-bhxh:population.citizen", requests)
    gateway.close()

The control plane holds no registry: the workers do (`streams.verifying`). A batch goes to
``gsp.verify.requests`` in chunks of `CHUNK` requests (a Kafka message stays far below the broker's
size limit, and the chunks spread over the workers), each a VerificationRequest with a fresh
correlation id and the agency slug of the caller's credential. One dispatcher thread per control
plane reads every partition of ``gsp.verify.replies`` from its end (positioned before the first
batch is sent, so no reply can pass unseen) and hands each reply to the caller waiting for its
correlation id; replies nobody waits for (another control plane's, a late one) are dropped.

Supervised: when the dispatcher fails it is started again after `RETRY_S`; meanwhile `running` is
False, callers get `VerificationUnavailable` (503) and `health` says why. A batch the workers do
not answer within ``timeout_s`` is a `VerificationTimeout` (504).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import socket
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from gsp.errors import GspError
from schemas import topics
from schemas.codec import Codec, CodecError
from streams.verify import REQUEST_ID, split

__all__ = ["CHUNK", "RETRY_S", "VerificationGateway", "VerificationTimeout", "VerificationUnavailable"]

log = logging.getLogger("gsp.verify")

CHUNK = 500  # requests per Kafka message: a few tens of kB
RETRY_S = 2.0


class VerificationUnavailable(GspError):
    """The control plane cannot reach the stream workers now (its reply dispatcher is down, the broker refused
    the batch, the workers refused it); asking again later may work."""

    http_status = 503


class VerificationTimeout(GspError):
    """No stream worker answered in time."""

    http_status = 504


_Reply = concurrent.futures.Future  # of a decoded VerificationReply


class VerificationGateway:
    def __init__(self, bootstrap: str, producer: KafkaProducer, codec: Codec, *, schema_id_of: Callable[[str], int],
                 timeout_s: float = 30.0, chunk: int = CHUNK) -> None:
        """``producer``: acks from all replicas (the control plane's); ``schema_id_of``: a registry subject's latest
        schema id (`ControlPlane.schema_id`)."""
        self._bootstrap = bootstrap
        self._producer = producer
        self._codec = codec
        self._schema_id_of = schema_id_of
        self.timeout_s = timeout_s
        self._chunk = chunk
        self._waiting: dict[str, _Reply[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._reading = threading.Event()  # positioned at the end of every replies partition, reading
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failure: str | None = None
        self.restarts = 0

    # the dispatcher

    def start(self) -> None:
        self._thread = threading.Thread(target=self._supervise, name="verify-replies", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._fail_waiting("the control plane is stopping")

    @property
    def running(self) -> bool:
        """Replies can be received: the dispatcher is alive and positioned."""
        return self._reading.is_set() and self._thread is not None and self._thread.is_alive()

    def health(self) -> dict[str, Any]:
        """For /health: whether replies are being read, and why not."""
        died = self._thread is not None and not self._thread.is_alive() and not self._stop.is_set()
        starting = not died and self._failure is None and self.restarts == 0
        state = "reading" if self.running else "starting" if starting else "down"
        return {"replies": state, "waiting": len(self._waiting), "restarts": self.restarts,
                **({"error": self._failure} if state == "down" and self._failure else {})}

    def wait_running(self, timeout_s: float) -> bool:
        return self._reading.wait(timeout_s)

    def _supervise(self) -> None:
        while not self._stop.is_set():
            try:
                self._dispatch()
            except Exception as exc:  # the broker went away, a bug: callers get 503 until it runs again
                self._failure = f"{type(exc).__name__}: {exc}"[:300]
                log.exception("verification reply dispatcher failed; starting it again",
                              extra={"stage": "verify", "restarts": self.restarts})
            finally:
                self._reading.clear()
            self._fail_waiting("the control plane stopped reading verification replies; ask again")
            if self._stop.wait(RETRY_S):
                return
            self.restarts += 1

    def _dispatch(self) -> None:
        if not _reachable(self._bootstrap):
            raise KafkaError(f"no broker accepts a connection at {self._bootstrap}")
        # A caller waits for each reply: a fetch returns within 50 ms, not kafka-python's 500.
        consumer = KafkaConsumer(bootstrap_servers=self._bootstrap, enable_auto_commit=False,
                                 client_id="gsp-verify-replies", fetch_max_wait_ms=50)
        try:
            partitions = consumer.partitions_for_topic(topics.VERIFY_REPLIES)
            if not partitions:
                raise KafkaError(f"topic {topics.VERIFY_REPLIES} does not exist")
            tps = [TopicPartition(topics.VERIFY_REPLIES, p) for p in sorted(partitions)]
            consumer.assign(tps)
            consumer.seek_to_end(*tps)
            for tp in tps:
                consumer.position(tp)  # resolve the end now: a reply written after this is read
            self._failure = None
            self._reading.set()
            log.info("reading verification replies", extra={"stage": "verify", "partitions": len(tps)})
            while not self._stop.is_set():
                for messages in consumer.poll(timeout_ms=200, max_records=500).values():
                    for message in messages:
                        self._deliver(message.value)
        finally:
            consumer.close()

    def _deliver(self, value: bytes | None) -> None:
        try:
            _, reply = self._codec.decode(value)
        except CodecError as exc:
            log.warning("unreadable verification reply ignored", extra={"stage": "verify", "error": str(exc)[:300]})
            return
        with self._lock:
            waiting = self._waiting.pop(str(reply.get("correlation_id")), None)
        if waiting is not None and not waiting.done():
            waiting.set_result(reply)

    def _fail_waiting(self, why: str) -> None:
        with self._lock:
            waiting, self._waiting = list(self._waiting.values()), {}
        for future in waiting:
            if not future.done():
                future.set_exception(VerificationUnavailable(why))

    # asking

    async def verify(self, agency: str, subscription_id: str, requests: Sequence[Mapping[str, Any]]
                     ) -> list[dict[str, Any]]:
        """The workers' answers to ``requests`` (flat, already valid for the approval: `streams.verify.invalid`),
        in order, under ``agency``'s verify subscription ``subscription_id``."""
        if not self.running:
            raise VerificationUnavailable("verification is unavailable: the control plane is not reading the "
                                          "workers' replies (see /health); ask again shortly")
        chunks = {uuid.uuid4().hex: requests[at:at + self._chunk] for at in range(0, len(requests), self._chunk)}
        futures: dict[str, _Reply[dict[str, Any]]] = {cid: concurrent.futures.Future() for cid in chunks}
        with self._lock:
            self._waiting.update(futures)
        try:
            await asyncio.to_thread(self._send, agency, subscription_id, chunks)
            replies = await asyncio.wait_for(asyncio.gather(*(asyncio.wrap_future(f) for f in futures.values())),
                                             timeout=self.timeout_s)
        except TimeoutError:
            raise VerificationTimeout(f"no stream worker answered within {self.timeout_s:g} s; is a worker running "
                                      "(gsp serve, gsp worker)?") from None
        finally:
            with self._lock:
                for cid in futures:
                    self._waiting.pop(cid, None)
        answers: list[dict[str, Any]] = []
        for reply in replies:
            if reply.get("error"):
                raise VerificationUnavailable(f"the stream workers refused the batch: {reply['error']}")
            answers.extend(_plain(a) for a in reply["answers"])
        if len(answers) != len(requests):
            raise VerificationUnavailable(f"the stream workers answered {len(answers)} of {len(requests)} requests")
        return answers

    def _send(self, agency: str, subscription_id: str, chunks: Mapping[str, Sequence[Mapping[str, Any]]]) -> None:
        schema_id = self._schema_id_of(topics.subject(topics.VERIFY_REQUESTS))
        try:
            sent = [self._producer.send(topics.VERIFY_REQUESTS, key=cid.encode(), value=self._codec.encode(schema_id, {
                "correlation_id": cid, "agency": agency, "subscription_id": subscription_id,
                "requests": [_item(r) for r in chunk]})) for cid, chunk in chunks.items()]
            for future in sent:
                future.get(timeout=self.timeout_s)
        except KafkaError as exc:
            raise VerificationUnavailable(f"the broker did not take the verification batch: {exc}") from None


def _reachable(bootstrap: str) -> bool:
    """Whether a bootstrap server accepts a TCP connection. Probed before a client is made: kafka-python 3.0 leaves
    the I/O thread of a consumer whose constructor could not bootstrap running, one more per retry."""
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=2.0):
                return True
        except (OSError, ValueError):
            continue
    return False


def _item(request: Mapping[str, Any]) -> dict[str, Any]:
    """A flat request as a VerificationItem."""
    request_id, values = split(request)
    return {REQUEST_ID: request_id, "fields": values}


def _plain(answer: Mapping[str, Any]) -> dict[str, Any]:
    """An answer as the API gives it: request_id with verdict and mask, or with error; no empty fields."""
    if answer.get("error"):
        return {REQUEST_ID: answer.get(REQUEST_ID), "error": answer["error"]}
    return {REQUEST_ID: answer.get(REQUEST_ID), "verdict": answer["verdict"], "mask": dict(answer["mask"])}

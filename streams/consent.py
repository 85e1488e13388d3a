"""The consents known to a worker, read whole from the compacted ``gsp.consent`` topic, and the barrier that
makes a withdrawal hold.

A subscription whose legal basis is consent shares a person's records only while the latest
event for (subscription, person) says given. A withdrawal is acknowledged once the broker has it;
to make "acknowledged" mean "nothing more is shared", a share agent with such subscriptions calls
`ConsentBook.barrier` before each micro-batch: it asks the broker where the topic ends and waits
until this worker has applied everything up to there. A record produced after the acknowledgement
is read after it, so by the time it is shared its person's withdrawal has been applied. The cost
is one ListOffsets request per micro-batch, only while a consent-based subscription exists.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas import topics
from schemas.codec import Codec, CodecError
from streams.follow import follow_topic

__all__ = ["ConsentBook", "ConsentUnavailable"]

log = logging.getLogger("gsp.streams.consent")


class ConsentUnavailable(RuntimeError):
    """The worker could not confirm it holds every consent event: a consent-based share must wait."""


class ConsentBook:
    def __init__(self, codec: Codec) -> None:
        self._codec = codec
        self._given: set[tuple[str, str]] = set()   # (subscription id, personal id) with consent on record
        self._applied: dict[int, int] = {}          # partition -> next offset to apply
        self._probe: AIOKafkaConsumer | None = None

    def __len__(self) -> int:
        return len(self._given)

    def allows(self, subscription_id: str, personal_id: str | None) -> bool:
        return personal_id is not None and (subscription_id, personal_id) in self._given

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        if key is None:
            log.error("consent event without a key ignored")
            return
        pair = key.decode(errors="replace").split("|", 1)
        if value is None:  # a tombstone: no consent on record
            if len(pair) == 2:
                self._given.discard((pair[0], pair[1]))
            return
        try:
            _, event = self._codec.decode(value)
            entry = (str(event["subscription_id"]), str(event["personal_id"]))
            given = bool(event["given"])
        except (CodecError, KeyError, TypeError, ValueError) as exc:
            # Unreadable: fail closed for the pair the key names (its consent is not on record).
            log.error("unreadable consent event ignored", extra={"error": str(exc)[:200]})
            if len(pair) == 2:
                self._given.discard((pair[0], pair[1]))
            return
        if given:
            self._given.add(entry)
        else:
            self._given.discard(entry)

    def _progress(self, partition: int, next_offset: int) -> None:
        self._applied[partition] = next_offset

    async def follow(self, bootstrap: str, stopped: asyncio.Event) -> None:
        self._probe = AIOKafkaConsumer(bootstrap_servers=bootstrap, client_id="gsp-consent-probe")
        await self._probe.start()
        try:
            await follow_topic(bootstrap, topics.CONSENT, self.apply, stopped, client_id="gsp-consent",
                               applied=self._progress)
        finally:
            await self._probe.stop()

    async def barrier(self, *, timeout_s: float = 10.0) -> None:
        """Return once every consent event on the topic now has been applied; ConsentUnavailable after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while self._probe is None:
            if time.monotonic() > deadline:
                raise ConsentUnavailable("the consent reader has not started")
            await asyncio.sleep(0.01)
        partitions = self._probe.partitions_for_topic(topics.CONSENT) or set()
        if not partitions:
            await self._probe.topics()
            partitions = self._probe.partitions_for_topic(topics.CONSENT) or set()
        tps = [TopicPartition(topics.CONSENT, p) for p in partitions]
        end = await self._probe.end_offsets(tps) if tps else {}
        while any(self._applied.get(tp.partition, 0) < at for tp, at in end.items()):
            if time.monotonic() > deadline:
                raise ConsentUnavailable(f"consent events up to {end} not yet applied ({self._applied})")
            await asyncio.sleep(0.005)

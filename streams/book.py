"""The subscriptions known to a worker, read from the compacted ``gsp.subscriptions`` topic.

Every worker reads every partition from the beginning (no consumer group):
each one must know every subscription to share the partitions it owns.
"""

from __future__ import annotations

import asyncio
import logging

from schemas import topics
from schemas.codec import Codec, CodecError
from streams.follow import follow_topic
from streams.share import Subscription
from streams.verify import STREAM, VERIFY

__all__ = ["SubscriptionBook"]

log = logging.getLogger("gsp.streams.subscriptions")


class SubscriptionBook:
    def __init__(self, codec: Codec) -> None:
        self._codec = codec
        self._by_id: dict[str, Subscription] = {}
        # Set once every subscription on the topic when the worker started has been read: nothing is shared
        # before, or a restarted worker would share its first records with nobody and commit them.
        self.caught_up = asyncio.Event()

    def for_dataset(self, dataset: str) -> list[Subscription]:
        """The subscriptions records of ``dataset`` are shared with: stream mode only (a verify one never receives any)."""
        return [s for s in self._by_id.values() if s.dataset == dataset and s.mode == STREAM]

    def verifying(self, agency: str) -> list[Subscription]:
        """The verify subscriptions of the agency whose slug is ``agency``, by subscription id."""
        return sorted((s for s in self._by_id.values() if s.agency == agency and s.mode == VERIFY),
                      key=lambda s: s.subscription_id)

    def needs_consent(self, dataset: str) -> bool:
        """Whether a subscription to ``dataset`` has consent as its legal basis."""
        return any(s.consent for s in self.for_dataset(dataset))

    def __len__(self) -> int:
        return len(self._by_id)

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        """One event of the topic: an upsert, or a deletion when the value is null."""
        try:
            subscription_id = _text(key)
        except ValueError as exc:
            log.error("subscription event without a readable key ignored", extra={"error": str(exc)})
            return
        if value is None:
            self._by_id.pop(subscription_id, None)
            return
        try:
            _, event = self._codec.decode(value)
            self._codec.add(event["schema_id"], event["schema"])
            subscription = Subscription.from_event(event)
        except (CodecError, KeyError, TypeError, ValueError) as exc:
            # Garbage, another contract's record, a bad key: nothing is shared under it (fail closed), and the
            # follower goes on to the next event.
            log.error("unreadable subscription event ignored", extra={"subscription": subscription_id, "error": str(exc)})
            self._by_id.pop(subscription_id, None)
            return
        if not subscription.pseudonym_key:  # published by an older control plane: sharing it would leak source keys
            log.error("subscription without a pseudonym key ignored", extra={"subscription": subscription_id})
            self._by_id.pop(subscription_id, None)
            return
        self._by_id[subscription_id] = subscription

    async def follow(self, bootstrap: str, stopped: asyncio.Event) -> None:
        await follow_topic(bootstrap, topics.SUBSCRIPTIONS, self.apply, stopped, client_id="gsp-subscriptions",
                           caught_up=self.caught_up)


def _text(key: bytes | None) -> str:
    """The subscription id a key holds; ValueError for none or bytes that are not UTF-8."""
    if key is None:
        raise ValueError("no key")
    return key.decode()

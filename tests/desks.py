"""What the stewards' desk tests share: a started control plane with a desk and its indexer, its routes served
behind the authorisation matrix (with the control plane's identity store), and an HTTP call with a credential."""

from __future__ import annotations

import contextlib
import json
import random
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa
from kafka import KafkaProducer

from gsp.desks.base import AuditLog
from gsp.governance.control import ControlPlane
from gsp.http.access import Access
from gsp.http.routes import Route
from gsp.http.server import ApiServer, application
from schemas.codec import Codec

__all__ = ["Plane", "call", "msisdn", "running_plane", "serving"]


@dataclass
class Plane:
    """The control plane, the desk under test and its indexer (in a consumer group of the test's own)."""

    bootstrap: str
    engine: sa.Engine
    control: ControlPlane
    codec: Codec
    producer: KafkaProducer
    audit: AuditLog
    desk: Any
    indexer: Any
    group: str
    system: str  # a source system of the test's own, so event ids never collide with other tests'

    def schema_id(self, subject: str) -> int:
        return self.control.schema_id(subject)

    def send(self, topic: str, key: bytes, value: bytes) -> tuple[int, int]:
        meta = self.producer.send(topic, key=key, value=value).get(timeout=30)
        return meta.partition, meta.offset


P = TypeVar("P", bound=Plane)


@contextlib.contextmanager
def running_plane(plane: type[P], desk: type[Any], indexer: type[Any], bootstrap: str, engine: sa.Engine) -> Iterator[P]:
    """A started control plane with ``desk`` and ``indexer`` built on it, as ``plane``."""
    control = ControlPlane(engine, bootstrap=bootstrap, partitions=4)
    control.start()
    codec = Codec(resolve=lambda i: control.registry.schema_by_id(i).schema)
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    audit = AuditLog(producer, codec, register=control.registry.register)
    group = f"test-{indexer.stage}-{uuid.uuid4().hex[:8]}"
    started = plane(bootstrap, engine, control, codec, producer, audit,
                    desk(engine, producer=producer, codec=codec, schema_id_of=control.schema_id, audit=audit),
                    indexer(bootstrap, engine, codec, group=group), group, f"telecom.test-{uuid.uuid4().hex[:8]}")
    try:
        yield started
    finally:
        started.indexer.close()
        producer.close()
        control.close()


@contextlib.contextmanager
def serving(plane: Plane, routes: Iterable[Route]) -> Iterator[str]:
    """``routes`` served as the control plane serves them, each checked against the authorisation matrix with the
    plane's identity store (register credentials with `tests.credentials.Cast`); the server's URL."""
    server = ApiServer(application(routes, title="desk under test", access=Access(plane.control.identities)))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def msisdn() -> str:
    """A subscriber's number of the test's own; 091 is a current VinaPhone prefix, so the number passes cleaning."""
    return "091" + "".join(random.choices("0123456789", k=7))


def call(url: str, method: str = "GET", body: bytes | None = None, *,
         headers: Mapping[str, str] | None = None) -> tuple[int, Any]:
    """Status and answer: JSON decoded, any other content as text. ``headers``: the caller's credential, as
    `tests.credentials.Cast.headers` gives it."""
    request = urllib.request.Request(url, method=method, data=body,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read().decode("utf-8")
            return response.status, json.loads(text) if response.headers.get_content_type() == "application/json" else text
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)

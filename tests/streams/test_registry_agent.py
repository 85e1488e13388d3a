"""The registry agent's micro-batch: the table and its changelog written in one go, as Faust would have written them.

The changelog is what every worker's replica and Faust's own table recovery read, so each change must land
where Faust puts it (the input event's partition), in the table's serialization, a person's last entry last.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from functools import partial
from typing import Any

import faust
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry, Counter

from gsp.governance.topology import ensure_topics
from schemas.codec import Codec, contract
from schemas.datasets import dataset
from schemas.registry import RegistryUnavailable
from streams.agents import Agents, registry_batch
from streams.app import _changelog_decoder
from streams.linkage import Model
from streams.matching import DEFAULT_MODEL, Linker
from streams.metrics import StageMetrics
from streams.produce import BatchSender, Outbox
from streams.replica import Replica
from streams.stages import RegistryStage
from tests.topics import read_topic

CITIZEN_ID, UNREGISTERED_ID = 1, 2
CITIZENS, SUBSCRIBERS = dataset("population.citizen"), dataset("telecom.subscriber")
HEADER = {"event_id": "e-1", "source_system": "population.csdlqg", "source_key": "001085012345",
          "source_version": "1:1", "ingested_at": 0}
CITIZEN: dict[str, Any] = {"header": HEADER, "personal_id": "001085012345", "full_name": "Nguyễn Văn Hòa", "birth_date": "1985-03-02",
           "sex": "MALE", "birth_registration_province": "001",
           "residence": {"province_code": "01", "ward_code": "00004", "address_line": "12 Phố Huế"},
           "phone": None, "status": "ALIVE", "updated_at": 1, "findings": []}


@dataclass(frozen=True)
class Message:
    partition: int


@dataclass(frozen=True)
class Event:
    """What the agent reads of a Faust event."""
    value: bytes | None
    message: Message


def citizen(codec: Codec, personal_id: str, full_name: str, *, schema_id: int = CITIZEN_ID) -> bytes:
    return codec.encode(schema_id, {**CITIZEN, "personal_id": personal_id, "full_name": full_name})


def entry_of(stage: RegistryStage, event: Event) -> dict[str, Any]:
    found = stage.process(event.value)
    assert found is not None
    return found[1]


def registry_table(bootstrap: str) -> tuple[faust.App, Any]:
    app = faust.App(f"registry-test-{uuid.uuid4().hex[:8]}", broker=f"kafka://{bootstrap}", store="memory://")
    table = app.Table("registry", key_type=str, value_type=None, partitions=4)
    ensure_topics(bootstrap, {table.changelog_topic.get_topic_name(): (4, {})})
    return app, table


def run_with_outbox(bootstrap: str, work: Any) -> Any:
    """``work(outbox)`` against a started producer, flushed before it stops; what ``work`` returned."""
    async def run() -> Any:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        try:
            errors = Counter("errors", "", ["stage", "dataset"], registry=CollectorRegistry())
            result = await work(Outbox(BatchSender(lambda: producer), errors))
            await producer.flush()
            return result
        finally:
            await producer.stop()
    return asyncio.run(run())


def test_a_batch_writes_each_persons_last_entry_to_the_table_and_its_changelog(bootstrap: str) -> None:
    codec = Codec()
    codec.add(CITIZEN_ID, contract("vn.gsp.population.Citizen"))
    stage = RegistryStage(codec, CITIZENS, [SUBSCRIBERS])
    app, table = registry_table(bootstrap)
    events = [Event(citizen(codec, "001085012345", "Nguyễn Văn Hoà"), Message(2)),
              Event(citizen(codec, "079190000001", "Trần Thị Lan"), Message(0)),
              Event(b"\x13\x37 not a record", Message(1)),  # logged by the stage and skipped
              Event(citizen(codec, "001085012345", "Nguyễn Văn Hòa Bình"), Message(2)),
              Event(citizen(codec, "036200000009", "Lê Minh"), Message(3))]

    written = run_with_outbox(bootstrap, lambda outbox: registry_batch(events, stage=stage, table=table, outbox=outbox))

    entries = {"001085012345": entry_of(stage, events[3]), "079190000001": entry_of(stage, events[1]),
               "036200000009": entry_of(stage, events[4])}
    assert written == 3
    assert dict(table.data) == entries
    assert entries["001085012345"]["full_name"] == "Nguyễn Văn Hòa Bình"  # the later entry won
    changes = read_topic(bootstrap, table.changelog_topic.get_topic_name())
    # One change per person, on the partition of the event it came from, as Faust's `table[key] = value` sends it.
    assert sorted((m.partition, m.key) for m in changes) == [(0, b'"079190000001"'), (2, b'"001085012345"'),
                                                            (3, b'"036200000009"')]
    for m in changes:
        personal_id = m.key.decode().strip('"')
        assert m.key == table.changelog_topic.prepare_key(personal_id, table.key_serializer)[0]
        assert m.value == table.changelog_topic.prepare_value(entries[personal_id], table.value_serializer)[0]
    # Every worker's replica reads the changelog into the same registry as the table.
    replica = Replica(Linker(Model.load(DEFAULT_MODEL)), codec, decode_change=_changelog_decoder(app, table))
    for m in changes:
        replica.apply_registry_change(m.key, m.value)
    assert replica.linker.entries == 3
    for personal_id, entry in entries.items():
        held = replica.linker.entry(personal_id)
        assert held is not None and held == {name: entry[name] for name in held}


def test_a_batch_the_schema_registry_cannot_describe_yet_writes_nothing_until_its_retry(bootstrap: str) -> None:
    attempts: list[dict[str, Any]] = []

    def resolve(schema_id: int) -> str:  # the registry out of reach twice, then back
        attempts.append(dict(table.data))
        if len(attempts) < 3:
            raise RegistryUnavailable("http://127.0.0.1:9", "connection refused")
        return json.dumps(contract("vn.gsp.population.Citizen"))

    known = Codec()
    known.add(CITIZEN_ID, contract("vn.gsp.population.Citizen"))
    known.add(UNREGISTERED_ID, contract("vn.gsp.population.Citizen"))
    codec = Codec(resolve=resolve)
    codec.add(CITIZEN_ID, contract("vn.gsp.population.Citizen"))
    stage = RegistryStage(codec, CITIZENS, [SUBSCRIBERS])
    _, table = registry_table(bootstrap)
    events = [Event(citizen(known, "001085012345", "Nguyễn Văn Hòa"), Message(0)),
              Event(citizen(known, "079190000001", "Trần Thị Lan", schema_id=UNREGISTERED_ID), Message(1))]
    crashed: list[str] = []
    agents = Agents(app=None, outbox=None, metrics=StageMetrics.create(CollectorRegistry()),  # type: ignore[arg-type]
                    crash=lambda: crashed.append("crash"), max_backoff_s=0.02)

    run_with_outbox(bootstrap, lambda outbox: agents._guard(
        "registry", partial(registry_batch, events, stage=stage, table=table, outbox=outbox)))

    assert attempts == [{}, {}, {}]  # nothing of a batch is written before all of it is read
    assert sorted(table.data) == ["001085012345", "079190000001"] and crashed == []
    changes = read_topic(bootstrap, table.changelog_topic.get_topic_name())
    assert sorted(m.key for m in changes) == [b'"001085012345"', b'"079190000001"']

import json
import os
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer

from connectors.file_source import FileSource, FileSourceConfig
from connectors.runner import SourceRunner
from gsp.governance.topology import ensure_topics
from schemas import topics
from schemas.codec import Codec, contract
from schemas.datasets import dataset
from schemas.registry import RegistryClient
from tests.connectors.subscriber_runner import SUBSCRIBER, codec, subscriber_runner
from tests.gsp.cli.test_cli import gsp
from tests.gsp.cli.test_errors import one_line_error
from tests.topics import read_topic

CSV_HEADER = "msisdn,carrier,subscriber_name,id_number,birth_date,address,updated_at\n"



def csv_row(n: int, address: str = "") -> str:
    return f"09{n:08d},Viettel,Lê Thị Thu,0011850{n:05d},1985-01-02,{address},{1000 + n}\n"


def json_row(n: int) -> str:
    return json.dumps({"msisdn": f"09{n:08d}", "carrier": "VinaPhone", "subscriber_name": "Trần Văn An",
                       "id_number": f"0010850{n:05d}", "birth_date": "1985-01-02", "updated_at": 1000 + n},
                      ensure_ascii=False) + "\n"


def file_source(directory: Path, name: str) -> FileSource:
    return FileSource(directory, FileSourceConfig(name=name, key_field="msisdn", contract=SUBSCRIBER))


def runner(bootstrap: str, source: Any, suffix: str, *, batch_size: int = 2) -> tuple[SourceRunner, KafkaProducer]:
    return subscriber_runner(bootstrap, source, f"f{suffix}", source_system="telecom.files", raw_partitions=2,
                             batch_size=batch_size)


def drain(run: SourceRunner, *, max_batches: int = 50) -> int:
    handled = 0
    for _ in range(max_batches):
        n = run.run_once()
        if n == 0:
            return handled
        handled += n
    raise AssertionError("the source did not drain")


def published(bootstrap: str, suffix: str) -> list[dict[str, Any]]:
    return [codec().decode(m.value)[1] for m in read_topic(bootstrap, f"raw.f{suffix}")]


def issues(bootstrap: str, suffix: str) -> list[dict[str, Any]]:
    return [codec().decode(m.value)[1] for m in read_topic(bootstrap, f"quarantine.f{suffix}")]


def test_dropped_files_are_published_once_and_bad_lines_quarantined_with_file_and_line(bootstrap: str, tmp_path: Path) -> None:
    suffix = uuid.uuid4().hex[:8]
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "a.csv").write_text(CSV_HEADER + csv_row(1) + csv_row(2, "Hà Nội") + "0900000003,Viettel,short\n"
                                 + csv_row(4), encoding="utf-8")
    (inbox / "b.jsonl").write_text(json_row(5) + '{"msisdn": "0900000006", oops\n' + "\n" + json_row(7), encoding="utf-8")
    (inbox / "c.csv.part").write_text(CSV_HEADER + csv_row(8), encoding="utf-8")   # still being written
    (inbox / ".d.csv").write_text(CSV_HEADER + csv_row(9), encoding="utf-8")       # hidden: never taken
    (inbox / "notes.txt").write_text("not a data file\n", encoding="utf-8")
    run, producer = runner(bootstrap, file_source(inbox, f"files-{suffix}"), suffix)
    try:
        assert drain(run) == 7
        (inbox / "c.csv.part").rename(inbox / "c.csv")  # the sender finished writing
        assert drain(run) == 1
        assert drain(run) == 0
    finally:
        producer.close()
        run.close()

    events = published(bootstrap, suffix)
    assert sorted(e["msisdn"] for e in events) == [f"09{n:08d}" for n in (1, 2, 4, 5, 7, 8)]
    assert len({e["header"]["event_id"] for e in events}) == 6
    assert {e["msisdn"]: e["address"] for e in events if e["carrier"] == "Viettel"}["0900000001"] is None  # empty -> null
    assert {e["updated_at"] for e in events} >= {1001, 1005}  # CSV text converted to the contract's long
    assert all(e["header"]["deleted"] is False for e in events)
    held = sorted(issues(bootstrap, suffix), key=lambda i: i["reason"])
    assert [(i["rule"], i["reason"].split(":")[0]) for i in held] == [("file.line", "a.csv line 4"), ("file.line", "b.jsonl line 2")]
    assert "3 columns where the header has 7" in held[0]["reason"] and "invalid JSON" in held[1]["reason"]
    assert held[1]["original"] == b'{"msisdn": "0900000006", oops'
    assert sorted(p.name for p in (inbox / "done").iterdir()) == ["a.csv", "b.jsonl", "c.csv"]
    assert sorted(p.name for p in inbox.iterdir() if p.is_file()) == [".d.csv", "notes.txt"]


def test_a_restart_mid_file_resumes_after_the_stored_line_and_a_crash_before_the_move_rereads_nothing(
        bootstrap: str, tmp_path: Path) -> None:
    suffix = uuid.uuid4().hex[:8]
    (tmp_path / "a.jsonl").write_text("".join(json_row(n) for n in range(1, 6)), encoding="utf-8")
    first, producer = runner(bootstrap, file_source(tmp_path, f"files-{suffix}"), suffix)
    assert first.run_once() == 2
    producer.close()
    first.close()  # killed: lines 3 to 5 not read yet

    second, producer = runner(bootstrap, file_source(tmp_path, f"files-{suffix}"), suffix)
    assert second.run_once() == 2 and second.run_once() == 1  # its last line: published, position stored …
    producer.close()
    second.close()  # … and killed before the next poll moved the file
    assert (tmp_path / "a.jsonl").exists()

    third, producer = runner(bootstrap, file_source(tmp_path, f"files-{suffix}"), suffix)
    assert third.run_once() == 0
    producer.close()
    third.close()
    assert (tmp_path / "done" / "a.jsonl").exists() and not (tmp_path / "a.jsonl").exists()
    assert sorted(e["msisdn"] for e in published(bootstrap, suffix)) == [f"09{n:08d}" for n in range(1, 6)]


def test_symlinks_and_names_outside_the_directory_are_never_opened(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (tmp_path / "x.csv").write_text(CSV_HEADER + csv_row(1), encoding="utf-8")
    os.symlink("/etc/passwd", inbox / "passwd.csv")
    os.symlink(tmp_path / "x.csv", inbox / "x.csv")
    source = file_source(inbox, "files")
    source.start({"file": "../x.csv", "sha256": "0" * 64, "line": 1})
    assert source.poll(10) == []
    assert sorted(p.name for p in (inbox / "rejected").iterdir()) == ["passwd.csv", "x.csv"]
    assert (inbox / "rejected" / "passwd.csv").is_symlink()  # the link was moved, its target untouched
    assert (tmp_path / "x.csv").read_text(encoding="utf-8") == CSV_HEADER + csv_row(1)
    assert source.files == {"done": 0, "rejected": 2}


def test_a_file_changed_after_it_was_taken_is_refused_not_reread(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text(CSV_HEADER + csv_row(1) + csv_row(2), encoding="utf-8")
    outcomes: list[str] = []
    source = FileSource(tmp_path, FileSourceConfig(name="files", key_field="msisdn"), on_file=outcomes.append)
    source.start(None)
    [record] = source.poll(1)
    assert record.position["line"] == 2 and record.value["updated_at"] == "1001"  # no contract: strings stay strings
    (tmp_path / "a.csv").write_text(CSV_HEADER + csv_row(1) + csv_row(3), encoding="utf-8")

    restarted = FileSource(tmp_path, FileSourceConfig(name="files", key_field="msisdn"), on_file=outcomes.append)
    restarted.start(record.position)
    assert restarted.poll(10) == []
    assert (tmp_path / "rejected" / "a.csv").exists() and outcomes == ["rejected"]


def test_a_file_changed_while_it_was_read_goes_to_rejected_and_a_name_taken_before_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text(json_row(1), encoding="utf-8")
    source = file_source(tmp_path, "files")
    source.start(None)
    assert [r.key for r in source.poll(10)] == ["0900000001"]
    (tmp_path / "a.jsonl").write_text(json_row(1) + json_row(2), encoding="utf-8")
    assert source.poll(10) == []
    assert (tmp_path / "rejected" / "a.jsonl").exists() and not (tmp_path / "done" / "a.jsonl").exists()

    (tmp_path / "b.jsonl").write_text(json_row(3), encoding="utf-8")
    assert len(source.poll(10)) == 1 and source.poll(10) == []
    (tmp_path / "b.jsonl").write_text(json_row(3), encoding="utf-8")  # dropped again under the same name
    assert source.poll(10) == []
    assert (tmp_path / "rejected" / "b.jsonl").exists() and source.files == {"done": 1, "rejected": 2}


def test_undecodable_utf8_a_non_object_and_a_value_of_the_wrong_type_are_bad_lines(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_bytes((CSV_HEADER + csv_row(1)).encode() + b"09,\xff\xfe,x,y,z,,1\n"
                                     + csv_row(2).replace(",1002", ",yesterday").encode())
    (tmp_path / "b.ndjson").write_text("[1, 2]\n", encoding="utf-8")
    source = file_source(tmp_path, "files")
    source.start(None)
    records = source.poll(10) + source.poll(10)
    problems = [(r.problem.rule, r.problem.reason) for r in records if r.problem is not None]
    assert [r.key for r in records if r.problem is None] == ["0900000001"]
    assert problems == [("file.line", "a.csv line 3: not UTF-8 (invalid start byte at byte 3)"),
                        ("file.line", "a.csv line 4: updated_at is not long: 'yesterday'"),
                        ("file.line", "b.ndjson line 1: a JSON list where an object was expected")]


@pytest.mark.parametrize("config, says", [
    ({"type": "ftp"}, "unknown connector type 'ftp'; known: sql, outbox, file"),
    ({"type": "file", "directory": "{tmp}/missing"}, "directory '{tmp}/missing' does not exist"),
    ({"type": "file", "directory": "{tmp}", "format": "xml"}, "unknown file format 'xml'; known: csv, jsonl"),
    ({"type": "file", "directory": "{tmp}", "table": "x"}, "unknown keys table"),
    ({"type": "file"}, "missing keys directory"),
    ({"type": "file", "directory": "{tmp}", "batch_size": 0}, "batch_size must be a positive number"),
    ({"type": "outbox", "database_url": "sqlite:///{tmp}/empty.db"}, "outbox table 'outbox' does not exist"),
    ({"database_url": "sqlite:///{tmp}/source.db", "table": "subscriber", "key_column": "msisdn",
      "soft_delete_column": "gone"}, "column 'gone' not found in table 'subscriber'"),
])
def test_connect_run_config_mistakes_are_one_line(tmp_path: Path, config: dict[str, Any], says: str) -> None:
    conn = sqlite3.connect(tmp_path / "source.db")
    conn.execute("CREATE TABLE subscriber (id INTEGER, updated_at INTEGER, msisdn TEXT)")
    conn.close()
    path = tmp_path / "connector.json"
    text = json.dumps({"name": "c", "dataset": "telecom.subscriber", **config}).replace("{tmp}", str(tmp_path))
    path.write_text(text, encoding="utf-8")
    line = one_line_error(gsp("connect", "run", str(path), "--once", env={"GSP_HOME": str(tmp_path)}))
    assert line.startswith(f"gsp: error: {path}: ") and says.replace("{tmp}", str(tmp_path)) in line


def test_connect_run_publishes_a_directory_under_its_own_source_system_and_stops_when_drained(
        bootstrap: str, tmp_path: Path, sqlite_engine: Any, serve_registry: Any) -> None:
    subscriber = dataset("telecom.subscriber")
    suffix = uuid.uuid4().hex[:8]
    inbox = tmp_path / "drop"
    inbox.mkdir()
    (inbox / "a.csv").write_text(CSV_HEADER + csv_row(1) + csv_row(2), encoding="utf-8")
    (inbox / "b.jsonl").write_text(json_row(3) + "[]\n", encoding="utf-8")
    ensure_topics(bootstrap, {topics.raw(subscriber.name): (1, {}), topics.quarantine(subscriber.name): (1, {})})
    config = tmp_path / "drop.json"
    config.write_text(json.dumps({"type": "file", "name": f"drop-{suffix}", "dataset": subscriber.name,
                                  "directory": str(inbox), "source_system": f"telecom.drop-{suffix}"}))
    with serve_registry(sqlite_engine) as url:
        registry = RegistryClient(url)
        registry.register(topics.subject(topics.raw(subscriber.name)), subscriber.avro)
        registry.register(topics.subject(topics.quarantine(subscriber.name)), contract("vn.gsp.quality.QualityIssue"))
        result = gsp("connect", "run", str(config), "--once",
                     env={"GSP_HOME": str(tmp_path), "GSP_KAFKA_BOOTSTRAP": bootstrap, "GSP_SCHEMA_REGISTRY_URL": url})
        assert result.returncode == 0, result.stderr
        assert "published 3, quarantined 1, files done 2, files rejected 0; no complete file left" in result.stderr
        c = Codec(resolve=registry.schema_by_id)
        mine = [c.decode(m.value)[1] for m in read_topic(bootstrap, topics.raw(subscriber.name))]
        mine = [e for e in mine if e["header"]["source_system"] == f"telecom.drop-{suffix}"]
    assert sorted(e["msisdn"] for e in mine) == ["0900000001", "0900000002", "0900000003"]
    assert sorted(p.name for p in (inbox / "done").iterdir()) == ["a.csv", "b.jsonl"]

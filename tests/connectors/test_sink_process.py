"""`gsp sink run` end to end on the embedded broker: share topic -> process -> SQLite rows, through a kill -9."""

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import sqlalchemy as sa

from gsp.governance.topology import ensure_topics
from schemas import topics
from schemas.registry import RegistryClient
from tests.connectors.sharing import SHARE_SCHEMA, publish


def rows(database: Path, table: str) -> int:
    engine = sa.create_engine(f"sqlite:///{database}")
    try:
        with engine.connect() as conn:
            return int(conn.exec_driver_sql(f"SELECT count(DISTINCT event_id) FROM {table}").scalar_one())
    except sa.exc.OperationalError:  # the process has not created the table yet
        return 0
    finally:
        engine.dispose()


def wait_rows(database: Path, table: str, expected: int, process: subprocess.Popen[str], *, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while rows(database, table) < expected:
        assert process.poll() is None, f"gsp sink run exited: {process.stderr.read() if process.stderr else ''}"
        assert time.monotonic() < deadline, f"{rows(database, table)} of {expected} rows after {timeout_s}s"
        time.sleep(0.2)


def test_sink_process_delivers_every_record_once_across_a_kill(
        bootstrap: str, tmp_path: Path, sqlite_engine: sa.Engine,
        serve_registry: Callable[[sa.Engine], AbstractContextManager[str]]) -> None:
    topic = f"share.t{uuid.uuid4().hex[:8]}.subscriber.v1"
    ensure_topics(bootstrap, {topic: (2, {})})
    database, table = tmp_path / "agency.db", topic.replace(".", "_")
    config = tmp_path / "sink.json"
    config.write_text(json.dumps({"topic": topic, "database_url": f"sqlite:///{database}", "max_records": 50}))
    with serve_registry(sqlite_engine) as registry_url:
        schema_id = RegistryClient(registry_url).register(topics.subject(topic), SHARE_SCHEMA)
        env = {**os.environ, "GSP_KAFKA_BOOTSTRAP": bootstrap, "GSP_SCHEMA_REGISTRY_URL": registry_url,
               "GSP_HOME": str(tmp_path / "home")}

        def start() -> subprocess.Popen[str]:
            return subprocess.Popen([sys.executable, "-m", "gsp", "sink", "run", str(config)], env=env, text=True,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        publish(bootstrap, topic, range(0, 400), schema_id=schema_id)
        first = start()
        wait_rows(database, table, 1, first)
        first.send_signal(signal.SIGKILL)  # mid-run: some batches written, maybe not committed
        first.wait(timeout=10)
        publish(bootstrap, topic, range(400, 600), schema_id=schema_id)
        second = start()
        try:
            wait_rows(database, table, 600, second)
            second.terminate()
            assert second.wait(timeout=30) == 0
            assert "written" in (second.stderr.read() if second.stderr else "")
        finally:
            if second.poll() is None:
                second.kill()
            second.wait(timeout=10)
            for process in (first, second):
                if process.stderr:
                    process.stderr.close()
    engine = sa.create_engine(f"sqlite:///{database}")
    with engine.connect() as conn:
        keys = conn.exec_driver_sql(f"SELECT source_key FROM {table}").scalars().all()
    engine.dispose()
    assert sorted(keys) == sorted(f"k{i}" for i in range(600))


def test_a_bad_sink_config_names_every_bad_key_in_one_line(tmp_path: Path) -> None:
    config = tmp_path / "sink.json"
    config.write_text(json.dumps({"topic": "share.a.b.v1", "tabel": "x", "batch": 3}))
    done = subprocess.run([sys.executable, "-m", "gsp", "sink", "run", str(config)], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "GSP_HOME": str(tmp_path)})
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "unknown keys batch, tabel" in done.stderr and "missing keys database_url" in done.stderr

"""Shared fixtures: the embedded broker, real databases (SQLite and PostgreSQL) and a real registry server.

PostgreSQL comes from ``GSP_TEST_POSTGRES_URL`` when set (its user must be
allowed to create databases), otherwise a throwaway cluster is started from
Debian's ``postgresql`` package on a free loopback port.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
import sqlalchemy
from aiohttp import web
from prometheus_client import CollectorRegistry

from gsp.governance.identity import Grant, IdentityStore, Role
from gsp.governance.registry import RegistryStore
from gsp.http.access import Access
from gsp.http.registry import registry_routes
from gsp.http.server import application
from gsp.runtime.embedded import running_broker
from gsp.runtime.services import ControlServices
from schemas.settings import Settings

_PG_MISSING = "PostgreSQL server binaries not found: install Debian package postgresql (make test does)"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pg_bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if not found:
        pytest.fail(_PG_MISSING, pytrace=False)
    return Path(found[-1]).parent


def _kafka_io_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("kafka-io")}


@pytest.fixture(autouse=True)
def no_kafka_client_left_open() -> Iterator[None]:
    """A test closes every kafka-python client it opened. A leaked client's I/O thread keeps reconnecting with
    random jitter, which made later hypothesis tests fail ("Do not use the random module inside strategies")."""
    before = _kafka_io_threads()
    yield
    leaked = _kafka_io_threads() - before
    for thread in leaked:
        thread.join(timeout=2.0)  # a client closed at the very end may still be winding down
    still = [t.name for t in leaked if t.is_alive()]
    assert not still, f"kafka-python clients left open: {still}"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """SQLAlchemy URL of a PostgreSQL database the tests may create databases in."""
    configured = os.environ.get("GSP_TEST_POSTGRES_URL")
    if configured:
        yield configured
        return
    bin_dir = _pg_bin_dir()
    workdir = Path(tempfile.mkdtemp(prefix="gsp-pg-"))
    # initdb refuses to run as root, so the cluster belongs to Debian's postgres user.
    as_owner: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(workdir, user="postgres", group="postgres")
        as_owner = ["runuser", "-u", "postgres", "--"]
    data, port = workdir / "data", _free_port()

    def pg(*args: str) -> None:
        subprocess.run([*as_owner, *args], check=True, capture_output=True, timeout=120)

    try:
        pg(str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8")
        pg(
            str(bin_dir / "pg_ctl"), "start", "-w", "-t", "60", "-D", str(data), "-l", str(workdir / "server.log"),
            "-o", f"-h 127.0.0.1 -p {port} -k {workdir} -c fsync=off -c full_page_writes=off",
        )
    except subprocess.CalledProcessError as exc:
        log = workdir / "server.log"
        detail = log.read_text() if log.exists() else exc.stderr.decode(errors="replace")
        shutil.rmtree(workdir, ignore_errors=True)
        pytest.fail(f"could not start PostgreSQL: {detail}", pytrace=False)
    admin = sqlalchemy.create_engine(f"postgresql+pg8000://postgres@127.0.0.1:{port}/postgres",
                                     isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql("CREATE DATABASE gsp")
        admin.dispose()
        yield f"postgresql+pg8000://postgres@127.0.0.1:{port}/gsp"
    finally:
        admin.dispose()
        subprocess.run([*as_owner, str(bin_dir / "pg_ctl"), "stop", "-D", str(data), "-m", "immediate"],
                       capture_output=True, timeout=60)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[sqlalchemy.Engine]:
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'gsp.db'}")
    yield engine
    engine.dispose()


@pytest.fixture
def services(bootstrap: str, sqlite_engine: sqlalchemy.Engine, tmp_path: Path) -> Iterator[ControlServices]:
    """A real control plane on the session's embedded broker and a SQLite database. ``services.api.url`` is what a
    user sets as GSP_API_URL; on start it writes the first admin credential to ``services.admin_token_file``
    (GSP_HOME/admin.token, here the test's tmp_path), which the CLI reads when GSP_TOKEN is unset."""
    running = ControlServices(Settings(home=tmp_path), bootstrap=bootstrap, engine=sqlite_engine,
                              metrics=CollectorRegistry())
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def postgresql_engine(postgres_url: str) -> Iterator[sqlalchemy.Engine]:
    """A fresh, empty database for one test, dropped afterwards."""
    url = sqlalchemy.make_url(postgres_url)
    name = f"test_{uuid.uuid4().hex}"
    admin = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine = sqlalchemy.create_engine(url.set(database=name))
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def registry_engine(request: pytest.FixtureRequest) -> sqlalchemy.Engine:
    """Each test using this runs once per supported database."""
    return request.getfixturevalue(f"{request.param}_engine")  # type: ignore[no-any-return]


@contextlib.contextmanager
def _serve(app: web.Application) -> Iterator[str]:
    """Run ``app`` on a free loopback port in a thread with its own event loop; yields its base URL."""
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app, access_log=None)
    started = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(runner.setup())
            loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", 0).start())
        except BaseException as exc:  # handed to the test thread below
            failure.append(exc)
            started.set()
            return
        started.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.run_until_complete(loop.shutdown_default_executor())

    thread = threading.Thread(target=run, name="registry-server", daemon=True)
    thread.start()
    started.wait(30)
    try:
        if failure:
            raise failure[0]
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}"
    finally:
        if not failure:
            loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()


@contextlib.contextmanager
def _serve_registry(engine: sqlalchemy.Engine) -> Iterator[str]:
    """The registry behind the platform's authorisation; the URL carries an admin credential as Confluent's
    clients take one (``http://<key id>:<secret>@host:port``: HTTP Basic)."""
    store = IdentityStore(engine)
    store.register_agency("VN/GOV/gsp/platform", name="Nền tảng tích hợp, chia sẻ dữ liệu")
    token = store.issue("VN/GOV/gsp/platform", grants=[Grant(Role.ADMIN)], label="registry tests").token
    _, key_id, secret = token.split("_", 2)
    app = application(registry_routes(RegistryStore(engine)), title="registry", access=Access(store))
    with _serve(app) as url:
        yield url.replace("http://", f"http://{key_id}:{secret}@")


@pytest.fixture
def serve_registry() -> Callable[[sqlalchemy.Engine], AbstractContextManager[str]]:
    """Starts a registry server on a given engine, as a context manager yielding its base URL."""
    return _serve_registry


@pytest.fixture
def registry_url(registry_engine: sqlalchemy.Engine) -> Iterator[str]:
    """Base URL of a registry served over HTTP, once on SQLite and once on PostgreSQL."""
    with _serve_registry(registry_engine) as url:
        yield url


@pytest.fixture(scope="session")
def bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One embedded broker (a real Kafka-protocol broker) for the whole session."""
    settings = Settings(home=tmp_path_factory.mktemp("broker"))
    with running_broker(settings) as servers:
        yield servers

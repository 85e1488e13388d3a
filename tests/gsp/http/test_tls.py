"""HTTPS on the one HTTP stack (GSP_TLS_CERT, GSP_TLS_KEY, GSP_TLS_CA), and every server's loopback default bind."""

from __future__ import annotations

import inspect
import json
import os
import signal
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from prometheus_client import CollectorRegistry

from gsp.errors import UserError
from gsp.http.client import ApiClient
from gsp.http.ops import OpsServer, ops_routes
from gsp.http.server import ApiServer, application
from gsp.http.tls import client_context, server_context
from gsp.runtime.embedded import free_port
from gsp.runtime.services import ControlServices
from schemas.settings import Settings
from tests.gsp.runtime.test_serve import serving, wait_for_worker


@dataclass(frozen=True)
class Pki:
    ca: Path  # the CA bundle a client trusts
    cert: Path  # the server's chain, for 127.0.0.1
    key: Path


def _write_leaf(leaf: trustme.LeafCert, cert: Path, key: Path) -> None:
    for i, blob in enumerate(leaf.cert_chain_pems):
        blob.write_to_path(str(cert), append=i > 0)
    leaf.private_key_pem.write_to_path(str(key))


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    _write_leaf(ca.issue_cert("127.0.0.1"), folder / "cert.pem", folder / "key.pem")
    return Pki(ca=folder / "ca.pem", cert=folder / "cert.pem", key=folder / "key.pem")


def _ops_app() -> web.Application:
    return application(ops_routes(CollectorRegistry(), lambda: {"status": "ok"}), title="GSP TLS test")


@pytest.fixture
def tls_server(pki: Pki) -> Iterator[ApiServer]:
    server = ApiServer(_ops_app(), ssl_context=server_context(Settings(tls_cert=pki.cert, tls_key=pki.key)))
    server.start()
    yield server
    server.stop()


def _health(url: str, context: ssl.SSLContext | None) -> object:
    with urllib.request.urlopen(url + "/health", timeout=10, context=context) as response:
        return json.loads(response.read())


def test_a_client_trusting_the_ca_reads_health_over_https(tls_server: ApiServer, pki: Pki) -> None:
    assert tls_server.url == f"https://127.0.0.1:{tls_server.port}"
    assert _health(tls_server.url, ssl.create_default_context(cafile=str(pki.ca))) == {"status": "ok"}


def test_a_client_not_trusting_the_ca_fails_verification(tls_server: ApiServer, tmp_path: Path) -> None:
    with pytest.raises(urllib.error.URLError) as refused:
        _health(tls_server.url, ssl.create_default_context())  # the system's CAs only
    assert isinstance(refused.value.reason, ssl.SSLCertVerificationError)
    with pytest.raises(UserError, match=r"^TLS with the control plane at https://.*CERTIFICATE_VERIFY_FAILED.*GSP_TLS_CA"):
        ApiClient.for_settings(Settings(home=tmp_path, api_url=tls_server.url)).get("/health")


def test_plain_http_to_the_tls_port_gets_no_answer(tls_server: ApiServer, pki: Pki) -> None:
    plain = tls_server.url.replace("https://", "http://")
    with pytest.raises(OSError):  # the handshake fails and the server hangs up
        _health(plain, None)
    with pytest.raises(UserError, match="did not answer"):
        ApiClient(plain).get("/health")
    assert _health(tls_server.url, ssl.create_default_context(cafile=str(pki.ca))) == {"status": "ok"}


def test_the_client_from_settings_trusts_gsp_tls_ca(tls_server: ApiServer, pki: Pki, tmp_path: Path) -> None:
    by_url = ApiClient.for_settings(Settings(home=tmp_path, api_url=tls_server.url, tls_ca=pki.ca))
    assert by_url.get("/health") == {"status": "ok"}
    # The runtime file `gsp serve` writes holds the https URL its ApiServer reports.
    (tmp_path / "runtime.json").write_text(json.dumps({"api_url": tls_server.url}))
    by_runtime_file = ApiClient.for_settings(Settings(home=tmp_path, tls_ca=pki.ca))
    assert by_runtime_file.base_url.startswith("https://")
    assert by_runtime_file.get("/health") == {"status": "ok"}


def test_no_tls_setting_means_plain_http_and_the_system_trust_store(tmp_path: Path) -> None:
    assert server_context(Settings(home=tmp_path)) is None
    assert client_context(Settings(home=tmp_path)) is None


def test_the_server_context_refuses_anything_below_tls_1_2(pki: Pki) -> None:
    context = server_context(Settings(tls_cert=pki.cert, tls_key=pki.key))
    assert context is not None and context.minimum_version == ssl.TLSVersion.TLSv1_2


def _encrypted_key(pki: Pki, path: Path) -> Path:
    key = serialization.load_pem_private_key(pki.key.read_bytes(), password=None)
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.BestAvailableEncryption(b"secret")))
    return path


@pytest.mark.parametrize("case, expected", [
    ("cert only", r"^GSP_TLS_CERT is set but GSP_TLS_KEY is not"),
    ("key only", r"^GSP_TLS_KEY is set but GSP_TLS_CERT is not"),
    ("missing cert", r"^GSP_TLS_CERT=\S*missing\.pem: No such file"),
    ("missing key", r"^GSP_TLS_KEY=\S*missing\.pem: No such file"),
    ("key as cert", r"^GSP_TLS_CERT=\S*key\.pem holds no PEM certificate"),
    ("cert as key", r"^GSP_TLS_KEY=\S*cert\.pem holds no PEM private key"),
    ("mismatched", r"^GSP_TLS_CERT=\S*cert\.pem and GSP_TLS_KEY=\S*other\.key do not load"),
    ("encrypted key", r"^GSP_TLS_KEY=\S*encrypted\.key is encrypted"),
])
def test_a_bad_certificate_or_key_is_a_one_line_error_naming_the_variable(
        case: str, expected: str, pki: Pki, tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    other = tmp_path / "other.key"
    _write_leaf(trustme.CA().issue_cert("127.0.0.1"), tmp_path / "other.pem", other)
    cert, key = {
        "cert only": (pki.cert, None),
        "key only": (None, pki.key),
        "missing cert": (missing, pki.key),
        "missing key": (pki.cert, missing),
        "key as cert": (pki.key, pki.key),
        "cert as key": (pki.cert, pki.cert),
        "mismatched": (pki.cert, other),
        "encrypted key": (pki.cert, _encrypted_key(pki, tmp_path / "encrypted.key")),
    }[case]
    with pytest.raises(UserError, match=expected) as refused:
        server_context(Settings(tls_cert=cert, tls_key=key))
    assert "\n" not in str(refused.value)


def test_a_missing_or_bad_ca_bundle_is_a_one_line_error(pki: Pki, tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"^GSP_TLS_CA=\S*missing\.pem: No such file"):
        client_context(Settings(tls_ca=tmp_path / "missing.pem"))
    with pytest.raises(UserError, match=r"^GSP_TLS_CA=\S*key\.pem is not a PEM CA bundle") as refused:
        client_context(Settings(tls_ca=pki.key))
    assert "\n" not in str(refused.value)


def test_servers_bind_loopback_unless_told_otherwise() -> None:
    api = ApiServer(_ops_app())
    ops = OpsServer(CollectorRegistry(), dict)
    api.start()
    ops.start()
    try:
        for runner in (api._runner, ops._server._runner):
            assert runner is not None and [address[0] for address in runner.addresses] == ["127.0.0.1"]
        assert api.url.startswith("http://127.0.0.1:") and ops.url.startswith("http://127.0.0.1:")
    finally:
        ops.stop()
        api.stop()
    assert inspect.signature(ControlServices).parameters["host"].default == "127.0.0.1"
    assert (Settings().api_host, Settings().ops_host) == ("127.0.0.1", "127.0.0.1")


def test_gsp_serve_over_tls_keeps_its_workers_and_the_cli_working(pki: Pki, tmp_path: Path) -> None:
    """The workers read the control plane's registry over HTTPS with GSP_TLS_CA; the CLI trusts it too."""
    env = {**os.environ, "GSP_HOME": str(tmp_path), "GSP_API_PORT": str(free_port()), "GSP_TLS_CERT": str(pki.cert),
           "GSP_TLS_KEY": str(pki.key), "GSP_TLS_CA": str(pki.ca)}
    env.pop("GSP_TOKEN", None)
    log = open(tmp_path / "serve.log", "w")
    server = subprocess.Popen([sys.executable, "-m", "gsp", "serve"], env=env, stdout=subprocess.PIPE, stderr=log,
                              text=True)
    try:
        runtime = serving(server, tmp_path, tmp_path / "serve.log")
        assert runtime["api_url"].startswith("https://127.0.0.1:")
        wait_for_worker(runtime, lambda h: h.get("assigned_partitions", 0) > 0)
        me = subprocess.run([sys.executable, "-m", "gsp", "whoami", "--json"], env=env, capture_output=True,
                            text=True, timeout=60)
        assert me.returncode == 0 and json.loads(me.stdout)["roles"] == ["admin"], me.stderr
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
        server.stdout.close()  # type: ignore[union-attr]
        log.close()

import os
import socket
import subprocess
import sys


def gsp(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gsp", *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def test_unknown_option_is_one_line_and_non_zero() -> None:
    result = gsp("demo", "--recordz", "5")
    assert result.returncode == 2
    assert "unrecognized arguments: --recordz" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_unreachable_broker_is_one_clear_line() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = gsp("worker", env={"GSP_KAFKA_BOOTSTRAP": f"127.0.0.1:{port}", "GSP_SCHEMA_REGISTRY_URL": "http://127.0.0.1:1"})
    assert result.returncode == 2
    assert f"no Kafka broker reachable at 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_setting_is_one_clear_line() -> None:
    result = gsp("demo", env={"GSP_PARTITIONS": "four"})
    assert result.returncode == 2 and "GSP_PARTITIONS='four' is not an integer" in result.stderr


def test_subscription_without_control_plane_says_so() -> None:
    result = gsp("subscription", "list", env={"GSP_API_URL": "http://127.0.0.1:1"})
    assert result.returncode == 2 and "no control plane answering at http://127.0.0.1:1" in result.stderr


def test_serve_on_a_port_in_use_is_one_clear_line(tmp_path: object) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = gsp("serve", env={"GSP_HOME": str(tmp_path), "GSP_API_PORT": str(port)})
    assert result.returncode == 2
    assert f"cannot serve the control-plane API on 127.0.0.1:{port}" in result.stderr and "Traceback" not in result.stderr


def test_serve_with_a_bad_database_url_is_one_clear_line(tmp_path: object) -> None:
    result = gsp("serve", env={"GSP_HOME": str(tmp_path), "GSP_API_PORT": "0", "GSP_DATABASE_URL": "not a url"})
    assert result.returncode == 2 and "GSP_DATABASE_URL is not usable" in result.stderr
    result = gsp("serve", env={"GSP_HOME": str(tmp_path), "GSP_API_PORT": "0",
                               "GSP_DATABASE_URL": "postgresql+pg8000://nobody@127.0.0.1:1/gsp"})
    assert result.returncode == 2 and "control-plane database unreachable" in result.stderr and "Traceback" not in result.stderr

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

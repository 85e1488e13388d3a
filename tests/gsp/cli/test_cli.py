import json
import os
import socket
import subprocess
import sys
from pathlib import Path


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
    # serve logs its start-up (GSP_LOG_LEVEL) before it fails: the error is the last line.
    error = result.stderr.splitlines()[-1]
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert error.startswith("gsp: error: cannot serve ") and f"127.0.0.1:{port}" in error


def test_serve_with_a_bad_database_url_is_one_clear_line(tmp_path: object) -> None:
    result = gsp("serve", env={"GSP_HOME": str(tmp_path), "GSP_API_PORT": "0", "GSP_DATABASE_URL": "not a url"})
    assert result.returncode == 2 and "GSP_DATABASE_URL is not usable" in result.stderr
    result = gsp("serve", env={"GSP_HOME": str(tmp_path), "GSP_API_PORT": "0",
                               "GSP_DATABASE_URL": "postgresql+pg8000://nobody@127.0.0.1:1/gsp"})
    assert result.returncode == 2 and "control-plane database unreachable" in result.stderr and "Traceback" not in result.stderr


def test_clean_applies_the_contract_to_a_file_line_by_line(tmp_path: Path) -> None:
    lines = ['{"msisdn": "+84 912 345 678", "carrier": "Viettel", "subscriber_name": "NGUYỄN  VĂN HÒA", '
             '"id_number": "001090123456", "birth_date": "05/03/1990", "address": null, "updated_at": 1}',
             "not json at all"]
    source = tmp_path / "sample.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = gsp("clean", "--dataset", "telecom.subscriber", str(source))
    assert result.returncode == 0, result.stderr
    first, second = [json.loads(line) for line in result.stdout.splitlines()]
    assert first["record"]["msisdn"] == "0912345678" and first["record"]["subscriber_name"] == "Nguyễn Văn Hòa"
    assert first["rejected"] is False and {"phone.normalize", "name.normalize"} <= {f["rule"] for f in first["findings"]}
    assert second["record"] is None and second["findings"][0]["rule"] == "input.json"


def test_match_generate_and_evaluate_on_csv_files(tmp_path: Path) -> None:
    assert gsp("match", "generate", "--out", str(tmp_path), "--registry", "800", "--seed", "3").returncode == 0
    settings = Path(__file__).resolve().parents[3] / "streams" / "linkage" / "settings" / "vn_identity.json"
    result = gsp("match", "evaluate", "--settings", str(settings), "--left", str(tmp_path / "left.csv"),
                 "--right", str(tmp_path / "right.csv"), "--truth", str(tmp_path / "links.csv"), "--json")
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["f1"] > 0.95 and figures["precision"] > 0.95 and figures["recall"] > 0.9
    missing = gsp("match", "evaluate", "--settings", str(settings), "--left", str(tmp_path / "nope.csv"),
                  "--right", str(tmp_path / "right.csv"), "--truth", str(tmp_path / "links.csv"))
    assert missing.returncode == 2 and "Traceback" not in missing.stderr

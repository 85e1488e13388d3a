"""A user's mistake is one line on stderr, `gsp: error: …`, and exit status 2: never a traceback."""

import json
import socket
import subprocess
from pathlib import Path

import pytest

from tests.gsp.cli.test_cli import gsp


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The error line, once the result is checked to be one."""
    lines = result.stderr.splitlines()
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("gsp: error: "), result.stderr
    return lines[0]


@pytest.mark.parametrize("args", [[], ["quarantine"], ["connect", "run"], ["demo", "--records", "many"],
                                  ["review", "list", "--status", "closed"], ["bench", "--jsn"], ["nosuch"]])
def test_command_line_mistakes_name_the_help_to_read(args: list[str]) -> None:
    assert "--help)" in one_line_error(gsp(*args))


def test_quality_report_without_a_control_plane_database_in_gsp_home(tmp_path: Path) -> None:
    line = one_line_error(gsp("quality", "report", env={"GSP_HOME": str(tmp_path / "missing")}))
    assert f"no control-plane database in {tmp_path / 'missing'}" in line
    assert not (tmp_path / "missing").exists()  # and the report created nothing


def test_quality_report_with_an_unreachable_database(tmp_path: Path) -> None:
    url = f"postgresql+pg8000://nobody@127.0.0.1:{free_port()}/x"
    line = one_line_error(gsp("quality", "report", env={"GSP_HOME": str(tmp_path), "GSP_DATABASE_URL": url}))
    assert f"control-plane database {url} unreachable" in line


@pytest.mark.parametrize("url", ["nonsense://", "not a url"])
def test_quality_report_with_a_database_url_that_is_not_one(tmp_path: Path, url: str) -> None:
    line = one_line_error(gsp("quality", "report", env={"GSP_HOME": str(tmp_path), "GSP_DATABASE_URL": url}))
    assert line.startswith("gsp: error: GSP_DATABASE_URL is not usable: ")


@pytest.mark.parametrize("database_url, says", [
    (f"postgresql+pg8000://nobody@127.0.0.1:{free_port()}/x", "source database unreachable: "),
    ("sqlite:////nonexistent-folder/telecom.db", "source database unreachable: unable to open database file"),
    ("nonsense://", "Can't load plugin"),
])
def test_connect_run_against_a_database_it_cannot_use(tmp_path: Path, database_url: str, says: str) -> None:
    config = tmp_path / "subscribers.json"
    config.write_text(json.dumps({"name": "subscribers", "dataset": "telecom.subscriber", "database_url": database_url,
                                  "table": "subscriber", "key_column": "msisdn"}))
    line = one_line_error(gsp("connect", "run", str(config), "--once", env={"GSP_HOME": str(tmp_path)}))
    assert line.startswith(f"gsp: error: {config}: ") and says in line


def test_clean_with_an_unknown_dataset() -> None:
    line = one_line_error(gsp("clean", "--dataset", "telecom.subscribers", "/dev/null"))
    assert line.startswith("gsp: error: unknown dataset 'telecom.subscribers'")


@pytest.mark.parametrize("declaration, says", [
    ({"dataset": "x.y"}, "x.y.json: missing 'contract'"),
    ({"dataset": "x.y", "key": "a", "source_system": "x", "owner": "VN/GOV/bo-x/y", "role": "plain",
      "contract": {"type": "record", "name": "Y", "namespace": "vn.gsp.x",
                   "fields": [{"name": "header", "type": "vn.gsp.common.EventHeader"}, {"name": "a", "type": "string"}]},
      "cleaning": {"version": 1, "fields": [{"field": "a", "type": "phone", "rules": {"phone.nope": "fix"}}]}},
     "unknown rule 'phone.nope' in x.y.json (did you mean phone.normalize?)"),
])
def test_a_bad_declaration_stops_serve_and_demo_before_anything_starts(tmp_path: Path, declaration: dict[str, object],
                                                                      says: str) -> None:
    (tmp_path / "datasets").mkdir()
    (tmp_path / "datasets" / "x.y.json").write_text(json.dumps(declaration))
    env = {"GSP_HOME": str(tmp_path / "home"), "GSP_DATASETS_DIR": str(tmp_path / "datasets")}
    for args in (["serve"], ["demo", "--records", "100"], ["clean", "--dataset", "x.y"]):
        assert says in one_line_error(gsp(*args, env=env)), args


def test_a_datasets_dir_that_is_not_one(tmp_path: Path) -> None:
    line = one_line_error(gsp("serve", env={"GSP_HOME": str(tmp_path), "GSP_DATASETS_DIR": str(tmp_path / "none")}))
    assert line == f"gsp: error: GSP_DATASETS_DIR={tmp_path / 'none'}: not a directory"

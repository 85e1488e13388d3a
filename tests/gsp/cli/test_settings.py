"""`gsp settings`: each variable with its documentation, default and current value; secrets hidden."""

import json

from tests.gsp.cli.test_cli import gsp


def test_settings_shows_default_and_current_value_of_each_variable() -> None:
    result = gsp("settings", env={"GSP_PARTITIONS": "9", "GSP_APP_ID": ""})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("GSP_PARTITIONS "))
    assert "Partitions of data topics" in lines[at]
    assert lines[at + 1].split() == ["default:", "4", "current:", "9", "(from", "the", "environment)"]
    at = next(i for i, line in enumerate(lines) if line.startswith("GSP_APP_ID "))
    assert lines[at + 1].split() == ["default:", "gsp-streams", "current:", "gsp-streams"]


def test_settings_as_json_hides_the_database_password() -> None:
    result = gsp("settings", "--json", env={"GSP_DATABASE_URL": "postgresql+pg8000://gsp:s3cret@db:5432/gsp",
                                            "GSP_KAFKA_BOOTSTRAP": ""})
    assert result.returncode == 0, result.stderr
    table = {row["variable"]: row for row in json.loads(result.stdout)}
    assert "s3cret" not in result.stdout
    assert table["GSP_DATABASE_URL"] == {"variable": "GSP_DATABASE_URL", "default": None,
                                         "current": "postgresql+pg8000://gsp:***@db:5432/gsp", "from_environment": True,
                                         "doc": table["GSP_DATABASE_URL"]["doc"]}
    assert table["GSP_KAFKA_BOOTSTRAP"]["current"] is None and table["GSP_KAFKA_BOOTSTRAP"]["from_environment"] is False
    assert table["GSP_API_PORT"]["default"] == "8780" and table["GSP_DATASETS_DIR"]["doc"]


def test_settings_never_show_the_token() -> None:
    token = "gsp_0123456789abcdef_" + "s" * 43
    for args in (("settings",), ("settings", "--json")):
        result = gsp(*args, env={"GSP_TOKEN": token})
        assert result.returncode == 0 and "s" * 43 not in result.stdout and "GSP_TOKEN" in result.stdout
    rows = {row["variable"]: row for row in json.loads(gsp("settings", "--json", env={"GSP_TOKEN": token}).stdout)}
    assert rows["GSP_TOKEN"]["current"] == "(set, not shown)"

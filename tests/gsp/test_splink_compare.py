"""The FEBRL4 comparison with Splink, in what runs without the bench venv: its settings and its refusals."""

import json
from pathlib import Path

import pytest

from gsp.errors import UserError
from gsp.tools.bench.splink_compare import FEBRL_SETTINGS, compare_with_splink
from streams.linkage import load_settings


def test_febrl_settings_load_with_what_the_comparison_relies_on() -> None:
    settings = load_settings(FEBRL_SETTINGS)
    assert settings.link_type == "link_only"
    assert settings.unique_id_left == settings.unique_id_right == "rec_id"
    assert settings.field_named("date_of_birth").format == "%Y%m%d"
    # Splink's swapped-names rule, "l.given_name = r.surname and l.surname = r.given_name"
    assert ("given_name.full_folded=surname.full_folded",
            "surname.full_folded=given_name.full_folded") in settings.blocking_rules


def test_a_bad_settings_file_is_refused_before_anything_is_installed_or_written(tmp_path: Path) -> None:
    data = json.loads(FEBRL_SETTINGS.read_text(encoding="utf-8"))
    data["comparisons"][0]["levels"].append({"level": "soundex"})
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data), encoding="utf-8")
    workdir = tmp_path / "febrl4"
    with pytest.raises(UserError, match="soundex"):
        compare_with_splink(workdir, settings=bad)
    assert not workdir.exists()

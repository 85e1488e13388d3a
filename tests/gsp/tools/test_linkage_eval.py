import csv
import json
import unicodedata
from pathlib import Path

import pytest

from gsp.errors import UserError
from gsp.tools.linkage_eval import evaluate, run_evaluate, run_generate
from gsp.tools.synth.linkage import LEFT_COLUMNS, RIGHT_COLUMNS, generate_linkage
from streams.linkage.config import DEFAULT_SETTINGS


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("linkage")
    assert run_generate(directory, registry=3000, records=2000, seed=5) == 0
    return directory


@pytest.fixture(scope="module")
def fast_settings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = json.loads(DEFAULT_SETTINGS.read_text(encoding="utf-8"))
    data["training"]["random_pairs"] = 200_000
    path = tmp_path_factory.mktemp("settings") / "settings.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_generate_writes_registry_records_and_links(generated: Path) -> None:
    left, right, links = rows(generated / "left.csv"), rows(generated / "right.csv"), rows(generated / "links.csv")
    assert (len(left), len(right), len(links)) == (3000, 2000, 1600)
    assert tuple(left[0]) == LEFT_COLUMNS and tuple(right[0]) == RIGHT_COLUMNS
    registry = {r["personal_id"] for r in left}
    assert all(link["personal_id"] in registry for link in links)
    assert len({link["record_id"] for link in links}) == len(links)


def test_generated_records_carry_the_noise_of_real_sources() -> None:
    data = generate_linkage(3000, records=3000, seed=5)
    ids = [r["id_number"] for r in data.records]
    assert any(len(i) == 9 for i in ids) and any(i == "" for i in ids)
    assert any(len(r["msisdn"]) == 11 and r["msisdn"].startswith("01") for r in data.records)
    assert any(r["province"] in ("Yên Bái", "Hà Giang", "Bình Dương", "Long An") for r in data.records)
    assert any(unicodedata.is_normalized("NFC", r["subscriber_name"]) is False for r in data.records)
    assert any(r["subscriber_name"].isascii() for r in data.records)
    assert any(r["birth_date"].isdigit() for r in data.records)  # the year alone
    family = [r["full_name"].split()[0] for r in data.registry]
    assert 0.3 < family.count("Nguyễn") / len(family) < 0.45
    assert generate_linkage(200, seed=5) == generate_linkage(200, seed=5)


def test_evaluate_on_generated_data(generated: Path, fast_settings: Path) -> None:
    result = evaluate(fast_settings, generated / "left.csv", generated / "right.csv", generated / "links.csv")
    assert result["f1"] > 0.98
    assert result["precision"] > 0.99
    assert result["blocking_recall"] > 0.995
    assert result["true_links"] == 1600 and result["records"] == 2000
    assert result["candidate_pairs"] > 0 and result["records_per_second_scoring"] > 0


def test_saved_model_scores_the_same(generated: Path, fast_settings: Path, tmp_path: Path) -> None:
    paths = (generated / "left.csv", generated / "right.csv", generated / "links.csv")
    trained = evaluate(fast_settings, *paths, save_model=tmp_path / "model.json")
    reused = evaluate(fast_settings, *paths, model_path=tmp_path / "model.json")
    for key in ("true_positives", "false_positives", "matched", "possible"):
        assert reused[key] == trained[key]


def test_truth_columns_may_be_named_otherwise(generated: Path, fast_settings: Path, tmp_path: Path) -> None:
    truth = tmp_path / "truth.csv"
    truth.write_text("rid,pid\n" + "".join(f"{r['record_id']},{r['personal_id']}\n"
                                           for r in rows(generated / "links.csv")), encoding="utf-8")
    result = evaluate(fast_settings, generated / "left.csv", generated / "right.csv", truth)
    assert result["true_links"] == 1600 and result["f1"] > 0.98


def test_run_evaluate_prints_one_json_object(generated: Path, fast_settings: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    code = run_evaluate(fast_settings, generated / "left.csv", generated / "right.csv", generated / "links.csv",
                        as_json=True)
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert {"precision", "recall", "f1", "candidate_pairs", "records_per_second_scoring",
            "records_per_second_with_training"} <= set(out)


def test_missing_file_is_a_user_error(fast_settings: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="cannot read"):
        evaluate(fast_settings, tmp_path / "nope.csv", tmp_path / "nope.csv", tmp_path / "nope.csv")


def test_registry_rows_without_an_id_are_a_user_error(generated: Path, fast_settings: Path, tmp_path: Path) -> None:
    left = tmp_path / "left.csv"
    left.write_text((generated / "left.csv").read_text(encoding="utf-8") + ",Nguyễn Văn An,1990,MALE,,01,ALIVE\n",
                    encoding="utf-8")
    with pytest.raises(UserError, match="without personal_id"):
        evaluate(fast_settings, left, generated / "right.csv", generated / "links.csv")

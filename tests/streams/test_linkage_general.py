"""Matching on files that are not Vietnamese identity data: the walls a Splink user would hit."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gsp.errors import UserError
from gsp.tools.linkage_eval import evaluate, run_train
from streams.linkage import Model, RegistryIndex, Settings, SettingsError, score_batch, train
from streams.linkage.labels import fold_decisions
from streams.linkage.score import pair_levels
from streams.matching.linker import DEFAULT_MODEL

GIVEN = ["james", "olivia", "liam", "emma", "noah", "ava", "lucas", "mia", "ethan", "zoe", "jack", "ruby", "leo",
         "isla", "henry", "chloe", "oscar", "grace", "max", "ella"]
SURNAMES = ["smith", "jones", "brown", "wilson", "taylor", "nguyen", "martin", "white", "clarke", "walker", "hall",
            "young", "king", "wright", "green", "baker", "adams", "hill", "scott", "lee", "ward", "reid", "kelly"]


def _settings(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "format_version": 1, "name": "people", "link_type": "link_only",
        "unique_id": {"left": "rec_id", "right": "rec_id"},
        "fields": {
            "given_name": {"kind": "name", "left": "given_name", "right": "given_name"},
            "surname": {"kind": "name", "left": "surname", "right": "surname"},
            "dob": {"kind": "date", "left": "date_of_birth", "right": "date_of_birth", "format": "%Y%m%d"},
            "ssn": {"kind": "exact", "left": "soc_sec_id", "right": "soc_sec_id"},
        },
        "comparisons": [
            {"name": "given_name", "field": "given_name",
             "levels": [{"level": "exact", "tf": True}, {"level": "swapped", "with": "surname"},
                        {"level": "jaro_winkler", "threshold": 0.88}]},
            {"name": "surname", "field": "surname",
             "levels": [{"level": "exact", "tf": True}, {"level": "swapped", "with": "given_name"},
                        {"level": "jaro_winkler", "threshold": 0.88}]},
            {"name": "dob", "field": "dob", "levels": [{"level": "exact"}, {"level": "day_month_swapped"},
                                                        {"level": "same_year"}]},
            {"name": "ssn", "field": "ssn", "levels": [{"level": "exact"},
                                                        {"level": "damerau_levenshtein", "threshold": 1},
                                                        {"level": "levenshtein", "threshold": 2}]},
        ],
        "blocking_rules": [["ssn"], ["dob.date"], ["given_name.full_folded", "surname.full_folded"],
                           ["given_name.full_folded=surname.full_folded", "surname.full_folded=given_name.full_folded"]],
        "training": {"blocking_rules": [["dob.date"], ["ssn"]], "random_pairs": 50_000, "max_records": 5000},
        "thresholds": {"match_probability": 0.9, "review_probability": 0.2},
    }
    data.update(overrides)
    return data


def _people(n: int, seed: int) -> list[dict[str, str]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        out.append({"rec_id": f"rec-{i}-org", "given_name": rng.choice(GIVEN), "surname": rng.choice(SURNAMES),
                    "date_of_birth": f"{rng.randint(1930, 2005)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}",
                    "soc_sec_id": str(rng.randint(1_000_000, 9_999_999))})
    return out


def _transpose(text: str, at: int) -> str:
    return text[:at] + text[at + 1] + text[at] + text[at + 2:]


def _noisy(person: dict[str, str], i: int, rng: random.Random) -> dict[str, str]:
    """A copy with one kind of noise: names swapped, digits transposed, a typo, a missing value."""
    out = {**person, "rec_id": person["rec_id"].replace("-org", "-dup-0")}
    kind = i % 4
    if kind == 0:
        out["given_name"], out["surname"] = person["surname"], person["given_name"]
    elif kind == 1:
        out["soc_sec_id"] = _transpose(person["soc_sec_id"], rng.randint(0, 5))
    elif kind == 2:
        out["surname"] = person["surname"][:-1] + "x"
    else:
        out["date_of_birth"] = ""
    return out


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    rng = random.Random(3)
    left = _people(600, seed=1)
    right = [_noisy(p, i, rng) for i, p in enumerate(left[:400])] + _people(100, seed=2)
    for row in right[400:]:
        row["rec_id"] = row["rec_id"].replace("-org", "-other")
    out = tmp_path_factory.mktemp("people")
    paths = {"left": out / "left.csv", "right": out / "right.csv", "truth": out / "links.csv",
             "settings": out / "settings.json"}
    _write(paths["left"], left)
    _write(paths["right"], right)
    paths["truth"].write_text("right_id,left_id\n" + "".join(f"{r['rec_id']},{r['rec_id'].replace('-dup-0', '-org')}\n"
                                                             for r in right[:400]), encoding="utf-8")
    paths["settings"].write_text(json.dumps(_settings()), encoding="utf-8")
    return paths


def _write(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _write_settings(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_swapped_names_transposed_ids_and_compact_dates_link(files: dict[str, Path]) -> None:
    warnings: list[str] = []
    result = evaluate(files["settings"], files["left"], files["right"], files["truth"], warn=warnings.append)
    assert warnings == []
    assert result["blocking_recall"] == 1.0
    assert result["f1"] >= 0.99, result


def test_a_date_format_not_declared_is_named_in_a_warning(files: dict[str, Path], tmp_path: Path) -> None:
    data = _settings()
    del data["fields"]["dob"]["format"]
    warnings: list[str] = []
    result = evaluate(_write_settings(tmp_path, data), files["left"], files["right"], files["truth"],
                      warn=warnings.append)
    assert any("'dob'" in w and "100% of left rows" in w and "date_of_birth" in w and "format" in w for w in warnings)
    assert result["warnings"] == warnings


def test_a_declared_format_reads_only_that_format() -> None:
    settings = Settings.from_json(_settings())
    index = RegistryIndex(settings)
    index.add({"rec_id": "a", "given_name": "ann", "surname": "lee", "date_of_birth": "19840923", "soc_sec_id": "1"})
    batch = index.encode([{"rec_id": "b", "date_of_birth": "19840923"}, {"rec_id": "c", "date_of_birth": "1984-09-23"},
                          {"rec_id": "d", "date_of_birth": "19842309"}])
    assert batch.columns["dob.ymd"].tolist() == [19840923, 0, 0]
    with pytest.raises(SettingsError, match="only a date field takes a format"):
        Settings.from_json(_settings(fields={**_settings()["fields"],
                                             "ssn": {"kind": "exact", "left": "s", "format": "%Y"}}))


def _levels(settings: Settings, entry: dict[str, str], record: dict[str, str]) -> dict[str, str]:
    index = RegistryIndex(settings)
    index.add(entry)
    batch = index.encode([record])
    levels = pair_levels(index, batch, np.array([0]), np.array([index.slot(entry["rec_id"])]))
    return {c.name: c.labels[lv] for c, lv in zip(settings.comparisons, levels[0].tolist(), strict=True)}


def test_edit_distance_levels_tell_a_transposition_from_other_typos() -> None:
    settings = Settings.from_json(_settings())
    entry = {"rec_id": "a", "given_name": "ann", "surname": "lee", "date_of_birth": "19840923", "soc_sec_id": "1234567"}
    assert _levels(settings, entry, {**entry, "soc_sec_id": "1234576"})["ssn"] == "damerau_levenshtein<=1"
    assert _levels(settings, entry, {**entry, "soc_sec_id": "1234500"})["ssn"] == "levenshtein<=2"
    assert _levels(settings, entry, {**entry, "soc_sec_id": "7654321"})["ssn"] == "else"
    assert _levels(settings, entry, {**entry, "soc_sec_id": ""})["ssn"] == "null"
    with pytest.raises(SettingsError, match="number of edits"):
        Settings.from_json(_settings(comparisons=[{"name": "ssn", "field": "ssn", "levels": [
            {"level": "levenshtein", "threshold": 0.5}]}]))


def test_names_written_in_each_others_columns_compare_and_block() -> None:
    settings = Settings.from_json(_settings())
    entry = {"rec_id": "a", "given_name": "Ann", "surname": "Lee", "date_of_birth": "19840923", "soc_sec_id": "1"}
    swapped = {"rec_id": "b", "given_name": "Lee", "surname": "Ann", "date_of_birth": "", "soc_sec_id": ""}
    levels = _levels(settings, entry, swapped)
    assert levels["given_name"] == "swapped:surname" and levels["surname"] == "swapped:given_name"
    index = RegistryIndex(settings)
    index.add(entry)
    batch = index.encode([swapped])
    cross = settings.blocking_rules.index(("given_name.full_folded=surname.full_folded",
                                           "surname.full_folded=given_name.full_folded"))
    assert len(index.candidates(batch, rules=[cross])[0]) == 1  # only the cross-column rule puts them together
    others = [r for r in range(len(settings.blocking_rules)) if r != cross]
    assert len(index.candidates(batch, rules=others)[0]) == 0


def test_cross_column_keys_must_pair_like_with_like() -> None:
    with pytest.raises(SettingsError, match="same kind of key"):
        Settings.from_json(_settings(blocking_rules=[["given_name.full_folded=dob.year"]]))
    with pytest.raises(SettingsError, match="needs \"with\""):
        Settings.from_json(_settings(comparisons=[{"name": "g", "field": "given_name", "levels": [{"level": "swapped"}]}]))


def test_dedupe_finds_the_duplicates_of_one_file_and_never_a_record_with_itself(tmp_path: Path) -> None:
    rng = random.Random(5)
    people = _people(500, seed=4)
    rows = people + [_noisy(p, i, rng) for i, p in enumerate(people[:150])]
    _write(tmp_path / "people.csv", rows)
    (tmp_path / "pairs.csv").write_text("id_a,id_b\n" + "".join(
        f"{p['rec_id']},{p['rec_id'].replace('-org', '-dup-0')}\n" for p in people[:150]), encoding="utf-8")
    settings = _write_settings(tmp_path, _settings(link_type="dedupe_only"))
    result = evaluate(settings, tmp_path / "people.csv", None, tmp_path / "pairs.csv")
    assert result["link_type"] == "dedupe_only" and result["true_links"] == 150
    assert result["f1"] >= 0.97, result
    index = RegistryIndex(Settings.from_json(_settings(link_type="dedupe_only")))
    index.add_many(rows)
    batch = index.encode(rows)
    found_rows, slots = index.candidates(batch)
    assert len(found_rows) > 0
    assert all(batch.record_ids[r] != index.unique_id(s) for r, s in zip(found_rows.tolist(), slots.tolist(), strict=True))
    with pytest.raises(UserError, match="dedupe_only"):
        evaluate(settings, tmp_path / "people.csv", tmp_path / "other.csv", tmp_path / "pairs.csv")


def test_link_only_needs_a_right_file(files: dict[str, Path]) -> None:
    with pytest.raises(UserError, match="--right is needed"):
        evaluate(files["settings"], files["left"], None, files["truth"])


def test_truth_columns_are_read_by_header_in_any_order(files: dict[str, Path], tmp_path: Path) -> None:
    truth = tmp_path / "reversed.csv"
    lines = files["truth"].read_text(encoding="utf-8").splitlines()[1:]
    truth.write_text("left_id,right_id\n" + "".join(",".join(reversed(line.split(","))) + "\n" for line in lines),
                     encoding="utf-8")
    result = evaluate(files["settings"], files["left"], files["right"], truth, warn=lambda line: None)
    assert result["true_links"] == 400 and result["f1"] >= 0.99


def test_truth_with_one_id_name_twice_and_shared_ids_is_refused(tmp_path: Path) -> None:
    people = _people(50, seed=9)
    _write(tmp_path / "a.csv", people)
    _write(tmp_path / "b.csv", people)  # the same ids on both sides: the columns cannot be told apart by content
    (tmp_path / "t.csv").write_text("rec_id,rec_id\n" + "".join(f"{p['rec_id']},{p['rec_id']}\n" for p in people),
                                    encoding="utf-8")
    settings = _write_settings(tmp_path, _settings())
    with pytest.raises(UserError, match=r"cannot tell which column holds the right ids.*right_id and left_id"):
        evaluate(settings, tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "t.csv")


def test_truth_whose_ids_never_meet_the_files_is_refused(files: dict[str, Path], tmp_path: Path) -> None:
    truth = tmp_path / "elsewhere.csv"
    truth.write_text("right_id,left_id\nx-1,y-1\nx-2,y-2\n", encoding="utf-8")
    with pytest.raises(UserError, match="never meet"):
        evaluate(files["settings"], files["left"], files["right"], truth)
    swapped = tmp_path / "swapped.csv"  # named sides written the wrong way round
    lines = files["truth"].read_text(encoding="utf-8").splitlines()[1:]
    swapped.write_text("right_id,left_id\n" + "".join(",".join(reversed(line.split(","))) + "\n" for line in lines),
                       encoding="utf-8")
    with pytest.raises(UserError, match="never meet"):
        evaluate(files["settings"], files["left"], files["right"], swapped)


def _decisions(model: Model, rows: list[tuple[str, dict[str, str]]]) -> list[dict[str, str]]:
    out = []
    for decision, levels in rows:
        row = {"dataset": "telecom.subscriber", "source_key": "k", "personal_id": "p", "decision": decision}
        row.update({f"level.{c.name}": levels.get(c.name, "") for c in model.settings.comparisons})
        out.append(row)
    return out


def test_review_decisions_fold_into_m_and_move_the_model_towards_them() -> None:
    model = Model.load(DEFAULT_MODEL)
    names = {c.name: c for c in model.settings.comparisons}
    given = names["given_name"]
    folded_level = "folded"
    accepted = {"given_name": folded_level, "family_name": "exact", "birth_date": "exact"}
    rows = _decisions(model, [("ACCEPTED", accepted)] * 300 + [("REJECTED", {"given_name": "else"})] * 5
                      + [("MAYBE", accepted)])
    folded, report = fold_decisions(model, rows, strength=100)
    j = model.settings.comparisons.index(given)
    at = given.labels.index(folded_level)
    assert report["accepted"] == 300 and report["rejected"] == 5 and report["skipped"] == 1
    assert folded.m[j][at] > model.m[j][at]
    assert folded.m[j][at] == pytest.approx((100 * model.m[j][at] + 300) / 400, rel=1e-4)
    assert sum(folded.m[j][1:]) == pytest.approx(1.0, abs=1e-4)
    untouched = model.settings.comparisons.index(names["phone"])
    assert folded.m[untouched] == model.m[untouched]  # no decision reached a phone level
    assert folded.training["labels"]["accepted"] == 300


def test_gsp_match_train_writes_a_model_that_loads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = Model.load(DEFAULT_MODEL)
    _write(tmp_path / "decisions.csv", _decisions(model, [("ACCEPTED", {"given_name": "tone", "birth_date": "exact"})]))
    assert run_train(tmp_path / "decisions.csv", tmp_path / "new.json", as_json=True) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["accepted"] == 1 and Model.load(tmp_path / "new.json").training["labels"]["accepted"] == 1
    (tmp_path / "other.csv").write_text("decision,level.nothing\nACCEPTED,exact\n", encoding="utf-8")
    with pytest.raises(UserError, match="none of the 1 rows is a decision this model can read"):
        run_train(tmp_path / "other.csv", tmp_path / "x.json")


def test_a_model_trained_on_swapped_settings_round_trips(files: dict[str, Path], tmp_path: Path) -> None:
    settings = Settings.from_json(_settings())
    index = RegistryIndex(settings)
    with files["left"].open(encoding="utf-8") as f:
        index.add_many(csv.DictReader(f))
    with files["right"].open(encoding="utf-8") as f:
        right = list(csv.DictReader(f))
    model = train(index, right)
    loaded = Model.load(model.save(tmp_path / "m.json"))
    assert [link.personal_id for link in score_batch(index, loaded, right[:50])] == \
        [link.personal_id for link in score_batch(index, model, right[:50])]

"""Splink 4 on FEBRL4, as Splink's own example links it; run by the bench venv's python, never imported by gsp.

    .venv-bench/bin/python -I gsp/tools/bench/splink_febrl.py DIR

DIR holds left.csv (febrl4a), right.csv (febrl4b) and links.csv (right_id,left_id), as
`splink_compare` exports them. The model is the "detailed" one of Splink's FEBRL4 example
(docs/demos/examples/duckdb/febrl4): its seven prediction blocking rules, NameComparison on both
names with term frequencies, DateOfBirthComparison on the yyyymmdd text, Damerau-Levenshtein
[1, 2] on soc_sec_id and postcode, exact street_number; the match share from two deterministic
rules at recall 0.8, u from a million random pairs, EM blocked on date_of_birth then on
postcode, predictions at match probability 0.2. Timed: reading the two CSV files to holding the
predictions as a pandas frame. A link is a pair at match probability >= 0.99, all of them (not
one-to-one). Prints one JSON line on stdout; progress on stderr. Imports only splink, duckdb and
pandas, which the platform's own venv does not have.
"""

# splink, duckdb and pandas are in the bench venv only, never in the one mypy checks with.
# mypy: disable-error-code="import-not-found,import-untyped"
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import splink
import splink.comparison_library as cl
from splink import DuckDBAPI, Linker, SettingsCreator, block_on

THRESHOLD = 0.99  # a link, as gsp's settings call a pair MATCHED
PREDICT_THRESHOLD = 0.2  # the example's


def _step(started: float, what: str) -> None:
    print(f"{time.perf_counter() - started:6.2f} s  {what}", file=sys.stderr, flush=True)


def _prepare(data: Any) -> Any:
    # the example's prepare_data: names stripped, the three code columns as trimmed text
    data = data.rename(columns=lambda name: name.strip())
    for column in ("date_of_birth", "soc_sec_id", "postcode"):
        data[column] = data[column].str.strip()
    return data


def _settings() -> Any:
    blocking_rules = [
        block_on("given_name", "surname"),
        "l.given_name = r.surname and l.surname = r.given_name",
        block_on("date_of_birth"),
        block_on("soc_sec_id"),
        block_on("state", "address_1"),
        block_on("street_number", "address_1"),
        block_on("postcode"),
    ]
    return SettingsCreator(
        unique_id_column_name="rec_id",
        link_type="link_only",
        blocking_rules_to_generate_predictions=blocking_rules,
        comparisons=[
            cl.NameComparison("given_name").configure(term_frequency_adjustments=True),
            cl.NameComparison("surname").configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison("date_of_birth", input_is_string=True, datetime_format="%Y%m%d",
                                     invalid_dates_as_null=True),
            cl.DamerauLevenshteinAtThresholds("soc_sec_id", [1, 2]),
            cl.ExactMatch("street_number").configure(term_frequency_adjustments=True),
            cl.DamerauLevenshteinAtThresholds("postcode", [1, 2]).configure(term_frequency_adjustments=True),
        ],
    )


def predict(directory: Path) -> tuple[Any, float]:
    """Splink's predictions (match probability >= 0.2) and the seconds they took from reading the CSVs."""
    started = time.perf_counter()
    left = _prepare(pd.read_csv(directory / "left.csv", dtype=str))
    right = _prepare(pd.read_csv(directory / "right.csv", dtype=str))
    linker = Linker([left, right], _settings(), db_api=DuckDBAPI(), set_up_basic_logging=False)
    _step(started, "read, linker ready; estimating the match share")
    deterministic_rules = [block_on("soc_sec_id"), block_on("given_name", "surname", "date_of_birth")]
    linker.training.estimate_probability_two_random_records_match(deterministic_rules, recall=0.8)
    _step(started, "u from 1e6 random pairs")
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=42)
    _step(started, "EM blocked on date_of_birth")
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("date_of_birth"), estimate_without_term_frequencies=True)
    _step(started, "EM blocked on postcode")
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("postcode"), estimate_without_term_frequencies=True)
    _step(started, "predict")
    predictions = linker.inference.predict(threshold_match_probability=PREDICT_THRESHOLD).as_pandas_dataframe()
    seconds = time.perf_counter() - started
    _step(started, f"{len(predictions)} pairs predicted")
    return predictions, seconds


def score(predictions: Any, directory: Path) -> dict[str, Any]:
    """Precision, recall and F1 of the pairs at THRESHOLD against links.csv (read by its header)."""
    truth = pd.read_csv(directory / "links.csv", dtype=str)
    true = set(zip(truth["right_id"], truth["left_id"], strict=True))
    left_ids = set(pd.read_csv(directory / "left.csv", dtype=str, usecols=[0]).iloc[:, 0].str.strip())
    linked = predictions[predictions["match_probability"] >= THRESHOLD]
    pairs = {(b, a) if a in left_ids else (a, b)  # either side may come first in a link_only pair
             for a, b in zip(linked["rec_id_l"], linked["rec_id_r"], strict=True)}
    tp = len(pairs & true)
    precision = tp / len(pairs) if pairs else 1.0
    recall = tp / len(true) if true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"matched": len(pairs), "true_positives": tp, "precision": round(precision, 6),
            "recall": round(recall, 6), "f1": round(f1, 6)}


def main(argv: list[str]) -> int:
    directory = Path(argv[1])
    predictions, seconds = predict(directory)
    result = {"splink": splink.__version__, "duckdb": duckdb.__version__, "seconds": round(seconds, 3),
              "threshold": THRESHOLD, "one_to_one": False, "predicted_pairs": len(predictions),
              **score(predictions, directory)}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))

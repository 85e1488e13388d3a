import io
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from gsp.cli.clean import run_clean
from gsp.errors import UserError

TODAY = date(2025, 9, 1)
TRICKY = Path(__file__).parents[2] / "fixtures" / "tricky.jsonl"


def clean(dataset: str, text: str) -> tuple[int, list[dict[str, Any]], str]:
    out, err = io.StringIO(), io.StringIO()
    status = run_clean(dataset, io.StringIO(text), out, err=err, today=TODAY)
    return status, [json.loads(line) for line in out.getvalue().splitlines()], err.getvalue()


def test_every_tricky_case_gets_the_findings_it_declares() -> None:
    lines = TRICKY.read_text(encoding="utf-8").splitlines()
    status, results, _ = clean("telecom.subscriber", TRICKY.read_text(encoding="utf-8"))
    assert status == 0 and len(results) == len(lines)
    for line, result in zip(lines, results, strict=True):
        try:
            expected = json.loads(line)["_expect"]
        except (ValueError, TypeError, KeyError):  # the lines that are not records
            assert [f["rule"] for f in result["findings"]] == ["input.json"] and result["record"] is None
            continue
        case = result["record"]["_case"]
        assert [f["rule"] for f in result["findings"]] == expected["rules"], case
        assert result["rejected"] == expected["rejected"], case


def test_output_keeps_input_order_and_the_original_of_each_fix() -> None:
    _, results, _ = clean("telecom.subscriber", TRICKY.read_text(encoding="utf-8"))
    cases = [r["record"]["_case"] for r in results if r["record"]]
    assert cases[0] == "clean record, 2025 address" and cases[-1] == "no province"
    [mojibake] = [r for r in results if r["record"] and r["record"]["_case"] == "UTF-8 read as Windows-1252"]
    assert mojibake["record"]["subscriber_name"] == "Nguyễn Văn An"
    assert mojibake["findings"][0] == {"rule": "name.mojibake", "field": "subscriber_name", "severity": "fix",
                                       "reason": mojibake["findings"][0]["reason"], "original": "Nguyá»…n VÄƒn An"}


def test_a_line_that_is_not_an_object_is_a_finding_not_a_crash() -> None:
    status, results, err = clean("population.citizen", '{"full_name": \n[1]\n\n')
    assert status == 0 and len(results) == 3
    reasons = [r["findings"][0]["reason"] for r in results]
    assert reasons[0].startswith("line 1 is not valid JSON") and reasons[1] == "line 2 is an array, not a JSON object"
    assert all(r == {"record": None, "findings": [r["findings"][0]], "rejected": True} for r in results)
    assert err == "gsp clean: population.citizen: 3 records, 3 rejected, 0 fixed\n"


def test_enrichments_are_written_when_the_contract_asks_for_them() -> None:
    record = {"personal_id": "015 090 123456", "full_name": "nguyễn văn hòa", "birth_date": "5/3/1990", "sex": "MALE",
              "birth_registration_province": "015", "phone": "+84 912 345 678", "status": "ALIVE",
              "residence": {"province_code": "15", "ward_code": "02647", "address_line": "Tổ 5"}}
    _, [result], _ = clean("population.citizen", json.dumps(record, ensure_ascii=False) + "\n")
    assert result["rejected"] is False
    assert [f["rule"] for f in result["findings"]] == ["name.normalize", "birthdate.parse", "phone.normalize"]
    assert result["record"]["personal_id"] == "015090123456" and result["record"]["birth_date"] == "1990-03-05"
    assert result["enriched"]["id.birth_province"]["province_2025_name"] == "Lào Cai"


def test_an_unknown_dataset_is_a_user_error_before_any_output() -> None:
    with pytest.raises(UserError, match=r"^unknown dataset 'telecom\.subscribers'"):
        clean("telecom.subscribers", '{"msisdn": "0912345678"}\n')

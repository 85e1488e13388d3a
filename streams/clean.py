"""Cleaning records through their dataset's contract.

Pure: plain dicts in (Avro field names), a `Cleaned` value out; no Faust, no Kafka. The rules
live in `streams.rules`; which fields get which rule with which severity is the ``cleaning``
section of ``schemas/datasets/<dataset>.json`` (`streams.contracts`). Every declared rule runs on
every record and reports `Finding`s in the contract's field order; a record is rejected by its
first finding of severity "reject". A "fix" finding means the value was rewritten (the finding
keeps the original), a "warn" finding leaves it as given. Cleaning is idempotent and never
raises, whatever the strings hold. Reasons name the field and the problem, never a person's full value.

The stages clean through `streams.contracts.contract_of`; `clean` is the same by dataset name, and
`clean_citizen` / `clean_subscriber` spell it for the two shipped datasets the tests and tools use.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from streams.contracts import load_contract
from streams.rules import Cleaned, Finding, name_key, normalize_phone

__all__ = ["CITIZEN", "SUBSCRIBER", "Cleaned", "Finding", "clean", "clean_citizen", "clean_subscriber", "name_key",
           "normalize_phone"]

CITIZEN = "population.citizen"
SUBSCRIBER = "telecom.subscriber"


def clean(dataset: str, record: dict[str, Any], *, today: date | None = None) -> Cleaned:
    """Clean one record of a shipped dataset through its contract; `record` is not changed."""
    return load_contract(dataset).clean(record, today=today)


def clean_citizen(record: dict[str, Any], *, today: date | None = None) -> Cleaned:
    """Clean one population record (vn.gsp.population.Citizen fields); `record` is not changed."""
    return clean(CITIZEN, record, today=today)


def clean_subscriber(record: dict[str, Any], *, today: date | None = None) -> Cleaned:
    """Clean one telecom record (vn.gsp.telecom.Subscriber fields); `record` is not changed."""
    return clean(SUBSCRIBER, record, today=today)

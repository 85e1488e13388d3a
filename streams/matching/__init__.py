"""Matching a linked dataset's records against the population registry: one package decides a verdict.

Pure: no Faust, no Kafka. The stage (`streams.stages.match`) decodes a micro-batch, asks a
`Matcher` and encodes what it answers; the worker injects how a personal id is looked up.

- `exact`: the programme's three-field check (personal id, full name, birth date);
- `registry`: what a worker keeps per registry record, derived from the declarations;
- `linker`: a worker's replica of the registry, its search index and stewards' decisions;
- `decide`: the verdict of each record, and `decided_verdict`, what a steward's decision makes of
  a proposal (the review desk applies the same rule).

Probabilistic scoring itself is `streams.linkage`, which knows no dataset.
"""

from streams.matching.decide import Match, Matcher, decided_verdict
from streams.matching.exact import THREE_FIELDS, Check, Entry, Lookup, check
from streams.matching.linker import DEFAULT_MODEL, Linker, load_linker
from streams.matching.registry import RegistryEntries

__all__ = ["DEFAULT_MODEL", "THREE_FIELDS", "Check", "Entry", "Linker", "Lookup", "Match", "Matcher",
           "RegistryEntries", "check", "decided_verdict", "load_linker"]

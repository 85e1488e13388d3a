"""The event envelope every platform event carries, and the vocabulary shared by every package.

(Being filled in: the header, ``event_id`` and the quarantine-issue builder move here.)
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Verdict"]


class Verdict(StrEnum):
    """Outcome of matching a record against the population registry (a str: Avro and JSON carry the value)."""

    MATCHED = "MATCHED"        # id, full name and birth date agree with the registry (or a steward accepted the pair)
    MISMATCH = "MISMATCH"      # the id is in the registry, but the name or birth date differs
    NOT_FOUND = "NOT_FOUND"    # no registry entry for the id, and no search was made (matcher off)
    POSSIBLE = "POSSIBLE"      # a search proposed a likely person: waits for a steward
    NO_MATCH = "NO_MATCH"      # a search found nobody likely, or a steward rejected the proposal

"""`gsp verify`: check identity details an agency holds against the registry, on a running control plane.

One JSON request per input line (request_id, personal_id, full_name, birth_date and any other field
the agency's verify subscription lists); one JSON answer per output line, in order: a verdict and a
per-field agree/disagree mask, or the request's own error (`streams.verify`). Sent over
``POST /api/verifications`` in batches of up to 10,000, as the caller's credential (GSP_TOKEN).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from gsp.cli._common import Commands, add_command, print_json
from gsp.errors import UserError
from gsp.http.client import ApiClient
from schemas.settings import Settings
from streams.verify import MAX_BATCH

__all__ = ["register", "run"]

_SID = "bo-y-te-bhxh:population.citizen"


def register(commands: Commands) -> None:
    verify = add_command(
        commands, "verify", summary="verify identity details against the registry: a verdict and an agree/disagree "
                                    "mask per request (talks to a running control plane)",
        about="""\
            Reads JSON Lines, one request each: {"request_id": "r1", "personal_id": "…", "full_name": "…",
            "birth_date": "…"} plus any other field your verify subscription lists (phone, province_code).
            Prints one JSON answer per line, in order: {"request_id", "verdict" (MATCHED, MISMATCH or
            NOT_FOUND), "mask" (field -> true, false or null)}, or {"request_id", "error"} for a request
            that cannot be verified. Nothing else comes back: no registry value, no other person.
            Needs a consumer credential (GSP_TOKEN) of an agency holding an active verify subscription
            (gsp subscription request --mode verify). Talks to the control plane at GSP_API_URL, else
            the gsp serve whose runtime file is in GSP_HOME.""",
        example=["gsp verify people.jsonl > answers.jsonl",
                 f"gsp verify --subscription {_SID} people.jsonl",
                 """echo '{"request_id": "r1", "personal_id": "001099000123", "full_name": "Nguyễn Văn An", """
                 """"birth_date": "1999-05-04"}' | gsp verify -"""])
    verify.add_argument("file", metavar="FILE.jsonl", help="one JSON request per line; - for standard input")
    verify.add_argument("--subscription", help=f"your verify subscription, e.g. {_SID} "
                                               "(default: your agency's only one)")
    verify.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings, out: TextIO | None = None) -> int:
    api = ApiClient.for_settings(settings, timeout_s=120.0)  # the control plane itself waits up to 30 s per batch
    named = {"subscription": args.subscription} if args.subscription else {}
    for batch in _batches(args.file):
        found = api.post("/api/verifications", {**named, "requests": batch})
        for answer in found["answers"]:
            print_json(answer, out)
    return 0


def _batches(source: str) -> Iterator[list[Any]]:
    """The file's requests, in batches the API takes; a line that is not JSON is a UserError naming it."""
    batch: list[Any] = []
    for number, line in _lines(source):
        if not line.strip():
            continue
        try:
            batch.append(json.loads(line))
        except ValueError as exc:
            raise UserError(f"{source} line {number} is not JSON: {exc}") from None
        if len(batch) == MAX_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _lines(source: str) -> Iterator[tuple[int, str]]:
    if source == "-":
        yield from enumerate(sys.stdin, start=1)
        return
    try:
        with Path(source).open(encoding="utf-8") as lines:
            yield from enumerate(lines, start=1)
    except OSError as exc:
        raise UserError(f"cannot read {source}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UserError(f"{source} is not UTF-8 text") from None

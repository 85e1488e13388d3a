"""`gsp catalog`: the datasets a consumer may request, read from a running control plane."""

from __future__ import annotations

import argparse
import sys
import urllib.parse
from typing import Any, TextIO

from gsp.cli._common import Commands, add_actions, add_command, print_json, print_table
from gsp.http.client import ApiClient
from schemas.settings import Settings
from streams.quality import DIMENSIONS

__all__ = ["register", "run"]


def register(commands: Commands) -> None:
    catalog = add_command(
        commands, "catalog", summary="the datasets agencies may request (talks to a running control plane)",
        about="""\
            Derived from the dataset declarations: each dataset's owner agency, source system, freshness
            expectation and shareable fields with their type and sensitivity class under the Personal Data
            Protection Law 91/2025/QH15 (public, internal, personal, sensitive), with its current quality
            scores and how many agencies subscribe. Talks to the control plane at GSP_API_URL, else the
            gsp serve whose runtime file is in GSP_HOME.""",
        example=["gsp catalog list", "gsp catalog show telecom.subscriber"])
    actions = add_actions(catalog)
    listing = add_command(actions, "list", summary="every dataset: owner, role, offered fields, scores, subscribers",
                          example=["gsp catalog list", "gsp catalog list --json"])
    listing.add_argument("--json", action="store_true", help="print the datasets as one JSON array")
    show = add_command(actions, "show", summary="one dataset: its fields with type, sensitivity and description",
                       example=["gsp catalog show telecom.subscriber",
                                "gsp catalog show population.citizen --json"])
    show.add_argument("dataset", help="as gsp catalog list shows it, e.g. telecom.subscriber")
    show.add_argument("--json", action="store_true", help="print the entry as one JSON object")
    catalog.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    api = ApiClient.for_settings(settings)
    if args.action == "list":
        datasets = api.get("/api/catalog")
        if args.json:
            print_json(datasets)
        else:
            print_table(["dataset", "owner", "role", "shareable", "fields", *DIMENSIONS, "subscribers"],
                        ([d["name"], d["owner"], d["role"], "yes" if d["shareable"] else "no",
                          _classes(d["sensitivity"]), *(_score(d["scores"].get(s)) for s in DIMENSIONS),
                          d["subscribers"]] for d in datasets))
    else:
        found = api.get(f"/api/catalog/{urllib.parse.quote(args.dataset)}")
        if args.json:
            print_json(found)
        else:
            _render(found, sys.stdout)
    return 0


def _classes(sensitivity: dict[str, int]) -> str:
    """``6 personal, 4 internal``: the offered fields per class, the most protected first."""
    return ", ".join(f"{n} {cls}" for cls, n in reversed(sensitivity.items()) if n) or "none offered"


def _score(score: float | None) -> str:
    return "n/a" if score is None else f"{score:.3f}"


def _type(avro_type: Any) -> str:
    """An Avro type in a few characters: ``string``, ``null|string``, a named type by its name."""
    if isinstance(avro_type, list):
        return "|".join(_type(branch) for branch in avro_type)
    if isinstance(avro_type, dict):
        if "name" in avro_type:
            return f"{avro_type['type']} {avro_type['name']}"
        if avro_type.get("type") == "array":
            return f"array<{_type(avro_type['items'])}>"
        return str(avro_type.get("type"))
    return str(avro_type)


def _render(entry: dict[str, Any], out: TextIO) -> None:
    scores = ", ".join(f"{d} {_score(entry['scores'].get(d))}" for d in DIMENSIONS)
    out.write(f"{entry['name']}: {entry['doc']}\n"
              f"  owner:         {entry['owner']}\n"
              f"  source system: {entry['source_system']}\n"
              f"  role:          {entry['role']}, key {entry['key']}\n"
              f"  freshness:     updated within {entry['freshness_days']:g} days, shared within {entry['delivery_s']:g} s\n"
              f"  quality:       {scores}\n"
              f"  subscribers:   {entry['subscribers']} {'agency' if entry['subscribers'] == 1 else 'agencies'}\n")
    if not entry["shareable"]:
        out.write("  fields:        none offered: the dataset is not shareable\n")
        return
    rows = [("field", "type", "sensitivity", "description"),
            *((f["name"], _type(f["type"]), f["sensitivity"], f["description"] or "-") for f in entry["fields"])]
    # Aligned rather than tab-separated: this view is for reading, --json is for programs.
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    out.write("  fields:\n")
    for row in rows:
        out.write("    " + "  ".join(value.ljust(width) for value, width in zip(row, widths, strict=False)) + f"  {row[3]}\n")
    out.write(f"  to request (a consumer's credential; {entry['owner']} decides):\n"
              f"    gsp subscription request --dataset {entry['name']} --fields FIELD,... "
              '--purpose "..." --legal-basis "..."\n')

"""`gsp lineage EVENT_ID`: a delivered record's way, from the audit ledger and the topics (gsp.governance.lineage)."""

from __future__ import annotations

import argparse
import urllib.parse

from gsp.cli._common import Commands, add_command, print_json
from gsp.http.client import ApiClient
from schemas.settings import Settings

__all__ = ["register", "run"]


def register(commands: Commands) -> None:
    lineage = add_command(
        commands, "lineage", summary="a delivered record's way: source, topics and offsets, subscription and agency",
        about="""\
            EVENT_ID is the event id an agency received (k1.…) or the platform's own. Needs the admin, ops or
            steward role; talks to a running control plane.""",
        example=["gsp lineage k1.5f0c…", "gsp lineage 3f2e9c4e-… --json"])
    lineage.add_argument("event_id", help="the agency's event id or the platform's")
    lineage.add_argument("--json", action="store_true", help="print the answer as one JSON object")
    lineage.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    answer = ApiClient.for_settings(settings).get(f"/api/lineage/{urllib.parse.quote(args.event_id, safe='')}")
    if args.json:
        print_json(answer)
        return 0
    for d in answer["deliveries"]:
        record, source = d["record"], d["source"]
        print(f"event      {record['event_id']} (the agency's: {record['agency_event_id']})")
        print(f"source     {source['system']} key {source['key'] or '(no longer on its topic)'} "
              f"version {source['version']}")
        for topic, where in record["positions"].items():
            partition, offset = where.split(":")
            print(f"  {topic:<40} partition {partition} offset {offset}")
        print(f"shared to  {d['agency']} under {d['subscription_id']} v{d['version']} ({d['channel']}), "
              f"fields {', '.join(d['fields'] or [])}")
        print(f"purpose    {d['purpose']}; legal basis {d['legal_basis']}")
        print(f"ledger     {d['entry']}\n")
    return 0

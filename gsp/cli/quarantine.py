"""`gsp quarantine`: the stewards' work on quarantined records, on a running control plane."""

from __future__ import annotations

import argparse
import urllib.parse

from gsp.cli._common import Commands, add_actions, add_command, add_desk_list, print_json, print_table
from gsp.errors import UserError
from gsp.http.client import ApiClient, query
from schemas.settings import Settings

__all__ = ["register", "run"]

_BASE = "/api/quarantine"


def register(commands: Commands) -> None:
    quarantine = add_command(
        commands, "quarantine", summary="work quarantined records (talks to a running control plane)",
        about="""\
            Records that failed their dataset's contract wait here with the rule, field and reason. A
            steward releases one, fixed, back into the pipeline under a new event id, or discards it with
            a reason; both are audited on gsp.audit. Talks to the control plane at GSP_API_URL, else the
            gsp serve whose runtime file is in GSP_HOME.""",
        example=["gsp quarantine list --counts", "gsp quarantine list --dataset telecom.subscriber --rule id.prefix"])
    actions = add_actions(quarantine)
    listing = add_desk_list(
        actions, summary="quarantined records, oldest first, without their values", closed=["released", "discarded"],
        about="""\
            Columns: event_id, dataset, rule, field, status, reason.
            With --counts: dataset, rule, open records.""",
        example=["gsp quarantine list", "gsp quarantine list --rule id.prefix --limit 20",
                 "gsp quarantine list --counts --json"])
    listing.add_argument("--rule", help="only this rule, e.g. id.prefix")
    listing.add_argument("--counts", action="store_true", help="print open records per dataset and rule instead")
    show = add_command(actions, "show", summary="one quarantined record with its original value, as JSON",
                       example=["gsp quarantine show EVENT_ID    # an event_id from gsp quarantine list"])
    show.add_argument("event_id", help="as gsp quarantine list shows it")
    release = add_command(
        actions, "release", summary="publish the record again, fixed, under a new event id",
        example=["gsp quarantine release EVENT_ID --fix id_number=001085012345",
                 "gsp quarantine release EVENT_ID --fix residence.ward_code=00004 --unset address"])
    release.add_argument("event_id", help="as gsp quarantine list shows it")
    release.add_argument("--fix", action="append", default=[], metavar="FIELD=VALUE",
                         help="set a field, dotted for nested ones, e.g. residence.ward_code=00004 (repeatable)")
    release.add_argument("--unset", action="append", default=[], metavar="FIELD",
                         help="set an optional field to null (repeatable)")
    discard = add_command(actions, "discard", summary="close a quarantined record for good, with a reason",
                          example=['gsp quarantine discard EVENT_ID --reason "test row from the vendor"'])
    discard.add_argument("event_id", help="as gsp quarantine list shows it")
    discard.add_argument("--reason", required=True, help="why it is discarded (kept and audited)")
    quarantine.set_defaults(run=run)


def _fixes(assignments: list[str], unset: list[str]) -> dict[str, str | None]:
    fixes: dict[str, str | None] = {}
    for assignment in assignments:
        name, sep, value = assignment.partition("=")
        if not sep or not name.strip():
            raise UserError(f"--fix {assignment!r} must look like FIELD=VALUE")
        fixes[name.strip()] = value
    fixes.update({name.strip(): None for name in unset})
    return fixes


def run(args: argparse.Namespace, settings: Settings) -> int:
    api = ApiClient.for_settings(settings)
    if args.action == "list" and args.counts:
        counts = api.get(f"{_BASE}/counts")
        if args.json:
            print_json(counts)
        else:
            print_table(["dataset", "rule", "open"],
                        ([dataset, rule, n] for dataset, rules in counts.items() for rule, n in rules.items()))
    elif args.action == "list":
        items = api.get(_BASE + query(dataset=args.dataset, rule=args.rule, status=args.status, limit=args.limit))
        if args.json:
            print_json(items)
        else:
            print_table(["event_id", "dataset", "rule", "field", "status", "reason"],
                        ([i["event_id"], i["dataset"], i["rule"], i["field"], i["status"], i["reason"]] for i in items))
    elif args.action == "show":
        print_json(api.get(f"{_BASE}/{urllib.parse.quote(args.event_id)}"), indent=2)
    elif args.action == "release":
        body = {"fixes": _fixes(args.fix, args.unset)}
        item = api.post(f"{_BASE}/{urllib.parse.quote(args.event_id)}/release", body)
        print(f"released {args.event_id} as {item['released_event_id']} to raw.{item['dataset']}.v1")
    else:
        api.post(f"{_BASE}/{urllib.parse.quote(args.event_id)}/discard", {"reason": args.reason})
        print(f"discarded {args.event_id}")
    return 0

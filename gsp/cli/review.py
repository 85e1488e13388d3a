"""`gsp review`: the stewards' decisions on pairs the matcher proposed, on a running control plane."""

from __future__ import annotations

import argparse
import sys
import urllib.parse
from pathlib import Path

from gsp.cli._common import Commands, add_actions, add_command, add_desk_list, print_json, print_table
from gsp.errors import UserError
from gsp.http.client import ApiClient, query
from schemas.settings import Settings

__all__ = ["register", "run"]

_BASE = "/api/review"


def register(commands: Commands) -> None:
    review = add_command(
        commands, "review", summary="decide pairs the matcher proposed (talks to a running control plane)",
        about="""\
            POSSIBLE matches, and MISMATCHes that are likely the same person, wait for a steward. A decision
            is published as the record's final match result and on gsp.review.decisions (workers apply it
            instead of asking again), and audited. Talks to the control plane at GSP_API_URL, else the gsp
            serve whose runtime file is in GSP_HOME.""",
        example=["gsp review list", 'gsp review accept ITEM_ID --reason "called the subscriber"'])
    actions = add_actions(review)
    add_desk_list(actions, summary="proposed matches, oldest first",
                  about="Columns: item_id, dataset, source_key, personal_id, probability, levels.",
                  closed=["accepted", "rejected"],
                  example=["gsp review list", "gsp review list --status all --limit 1000 --json"])
    show = add_command(actions, "show", summary="one proposed match with the subscriber's record, as JSON",
                       example=["gsp review show ITEM_ID    # an item_id from gsp review list"])
    show.add_argument("item_id", help="as gsp review list shows it")
    accept = add_command(actions, "accept",
                         summary="the subscriber is the proposed registry record: share it as MATCHED",
                         example=["gsp review accept ITEM_ID",
                                  'gsp review accept ITEM_ID --reason "same ward, same birth date"'])
    accept.add_argument("item_id", help="as gsp review list shows it")
    accept.add_argument("--reason", default="", help="why (optional; kept and audited)")
    reject = add_command(actions, "reject",
                         summary="not the proposed registry record: NO_MATCH (MISMATCH for its own id)",
                         example=['gsp review reject ITEM_ID --reason "different mother\'s name on file"'])
    reject.add_argument("item_id", help="as gsp review list shows it")
    reject.add_argument("--reason", required=True, help="why (kept and audited)")
    export = add_command(actions, "export", summary="every decision as CSV, a column per comparison level",
                         about="For re-estimating the linkage model from the stewards' decisions.",
                         example=["gsp review export --out decisions.csv", "gsp review export | head"])
    export.add_argument("--out", type=Path, metavar="FILE", help="file to write (default: standard output)")
    review.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    api = ApiClient.for_settings(settings)
    if args.action == "list":
        items = api.get(_BASE + query(dataset=args.dataset, status=args.status, limit=args.limit))
        if args.json:
            print_json(items)
            return 0
        print_table(["item_id", "dataset", "source_key", "personal_id", "probability", "levels"],
                    ([i["item_id"], i["dataset"], i["source_key"], i["personal_id"],
                      None if i["probability"] is None else f"{i['probability']:.4f}",
                      ",".join(f"{name}={level}" for name, level in sorted(i["levels"].items()))] for i in items))
    elif args.action == "show":
        print_json(api.get(f"{_BASE}/{urllib.parse.quote(args.item_id)}"), indent=2)
    elif args.action == "export":
        csv_text = api.get(f"{_BASE}/decisions.csv", text=True)
        if args.out is None:
            sys.stdout.write(csv_text)
            return 0
        try:
            args.out.write_text(csv_text, encoding="utf-8")
        except OSError as exc:
            raise UserError(f"cannot write {args.out}: {exc.strerror}") from None
        print(f"decisions written to {args.out}")
    else:
        item = api.post(f"{_BASE}/{urllib.parse.quote(args.item_id)}/{args.action}",
                        {"reason": args.reason})
        print(f"{item['status']} {args.item_id}: {item['match_verdict']} published as {item['match_event_id']} "
              f"to match.{item['dataset']}.v1")
    return 0

"""`gsp subscription`: approve, list and revoke agencies' subscriptions on a running control plane."""

from __future__ import annotations

import argparse
import urllib.parse

from gsp.cli._common import Commands, add_actions, add_command, print_json, print_table
from gsp.errors import UserError
from gsp.http.client import ApiClient
from schemas.envelope import Verdict
from schemas.settings import Settings

__all__ = ["register", "run"]


def register(commands: Commands) -> None:
    subscription = add_command(
        commands, "subscription", summary="agencies' subscriptions (talks to a running control plane)",
        about="""\
            A subscription gives one agency the approved fields of one dataset, optionally only rows whose
            fields hold given values, on a topic of its own. Talks to the control plane at GSP_API_URL,
            else the gsp serve whose runtime file is in GSP_HOME.""",
        example=["gsp subscription list",
                 "gsp subscription create --agency bo-cong-an --dataset telecom.subscriber --fields msisdn,carrier"])
    actions = add_actions(subscription)
    create = add_command(
        actions, "create", summary="approve a subscription and publish it to its agency's topic",
        example=["gsp subscription create --agency bo-cong-an --dataset telecom.subscriber "
                 "--fields msisdn,carrier,personal_id --where carrier=Viettel,VinaPhone"])
    create.add_argument("--agency", required=True, help="agency slug, e.g. bo-cong-an")
    create.add_argument("--dataset", required=True, help="dataset, e.g. telecom.subscriber")
    create.add_argument("--fields", required=True, help="comma-separated approved fields")
    create.add_argument("--where", action="append", default=[], metavar="FIELD=V1,V2",
                        help="row filter: only rows whose FIELD is one of the values (repeatable)")
    create.add_argument("--verdicts", default=Verdict.MATCHED.value, help="comma-separated match verdicts shared")
    listing = add_command(actions, "list", summary="list the subscriptions: id, version, topic, fields",
                          example=["gsp subscription list", "gsp subscription list --json"])
    listing.add_argument("--json", action="store_true", help="print the subscriptions as one JSON array")
    delete = add_command(actions, "delete", summary="revoke a subscription: its agency receives nothing more",
                         example=["gsp subscription delete bo-cong-an:telecom.subscriber"])
    delete.add_argument("subscription_id", help="as gsp subscription list shows it")
    subscription.set_defaults(run=run)


def _where(clauses: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for clause in clauses:
        name, sep, values = clause.partition("=")
        if not sep or not name or not values:
            raise UserError(f"--where {clause!r} must look like FIELD=V1,V2")
        out[name.strip()] = [v.strip() for v in values.split(",") if v.strip()]
    return out


def run(args: argparse.Namespace, settings: Settings) -> int:
    api = ApiClient.for_settings(settings)
    if args.action == "create":
        body = {"agency": args.agency, "dataset": args.dataset,
                "fields": [f.strip() for f in args.fields.split(",") if f.strip()],
                "row_filter": _where(args.where), "verdicts": [v.strip() for v in args.verdicts.split(",")]}
        event = api.post("/api/subscriptions", body)
        print(f"subscription {event['subscription_id']} v{event['version']} -> topic {event['topic']} "
              f"(schema id {event['schema_id']})")
    elif args.action == "list":
        subscriptions = api.get("/api/subscriptions")
        if args.json:
            print_json(subscriptions)
        else:
            print_table(["subscription_id", "version", "topic", "fields"],
                        ([s["subscription_id"], f"v{s['version']}", s["topic"], ",".join(s["fields"])]
                         for s in subscriptions))
    else:
        api.delete(f"/api/subscriptions/{urllib.parse.quote(args.subscription_id)}")
        print(f"subscription {args.subscription_id} revoked")
    return 0

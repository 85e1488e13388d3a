"""`gsp acl`: the Kafka ACLs a production cluster needs for the agencies' current subscriptions."""

from __future__ import annotations

import argparse

from gsp.cli._common import Commands, add_actions, add_command, print_json
from gsp.governance.acl import DEFAULT_PRINCIPAL, acl_bindings, check_principal, kafka_acls_commands, to_json
from gsp.http.client import ApiClient
from schemas.settings import Settings

__all__ = ["register", "run"]


def register(commands: Commands) -> None:
    acl = add_command(
        commands, "acl", summary="Kafka ACLs for the agencies' subscriptions (talks to a running control plane)",
        about="""\
            Each agency may read and describe the share topics of its subscriptions that deliver now, and
            read consumer groups named <agency slug>.… to commit its offsets; nothing else. The embedded
            broker enforces no ACLs: apply them to a production Kafka with an authorizer. Talks to the
            control plane at GSP_API_URL, else the gsp serve whose runtime file is in GSP_HOME.""",
        example=["gsp acl export > acls.sh && BOOTSTRAP=kafka-1:9093 sh acls.sh"])
    actions = add_actions(acl)
    export = add_command(
        actions, "export", summary="print the ACLs as kafka-acls.sh commands or as JSON",
        about="""\
            One kafka-acls.sh --add line per ACL, reading the cluster's address from $BOOTSTRAP (a cluster
            that authenticates its clients also needs kafka-acls.sh's --command-config with an admin's
            properties), or one JSON array of bindings (principal, resource_type, resource_name,
            pattern_type, operation, permission, host).""",
        example=["gsp acl export", "gsp acl export --format json",
                 "gsp acl export --principal 'User:{agency}'    # principals named by X-Road id"])
    export.add_argument("--format", default="kafka-acls", choices=["kafka-acls", "json"], help="how to print them")
    export.add_argument("--principal", default=DEFAULT_PRINCIPAL, metavar="TEMPLATE",
                        help="each agency's Kafka principal; {agency_slug} and {agency} (its X-Road id) are filled in")
    acl.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    check_principal(args.principal)  # a mistyped template is reported before the control plane is asked
    bindings = acl_bindings(ApiClient.for_settings(settings).get("/api/subscriptions"), principal=args.principal)
    if args.format == "json":
        print_json(to_json(bindings), indent=2)
    else:
        for line in kafka_acls_commands(bindings):
            print(line)
    return 0

"""`gsp whoami`: the agency, key and roles of the credential the CLI sends (GSP_TOKEN, else GSP_HOME/admin.token)."""

from __future__ import annotations

import argparse

from gsp.cli._common import Commands, add_command, print_json
from gsp.http.client import ApiClient
from schemas.settings import Settings

__all__ = ["register", "run"]


def register(commands: Commands) -> None:
    whoami = add_command(
        commands, "whoami", summary="the agency, key id and roles of your credential (talks to a running control plane)",
        about="""\
            The credential sent is GSP_TOKEN, else the admin token gsp serve wrote to GSP_HOME/admin.token.
            Talks to the control plane at GSP_API_URL, else the gsp serve whose runtime file is in GSP_HOME.""",
        example=["gsp whoami", "GSP_TOKEN=gsp_… gsp whoami --json"])
    whoami.add_argument("--json", action="store_true", help="print the answer as one JSON object")
    whoami.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    me = ApiClient.for_settings(settings).get("/api/whoami")
    if args.json:
        print_json(me)
        return 0
    roles = ", ".join(g["role"] + (f" ({', '.join(g['datasets'])})" if g.get("datasets") else "")
                      for g in me["grants"])
    print(f"agency:  {me['agency']}\n"
          f"key id:  {me['key_id']}\n"
          f"roles:   {roles or 'none'}")
    return 0

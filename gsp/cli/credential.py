"""`gsp credential`: issue, list, revoke and expire agencies' API credentials (admin), on a running control plane.

A role is written ``ROLE`` or, for the roles scoped to datasets, ``ROLE:DATASET,DATASET``:
``consumer``, ``owner:telecom.subscriber``, ``steward:*`` (every dataset). The token is printed
once, when issued: the control plane keeps only its digest.
"""

from __future__ import annotations

import argparse
import urllib.parse
from datetime import UTC, datetime
from typing import Any

from gsp.cli._common import Commands, add_actions, add_command, print_json, print_table
from gsp.errors import UserError
from gsp.http.client import ApiClient, query
from schemas.settings import Settings

__all__ = ["parse_role", "register", "run"]

_BASE = "/api/credentials"
_ROLES = "admin, owner, steward, ops, consumer, portal"


def register(commands: Commands) -> None:
    credential = add_command(
        commands, "credential", summary="agencies' API credentials (talks to a running control plane)",
        about=f"""\
            A credential belongs to one registered agency (gsp agency register) and carries roles: {_ROLES}.
            Owner and steward name the datasets they cover; an owner only datasets its agency is the
            declared owner of. Its token is shown once, when issued. Needs an admin credential (GSP_TOKEN,
            else GSP_HOME/admin.token). Talks to the control plane at GSP_API_URL, else the gsp serve whose
            runtime file is in GSP_HOME.""",
        example=["gsp credential issue --agency VN/GOV/bo-y-te/bhxh --role consumer --label \"sharing team\"",
                 "gsp credential list --agency VN/GOV/bo-y-te/bhxh", "gsp credential revoke KEY_ID"])
    actions = add_actions(credential)
    issue = add_command(
        actions, "issue", summary="issue a credential and print its token, this once",
        about="""\
            --role ROLE, or ROLE:DATASET,DATASET for owner and steward (steward:* covers every dataset);
            repeat it for several roles. The token is printed once with how to use it; --token-only prints
            the token alone, for a script to store.""",
        example=["gsp credential issue --agency VN/GOV/bo-y-te/bhxh --role consumer --label \"sharing team\"",
                 "gsp credential issue --agency VN/GOV/bo-khoa-hoc-va-cong-nghe/cuc-vien-thong "
                 "--role owner:telecom.subscriber --expires 2027-12-31T23:59:59+07:00",
                 "gsp credential issue --agency VN/GOV/gsp/platform --role 'steward:*' --token-only > steward.token"])
    issue.add_argument("--agency", required=True, help="a registered agency, e.g. VN/GOV/bo-y-te/bhxh")
    issue.add_argument("--role", action="append", required=True, metavar="ROLE[:DATASETS]",
                       help=f"one of {_ROLES}; owner:D1,D2 and steward:D1,D2 or steward:* (repeatable)")
    issue.add_argument("--label", default="", help="what the credential is for, e.g. sharing team")
    issue.add_argument("--expires", metavar="ISO",
                       help="when it stops working, ISO 8601 with a zone, e.g. 2027-12-31T23:59:59+07:00 "
                            "(default: never)")
    issue.add_argument("--token-only", action="store_true", help="print only the token, for scripts")
    listing = add_command(actions, "list", summary="credentials: key id, agency, roles, state; never a token",
                          example=["gsp credential list", "gsp credential list --agency VN/GOV/bo-y-te/bhxh --json"])
    listing.add_argument("--agency", help="only this agency's, e.g. VN/GOV/bo-y-te/bhxh")
    listing.add_argument("--json", action="store_true", help="print the credentials as one JSON array")
    revoke = add_command(actions, "revoke", summary="revoke a credential at once: its next request is refused",
                         example=["gsp credential revoke 3f9a1c0d5e7b2a46    # a key_id from gsp credential list"])
    revoke.add_argument("key_id", help="as gsp credential list shows it")
    expire = add_command(actions, "expire", summary="make a credential expire, now or at a given time",
                         example=["gsp credential expire 3f9a1c0d5e7b2a46",
                                  "gsp credential expire 3f9a1c0d5e7b2a46 --at 2027-06-30T17:00:00+07:00"])
    expire.add_argument("key_id", help="as gsp credential list shows it")
    expire.add_argument("--at", metavar="ISO", help="ISO 8601 with a zone (default: now)")
    credential.set_defaults(run=run)


def parse_role(text: str) -> dict[str, Any]:
    """``consumer`` -> {"role": "consumer"}; ``owner:a.b,c.d`` -> {"role": "owner", "datasets": ["a.b", "c.d"]}."""
    role, sep, datasets = text.partition(":")
    named = [d.strip() for d in datasets.split(",") if d.strip()]
    if not role.strip() or (sep and not named):
        raise UserError(f"--role {text!r} must look like consumer or owner:telecom.subscriber,population.citizen")
    return {"role": role.strip(), **({"datasets": named} if named else {})}


def _grants(grants: list[dict[str, Any]]) -> str:
    return " ".join(g["role"] + (":" + ",".join(g["datasets"]) if g.get("datasets") else "") for g in grants)


def _iso(ms: int | None) -> str | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds").replace(
        "+00:00", "Z")


def run(args: argparse.Namespace, settings: Settings) -> int:
    api = ApiClient.for_settings(settings)
    if args.action == "issue":
        body = {"agency": args.agency, "grants": [parse_role(r) for r in args.role], "label": args.label,
                **({"expires_at": args.expires} if args.expires else {})}
        issued = api.post(_BASE, body)
        if args.token_only:
            print(issued["token"])
            return 0
        print(f"credential {issued['key_id']} of {issued['agency']}: {_grants(issued['grants'])}, "
              f"expires {_iso(issued['expires_at']) or 'never'}\n"
              f"token: {issued['token']}\n"
              "This token is shown only now: the control plane keeps only its digest. Hand it over safely; "
              "to use it:\n"
              f"  export GSP_TOKEN={issued['token']}")
    elif args.action == "list":
        found = api.get(_BASE + query(agency=args.agency))
        if args.json:
            print_json(found)
        else:
            print_table(["key_id", "agency", "roles", "state", "label", "created", "expires"],
                        ([c["key_id"], c["agency"], _grants(c["grants"]), c["state"], c["label"],
                          _iso(c["created_at"]), _iso(c["expires_at"])] for c in found))
    elif args.action == "revoke":
        found = api.post(f"{_BASE}/{urllib.parse.quote(args.key_id, safe='')}/revoke")
        print(f"credential {found['key_id']} of {found['agency']} revoked: its next request is refused")
    else:
        found = api.post(f"{_BASE}/{urllib.parse.quote(args.key_id, safe='')}/expire", {"at": args.at} if args.at else {})
        print(f"credential {found['key_id']} of {found['agency']}: {found['state']}, "
              f"expires {_iso(found['expires_at'])}")
    return 0

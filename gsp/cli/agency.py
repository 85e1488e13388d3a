"""`gsp agency`: register the agencies that hold credentials (admin), on a running control plane.

A contact is written as one argument, ``NAME [<EMAIL>] [PHONE]``:

    "Nguyễn Văn An <an@bhxh.gov.vn> 024 3936 1234"   -> name, email and phone
    "Nguyễn Văn An 0912345678"                        -> name and phone
    "Phòng Công nghệ thông tin"                       -> a name only

The phone is the trailing run of digits (a leading +, spaces, dots and dashes allowed, 6 digits at
least); whatever comes before the email, or before the phone, is the name.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

from gsp.cli._common import Commands, add_actions, add_command, print_json, print_table
from gsp.errors import UserError
from gsp.governance.identity import agency_slug
from gsp.http.client import ApiClient
from schemas.settings import Settings

__all__ = ["parse_contact", "register", "run"]

_BASE = "/api/agencies"
_CONTACT = re.compile(r"^(?P<name>[^<>]*?)\s*(?:<(?P<email>[^<>\s]+@[^<>\s]+)>)?\s*(?P<phone>\+?\d[\d .-]{4,}\d)?$")


def register(commands: Commands) -> None:
    agency = add_command(
        commands, "agency", summary="the agencies that may hold credentials (talks to a running control plane)",
        about="""\
            An agency is an X-Road style subsystem id, <instance>/<class>/<member>/<subsystem>, such as
            VN/GOV/bo-y-te/bhxh; its slug <member>-<subsystem> names its share topics. Registering is the
            first step before issuing it a credential (gsp credential issue). Needs an admin credential
            (GSP_TOKEN, else GSP_HOME/admin.token). Talks to the control plane at GSP_API_URL, else the gsp
            serve whose runtime file is in GSP_HOME.""",
        example=['gsp agency register VN/GOV/bo-y-te/bhxh --name "Bảo hiểm xã hội Việt Nam"', "gsp agency list"])
    actions = add_actions(agency)
    add = add_command(
        actions, "register", summary="register an agency, or update its name and contacts",
        about="""\
            A contact is one argument, NAME [<EMAIL>] [PHONE]: "Nguyễn Văn An <an@bhxh.gov.vn> 024 3936 1234",
            "Nguyễn Văn An 0912345678" or just a name. Registering again replaces the name and contacts.""",
        example=['gsp agency register VN/GOV/bo-y-te/bhxh --name "Bảo hiểm xã hội Việt Nam" '
                 '--contact "Nguyễn Văn An <an@bhxh.gov.vn> 024 3936 1234" --contact "Trần Thị Bình 0912345678"'])
    add.add_argument("agency_id", metavar="AGENCY_ID", help="X-Road style id, e.g. VN/GOV/bo-y-te/bhxh")
    add.add_argument("--name", required=True, help="display name, in Vietnamese with diacritics")
    add.add_argument("--contact", action="append", default=[], metavar='"NAME <EMAIL> PHONE"',
                     help="a person to call about this agency's data (repeatable)")
    listing = add_command(actions, "list", summary="every registered agency: id, slug, name, contacts",
                          example=["gsp agency list", "gsp agency list --json"])
    listing.add_argument("--json", action="store_true", help="print the agencies as one JSON array")
    rotate = add_command(
        actions, "rotate-key", summary="new pseudonym secret: new event ids, source and person keys from now on",
        example=["gsp agency rotate-key VN/GOV/bo-y-te/bhxh"])
    rotate.add_argument("agency_id", help="a registered agency, e.g. VN/GOV/bo-y-te/bhxh")
    agency.set_defaults(run=run)


def parse_contact(text: str) -> dict[str, str]:
    """``NAME [<EMAIL>] [PHONE]`` -> {"name", "email"?, "phone"?}."""
    found = _CONTACT.match(text.strip())
    if found is None or not found["name"]:
        raise UserError(f"--contact {text!r} must look like \"Nguyễn Văn An <an@bhxh.gov.vn> 024 3936 1234\" "
                        "(a name, then optionally <email> and a phone number)")
    return {key: value.strip() for key, value in found.groupdict().items() if value}


def _contact(contact: dict[str, Any]) -> str:
    return " ".join([contact["name"], *([f"<{contact['email']}>"] if contact.get("email") else []),
                     *([contact["phone"]] if contact.get("phone") else [])])


def run(args: argparse.Namespace, settings: Settings) -> int:
    api = ApiClient.for_settings(settings)
    if args.action == "register":
        found = api.post(_BASE, {"agency": args.agency_id, "name": args.name,
                                 "contacts": [parse_contact(c) for c in args.contact]})
        contacts = len(found["contacts"])
        print(f"agency {found['agency']} registered: {found['name']} (slug {found['slug']}, "
              f"{contacts} contact{'' if contacts == 1 else 's'}); "
              f"issue it a credential with gsp credential issue --agency {found['agency']} --role consumer")
    elif args.action == "rotate-key":
        slug = agency_slug(args.agency_id)
        done = api.post(f"{_BASE}/{slug}/rotate-key")
        print(f"agency {done['agency']}: pseudonym secret version {done['key_version']}; republished "
              f"{len(done['republished'])} active subscription(s): {', '.join(done['republished']) or 'none'}")
    else:
        agencies = api.get(_BASE)
        if args.json:
            print_json(agencies)
        else:
            print_table(["agency", "slug", "name", "contacts"],
                        ([a["agency"], a["slug"], a["name"], "; ".join(map(_contact, a["contacts"]))]
                         for a in agencies))
    return 0

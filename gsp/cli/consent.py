"""`gsp consent give|withdraw PERSONAL_ID --subscription ID`: a person's consent to a consent-based subscription.

For the citizen portal's operators (role portal) and admins; talks to a running control plane.
The command returns once the broker has the change: from then on a withdrawn person's records no
longer reach the subscription.
"""

from __future__ import annotations

import argparse

from gsp.cli._common import Commands, add_actions, add_command, print_json
from gsp.http.client import ApiClient
from schemas.settings import Settings

__all__ = ["register", "run"]


def register(commands: Commands) -> None:
    consent = add_command(
        commands, "consent", summary="record a person's consent to a subscription whose legal basis is consent, "
        "or its withdrawal",
        about="""\
            A subscription requested with --consent shares a person's records only while their consent is on
            record. Needs the portal or admin role. A source connector can feed the same topic (gsp.consent).""",
        example=["gsp consent give 001085012345 --subscription bo-y-te-bhxh:telecom.subscriber --reference PD-2027-001",
                 "gsp consent withdraw 001085012345 --subscription bo-y-te-bhxh:telecom.subscriber"])
    actions = add_actions(consent)
    for action, summary in (("give", "record that the person consents"),
                            ("withdraw", "record that the person withdrew consent: nothing more of theirs is shared")):
        parser = add_command(actions, action, summary=summary,
                             example=[f"gsp consent {action} 001085012345 --subscription bo-y-te-bhxh:telecom.subscriber"])
        parser.add_argument("personal_id", help="12-digit personal id")
        parser.add_argument("--subscription", required=True, help="the subscription id, as gsp subscription list shows")
        parser.add_argument("--reference", help="the consent's own reference, such as a form number")
        parser.add_argument("--json", action="store_true", help="print the recorded consent as one JSON object")
    consent.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    recorded = ApiClient.for_settings(settings).post("/api/consents", {
        "personal_id": args.personal_id, "subscription_id": args.subscription, "given": args.action == "give",
        "reference": args.reference})
    if args.json:
        print_json(recorded)
    else:
        state = "given" if recorded["given"] else "withdrawn"
        print(f"consent of {recorded['personal_id']} to {recorded['subscription_id']}: {state}")
    return 0

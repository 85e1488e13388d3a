"""Agencies and one credential per role, for tests that call the control plane as somebody.

    people = Cast.register(control.identities)
    people.token(Role.OWNER)       # the owner of telecom.subscriber (the agency its declaration names)
    people.headers(Role.CONSUMER)  # {"Authorization": "Bearer gsp_..."}
    event = approved(control, people, fields=["msisdn"])   # requested as the consumer, approved as the owner

The consumer agency has a fresh subsystem per cast (VN/GOV/bo-y-te/bhxh-<hex>), so tests sharing the
session's broker never share a subscription id or a share topic.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from gsp.governance.control import ControlPlane
from gsp.governance.identity import ALL, Grant, IdentityStore, Issued, Role
from schemas.datasets import declared

__all__ = ["CONSUMER_AGENCY", "PLATFORM", "Cast", "approved"]

PLATFORM = "VN/GOV/gsp/platform"
CONSUMER_AGENCY = "VN/GOV/bo-y-te/bhxh"
_NAMES = {PLATFORM: "Nền tảng tích hợp, chia sẻ dữ liệu"}


@dataclass
class Cast:
    """One credential per role; the owner's is of the agency that owns telecom.subscriber (and owns only that)."""

    issued: dict[Role, Issued]
    consumer_agency: str

    @classmethod
    def register(cls, store: IdentityStore, *, owned: str = "telecom.subscriber") -> Cast:
        owner_agency = declared()[owned].owner
        consumer_agency = f"{CONSUMER_AGENCY}-{uuid.uuid4().hex[:6]}"
        for agency in (PLATFORM, consumer_agency, owner_agency):
            store.register_agency(agency, name=_NAMES.get(agency, "Bảo hiểm xã hội Việt Nam" if agency.startswith(CONSUMER_AGENCY)
                                  else "Cục Viễn thông"),
                                  contacts=[{"name": "Nguyễn Văn An", "email": "an@example.gov.vn"}])
        grants = {
            Role.ADMIN: (PLATFORM, Grant(Role.ADMIN)),
            Role.OPS: (PLATFORM, Grant(Role.OPS)),
            Role.STEWARD: (PLATFORM, Grant(Role.STEWARD, (ALL,))),
            Role.PORTAL: (PLATFORM, Grant(Role.PORTAL)),
            Role.CONSUMER: (consumer_agency, Grant(Role.CONSUMER)),
            Role.OWNER: (owner_agency, Grant(Role.OWNER, (owned,))),
        }
        return cls({role: store.issue(agency, grants=[grant], label=f"test {role}")
                    for role, (agency, grant) in grants.items()}, consumer_agency)

    def token(self, role: Role) -> str:
        return self.issued[role].token

    def headers(self, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(role)}"}


def approved(control: ControlPlane, cast: Cast, *, fields: list[str], dataset: str = "telecom.subscriber",
             **request: Any) -> dict[str, Any]:
    """A subscription requested by the cast's consumer and approved by its owner: the event the data plane got."""
    consumer = control.identities.authenticate(cast.token(Role.CONSUMER))
    owner = control.identities.authenticate(cast.token(Role.OWNER))
    asked = control.subscriptions.request(consumer, dataset=dataset, fields=fields, purpose="kiểm thử",
                                          legal_basis="Luật Căn cước 2023", **request)
    control.subscriptions.approve(owner, asked["subscription_id"], asked["versions"][-1]["version"])
    return next(e for e in control.published_subscriptions() if e["subscription_id"] == asked["subscription_id"])

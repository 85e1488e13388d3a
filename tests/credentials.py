"""Agencies and one credential per role, for tests that call the control plane as somebody.

    people = Cast.register(control.identities)
    people.token(Role.OWNER)       # the owner of telecom.subscriber (the agency its declaration names)
    people.headers(Role.CONSUMER)  # {"Authorization": "Bearer gsp_..."}
"""

from __future__ import annotations

from dataclasses import dataclass

from gsp.governance.identity import ALL, Grant, IdentityStore, Issued, Role
from schemas.datasets import declared

__all__ = ["CONSUMER_AGENCY", "PLATFORM", "Cast"]

PLATFORM = "VN/GOV/gsp/platform"
CONSUMER_AGENCY = "VN/GOV/bo-y-te/bhxh"
_NAMES = {PLATFORM: "Nền tảng tích hợp, chia sẻ dữ liệu", CONSUMER_AGENCY: "Bảo hiểm xã hội Việt Nam"}


@dataclass
class Cast:
    """One credential per role; the owner's is of the agency that owns telecom.subscriber (and owns only that)."""

    issued: dict[Role, Issued]

    @classmethod
    def register(cls, store: IdentityStore, *, owned: str = "telecom.subscriber") -> Cast:
        owner_agency = declared()[owned].owner
        for agency in (PLATFORM, CONSUMER_AGENCY, owner_agency):
            store.register_agency(agency, name=_NAMES.get(agency, "Cục Viễn thông"),
                                  contacts=[{"name": "Nguyễn Văn An", "email": "an@example.gov.vn"}])
        grants = {
            Role.ADMIN: (PLATFORM, Grant(Role.ADMIN)),
            Role.OPS: (PLATFORM, Grant(Role.OPS)),
            Role.STEWARD: (PLATFORM, Grant(Role.STEWARD, (ALL,))),
            Role.PORTAL: (PLATFORM, Grant(Role.PORTAL)),
            Role.CONSUMER: (CONSUMER_AGENCY, Grant(Role.CONSUMER)),
            Role.OWNER: (owner_agency, Grant(Role.OWNER, (owned,))),
        }
        return cls({role: store.issue(agency, grants=[grant], label=f"test {role}")
                    for role, (agency, grant) in grants.items()})

    def token(self, role: Role) -> str:
        return self.issued[role].token

    def headers(self, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(role)}"}

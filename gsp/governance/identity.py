"""Who is asking: agencies, their credentials and the roles a credential carries.

    store = IdentityStore(engine)
    store.register_agency("VN/GOV/bo-y-te/bhxh", name="Bảo hiểm xã hội Việt Nam", contacts=[...])
    issued = store.issue("VN/GOV/bo-y-te/bhxh", grants=[Grant(Role.CONSUMER)], label="sharing team")
    issued.token                      # gsp_<key id>_<secret>: shown once, never stored
    store.authenticate(issued.token)  # -> Identity, or Unauthenticated

An agency is an X-Road style subsystem, ``<instance>/<class>/<member>/<subsystem>``; its slug
``<member>-<subsystem>`` names its topics. A credential belongs to one agency and carries grants:
a role, and for data owner and steward the datasets it covers. An owner grant is only for
datasets the agency is the declared owner of.

Tokens are 256 random bits (``secrets.token_urlsafe(32)``) stored as their SHA-256 digest and
compared in constant time. A password hash (argon2, bcrypt) exists to slow the guessing of
low-entropy secrets people choose; a 256-bit random secret cannot be guessed, so its slowness
would buy nothing and cost tens of milliseconds on every request. GitHub's and PyPI's API tokens
are stored the same way. Nothing that logs sees a token: errors name the key id only.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from gsp.errors import GspError, NotFound, UserError
from schemas.datasets import declared

__all__ = ["ALL", "AgencyId", "Audit", "Forbidden", "Grant", "Identity", "IdentityStore", "Issued", "Role", "Unauthenticated",
           "agency_slug"]

ALL = "*"  # a steward grant over every dataset

_AGENCY = re.compile(r"^(?P<instance>[A-Z]{2})/(?P<cls>[A-Z]+)/(?P<member>[a-z0-9][a-z0-9-]*)/"
                     r"(?P<subsystem>[a-z0-9][a-z0-9-]*)$")
_TOKEN = re.compile(r"^gsp_(?P<key>[0-9a-f]{16})_(?P<secret>[A-Za-z0-9_-]{43})$")


# (actor, action, subject, details): how a change is told to the audit log; details never hold a secret.
Audit = Callable[[str, str, str, dict[str, str]], Any]


class Role(StrEnum):
    ADMIN = "admin"          # agencies and credentials; the schema registry's writes
    OWNER = "owner"          # decides subscription requests for the datasets it owns
    STEWARD = "steward"      # works the quarantine and the review queue of its datasets
    OPS = "ops"              # runs connectors and workers; reads health, metrics and the registry
    CONSUMER = "consumer"    # requests subscriptions from the catalog, reads its own
    PORTAL = "portal"        # the citizen-facing portal: who received a person's data


_SCOPED = (Role.OWNER, Role.STEWARD)


class Unauthenticated(GspError):
    """No credential, or one that is unknown, wrong, expired or revoked: 401."""

    http_status = 401


class Forbidden(GspError):
    """A credential without the role, or without the dataset, the action needs: 403."""

    http_status = 403


@dataclass(frozen=True)
class AgencyId:
    instance: str
    cls: str
    member: str
    subsystem: str

    @classmethod
    def parse(cls, text: str) -> AgencyId:
        found = _AGENCY.match(text)
        if found is None:
            raise UserError(f"agency {text!r} must be <instance>/<class>/<member>/<subsystem> in the X-Road style, "
                            "such as VN/GOV/bo-cong-an/c06 (member and subsystem lower-case slugs)")
        return cls(found["instance"], found["cls"], found["member"], found["subsystem"])

    def __str__(self) -> str:
        return f"{self.instance}/{self.cls}/{self.member}/{self.subsystem}"

    @property
    def slug(self) -> str:
        return f"{self.member}-{self.subsystem}"


def agency_slug(agency: str) -> str:
    """The slug that names an agency's topics: ``VN/GOV/bo-y-te/bhxh`` -> ``bo-y-te-bhxh``."""
    return AgencyId.parse(agency).slug


@dataclass(frozen=True)
class Grant:
    role: Role
    datasets: tuple[str, ...] = ()   # owner and steward only: the datasets covered (steward may name ALL)

    def covers(self, dataset: str) -> bool:
        return ALL in self.datasets or dataset in self.datasets

    def as_json(self) -> dict[str, Any]:
        return {"role": self.role.value, **({"datasets": list(self.datasets)} if self.role in _SCOPED else {})}

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> Grant:
        try:
            role = Role(data["role"])
        except (KeyError, ValueError):
            raise UserError(f"role {data.get('role')!r} is not one of {', '.join(r.value for r in Role)}") from None
        datasets = tuple(data.get("datasets") or ())
        if role in _SCOPED and not datasets:
            raise UserError(f"a {role} grant names the datasets it covers")
        if role not in _SCOPED and datasets:
            raise UserError(f"a {role} grant covers no datasets")
        return cls(role, datasets)


@dataclass(frozen=True)
class Identity:
    """The authenticated caller: a credential of an agency, with its grants."""

    key_id: str
    agency: str
    grants: tuple[Grant, ...] = field(default=())

    @property
    def agency_slug(self) -> str:
        return agency_slug(self.agency)

    @property
    def roles(self) -> frozenset[Role]:
        return frozenset(g.role for g in self.grants)

    def datasets(self, role: Role) -> set[str]:
        """Datasets a scoped role covers (may hold ALL)."""
        return {d for g in self.grants if g.role is role for d in g.datasets}

    def can(self, role: Role, dataset: str | None = None) -> bool:
        return any(g.role is role and (dataset is None or role not in _SCOPED or g.covers(dataset))
                   for g in self.grants)

    def require(self, role: Role, dataset: str) -> None:
        """Forbidden unless this credential holds ``role`` over ``dataset``."""
        if not self.can(role, dataset):
            raise Forbidden(f"{self.agency} (key {self.key_id}) is not {role} of dataset {dataset}")

    @property
    def who(self) -> str:
        """How an action is attributed in the audit log and the desks."""
        return f"{self.agency}#{self.key_id}"


@dataclass(frozen=True)
class Issued:
    """A new credential: its token is in this object only."""

    key_id: str
    agency: str
    token: str
    grants: tuple[Grant, ...]
    expires_at: int | None


_metadata = sa.MetaData()
_agencies = sa.Table(
    "agencies", _metadata,
    sa.Column("agency_id", sa.String(200), primary_key=True),
    sa.Column("slug", sa.String(130), nullable=False, unique=True),
    sa.Column("name", sa.String(300), nullable=False),
    sa.Column("contacts", sa.Text, nullable=False),   # JSON list of {name, email, phone}
    sa.Column("created_at", sa.BigInteger, nullable=False),
)
_credentials = sa.Table(
    "credentials", _metadata,
    sa.Column("key_id", sa.String(16), primary_key=True),
    sa.Column("agency_id", sa.String(200), sa.ForeignKey("agencies.agency_id"), nullable=False),
    sa.Column("label", sa.String(200), nullable=False),
    sa.Column("grants", sa.Text, nullable=False),     # JSON list of Grant.as_json()
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("created_by", sa.String(240), nullable=False),
    sa.Column("expires_at", sa.BigInteger),
    sa.Column("revoked_at", sa.BigInteger),
)

# Each agency's pseudonym secret, by version (the latest is current): what it receives names people and
# records by keyed hashes of it (`streams.share.Envelope`). Rotating adds a version; old ones are kept so
# an agency's old pseudonyms can still be explained to it.
_keys = sa.Table(
    "agency_keys", _metadata,
    sa.Column("agency_id", sa.String(200), sa.ForeignKey("agencies.agency_id"), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("secret", sa.String(64), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _now_ms() -> int:
    return int(time.time() * 1000)


class IdentityStore:
    def __init__(self, engine: sa.Engine, *, clock: Any = _now_ms) -> None:
        self._engine = engine
        self._clock = clock
        # Told of every change, as (actor, action, subject, details): the control plane's audit log listens.
        self.audit: Audit = lambda actor, action, subject, details: None
        _metadata.create_all(engine)

    # agencies

    def register_agency(self, agency: str, *, name: str, contacts: Iterable[Mapping[str, str]] = (),
                        by: str = "gsp") -> dict[str, Any]:
        """Register an agency subsystem, or update its name and contacts."""
        parsed = AgencyId.parse(agency)
        if not name.strip():
            raise UserError("an agency needs a display name, such as Bộ Công an")
        row = {"agency_id": str(parsed), "slug": parsed.slug, "name": name.strip(),
               "contacts": json.dumps([dict(c) for c in contacts], ensure_ascii=False), "created_at": self._clock()}
        with self._engine.begin() as conn:
            existing = conn.execute(sa.select(_agencies.c.agency_id).where(
                sa.or_(_agencies.c.agency_id == row["agency_id"], _agencies.c.slug == row["slug"]))).all()
            if any(r.agency_id != row["agency_id"] for r in existing):
                raise UserError(f"agency slug {parsed.slug!r} is already taken by another agency")
            if existing:
                conn.execute(sa.update(_agencies).where(_agencies.c.agency_id == row["agency_id"])
                             .values(name=row["name"], contacts=row["contacts"]))
            else:
                conn.execute(sa.insert(_agencies).values(**row))
        self.audit(by, "agency.register", f"agency/{row['agency_id']}", {"name": row["name"]})
        return self.agency(row["agency_id"])

    def agency(self, agency: str) -> dict[str, Any]:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(_agencies).where(_agencies.c.agency_id == agency)).first()
        if row is None:
            raise NotFound(f"no agency {agency!r}; register it first (gsp agency register)")
        return _agency_json(row)

    def agency_by_slug(self, slug: str) -> dict[str, Any]:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(_agencies).where(_agencies.c.slug == slug)).first()
        if row is None:
            raise NotFound(f"no agency with slug {slug!r}")
        return _agency_json(row)

    def agencies(self) -> list[dict[str, Any]]:
        with self._engine.connect() as conn:
            return [_agency_json(r) for r in conn.execute(sa.select(_agencies).order_by(_agencies.c.agency_id))]

    # pseudonym secrets

    def pseudonym_key(self, agency: str) -> tuple[int, str]:
        """(version, hex secret) of ``agency``'s current pseudonym secret, made on first use."""
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(_keys.c.version, _keys.c.secret).where(_keys.c.agency_id == agency)
                               .order_by(_keys.c.version.desc()).limit(1)).first()
        if row is not None:
            return row.version, row.secret
        try:
            return self.rotate_key(agency)
        except sa.exc.IntegrityError:  # made at the same moment by another first use (an approval, a period tick)
            return self.pseudonym_key(agency)

    def rotate_key(self, agency: str, *, by: str = "gsp") -> tuple[int, str]:
        """A new current pseudonym secret for ``agency``: (version, hex secret)."""
        self.agency(agency)
        with self._engine.begin() as conn:
            latest = conn.execute(sa.select(sa.func.max(_keys.c.version)).where(_keys.c.agency_id == agency)).scalar()
            version, secret = (latest or 0) + 1, secrets.token_hex(32)
            conn.execute(sa.insert(_keys).values(agency_id=agency, version=version, secret=secret,
                                                 created_at=self._clock()))
        self.audit(by, "agency.rotate-key", f"agency/{agency}", {"version": str(version)})
        return version, secret

    # credentials

    def issue(self, agency: str, *, grants: Iterable[Grant], label: str = "", created_by: str = "gsp",
              expires_at: int | None = None) -> Issued:
        """A new credential of ``agency``: the token is returned here and never again."""
        self.agency(agency)
        grants = tuple(grants)
        if not grants:
            raise UserError("a credential carries at least one role")
        owned = {d.name for d in declared().values() if d.owner == agency}
        for grant in grants:
            unknown = [d for d in grant.datasets if d != ALL and d not in declared()]
            if unknown:
                raise UserError(f"unknown dataset {unknown[0]!r}; known: {', '.join(declared())}")
            if grant.role is Role.OWNER and (not_owned := [d for d in grant.datasets if d not in owned]):
                raise UserError(f"{agency} is not the declared owner of {not_owned[0]}; "
                                f"it owns: {', '.join(sorted(owned)) or 'no dataset'}")
        if expires_at is not None and expires_at <= self._clock():
            raise UserError("a credential cannot expire in the past")
        key_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        with self._engine.begin() as conn:
            conn.execute(sa.insert(_credentials).values(
                key_id=key_id, agency_id=agency, label=label, grants=json.dumps([g.as_json() for g in grants]),
                digest=_digest(secret), created_at=self._clock(), created_by=created_by, expires_at=expires_at))
        self.audit(created_by, "credential.issue", f"credential/{key_id}",
                   {"agency": agency, "roles": ",".join(sorted({g.role.value for g in grants})), "label": label})
        return Issued(key_id=key_id, agency=agency, token=f"gsp_{key_id}_{secret}", grants=grants,
                      expires_at=expires_at)

    def authenticate(self, token: str) -> Identity:
        """The identity a token stands for; Unauthenticated (naming the key id at most) otherwise."""
        found = _TOKEN.match(token.strip())
        if found is None:
            raise Unauthenticated("not a GSP API token (gsp_<key id>_<secret>)")
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(_credentials).where(_credentials.c.key_id == found["key"])).first()
        # Compared even when the key is unknown, so timing does not tell which key ids exist.
        matches = hmac.compare_digest(_digest(found["secret"]), row.digest if row else "0" * 64)
        if row is None or not matches:
            raise Unauthenticated(f"unknown or wrong credential (key {found['key']})")
        if row.revoked_at is not None:
            raise Unauthenticated(f"credential {row.key_id} was revoked")
        if row.expires_at is not None and row.expires_at <= self._clock():
            raise Unauthenticated(f"credential {row.key_id} has expired")
        return Identity(key_id=row.key_id, agency=row.agency_id,
                        grants=tuple(Grant.of(g) for g in json.loads(row.grants)))

    def credentials(self, agency: str | None = None) -> list[dict[str, Any]]:
        """Every credential (of ``agency``), without any secret: key id, agency, label, grants, state."""
        query = sa.select(_credentials).order_by(_credentials.c.created_at, _credentials.c.key_id)
        if agency is not None:
            query = query.where(_credentials.c.agency_id == agency)
        with self._engine.connect() as conn:
            return [self._credential_json(r) for r in conn.execute(query)]

    def credential(self, key_id: str) -> dict[str, Any]:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(_credentials).where(_credentials.c.key_id == key_id)).first()
        if row is None:
            raise NotFound(f"no credential {key_id!r}")
        return self._credential_json(row)

    def revoke(self, key_id: str, *, by: str = "gsp") -> dict[str, Any]:
        self.credential(key_id)
        with self._engine.begin() as conn:
            conn.execute(sa.update(_credentials).where(_credentials.c.key_id == key_id,
                                                       _credentials.c.revoked_at.is_(None))
                         .values(revoked_at=self._clock()))
        self.audit(by, "credential.revoke", f"credential/{key_id}", {})
        return self.credential(key_id)

    def expire(self, key_id: str, at: int | None = None, *, by: str = "gsp") -> dict[str, Any]:
        """Make a credential expire at ``at`` (ms since the epoch; default now)."""
        self.credential(key_id)
        with self._engine.begin() as conn:
            conn.execute(sa.update(_credentials).where(_credentials.c.key_id == key_id)
                         .values(expires_at=self._clock() if at is None else at))
        self.audit(by, "credential.expire", f"credential/{key_id}", {"at": str(self._clock() if at is None else at)})
        return self.credential(key_id)

    def active(self, role: Role, *, label: str | None = None) -> list[dict[str, Any]]:
        """Credentials neither revoked nor expired that carry ``role`` (and bear ``label``)."""
        return [c for c in self.credentials() if c["state"] == "active" and role.value in c["roles"]
                and (label is None or c["label"] == label)]

    def _credential_json(self, row: Any) -> dict[str, Any]:
        grants = json.loads(row.grants)
        state = ("revoked" if row.revoked_at is not None
                 else "expired" if row.expires_at is not None and row.expires_at <= self._clock() else "active")
        return {"key_id": row.key_id, "agency": row.agency_id, "label": row.label, "grants": grants,
                "roles": sorted({g["role"] for g in grants}), "state": state, "created_at": row.created_at,
                "created_by": row.created_by, "expires_at": row.expires_at, "revoked_at": row.revoked_at}


def _agency_json(row: Any) -> dict[str, Any]:
    return {"agency": row.agency_id, "slug": row.slug, "name": row.name, "contacts": json.loads(row.contacts),
            "created_at": row.created_at}

"""Kafka ACLs for a production cluster, derived from the agencies' subscriptions.

Each agency's principal (``User:<agency_slug>`` unless told otherwise) may Read and Describe the share
topic of each of its subscriptions that currently delivers (``active_version`` set), and Read consumer
groups named ``<agency_slug>.…`` so it commits offsets only in groups of its own. A verify subscription's
topic is the agency's ``verify.<agency>.replies.v1``, read the same way; the agency may also Write (and
Describe) its ``verify.<agency>.requests.v1``. Nothing else: no binding names a raw., clean., match.,
review., quarantine. or gsp. topic, or another agency's topic.

Tested: the derivation and its three renderings only (unit and property tests). The embedded broker
(Tansu 0.6.0-133-g510f3e2) cannot check them: it has no authoriser (CreateAcls is a stub whose answer
kafka-python cannot decode; DescribeAcls always answers none; any connection reads any topic and commits
in any group), and its memory/S3 store keeps no SCRAM users. Not tested against an Apache Kafka broker.
"""

from __future__ import annotations

import shlex
import string
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from kafka.admin import ACL, ACLOperation, ACLPermissionType, ACLResourcePatternType, ResourcePattern, ResourceType

from gsp.errors import UserError
from schemas import topics
from schemas.topics import valid_slug

__all__ = ["DEFAULT_PRINCIPAL", "AclBinding", "Operation", "PatternType", "Permission", "Resource", "acl_bindings",
           "check_principal", "kafka_acls_commands", "to_json", "to_kafka_python"]

DEFAULT_PRINCIPAL = "User:{agency_slug}"
_PLACEHOLDERS = ("agency_slug", "agency")


class Resource(StrEnum):
    TOPIC = "TOPIC"
    GROUP = "GROUP"


class PatternType(StrEnum):
    LITERAL = "LITERAL"
    PREFIXED = "PREFIXED"


class Operation(StrEnum):
    READ = "READ"
    WRITE = "WRITE"
    DESCRIBE = "DESCRIBE"


class Permission(StrEnum):
    ALLOW = "ALLOW"


@dataclass(frozen=True, order=True)
class AclBinding:
    """One Kafka ACL: ``principal`` may do ``operation`` on the resource, from any host."""

    principal: str
    resource_type: Resource
    resource_name: str
    pattern_type: PatternType
    operation: Operation
    permission: Permission = Permission.ALLOW
    host: str = "*"


def check_principal(template: str) -> None:
    """Raise UserError unless ``template`` names each agency apart as a Kafka ``TYPE:NAME`` principal."""
    try:
        fields = [field for _, field, _, _ in string.Formatter().parse(template) if field is not None]
    except ValueError as exc:
        raise UserError(f"principal template {template!r} is malformed: {exc}") from None
    unknown = [field for field in fields if field not in _PLACEHOLDERS]
    if unknown:
        raise UserError(f"principal template {template!r} has unknown placeholder {{{unknown[0]}}}; "
                        "use {agency_slug} or {agency}")
    if not fields:
        # Every agency would share one principal and so read every agency's topics.
        raise UserError(f"principal template {template!r} must name the agency with {{agency_slug}} or {{agency}}")
    kind, sep, _ = template.partition(":")
    if not sep or not kind or "{" in kind:
        raise UserError(f"principal template {template!r} must read TYPE:NAME, such as {DEFAULT_PRINCIPAL}")


def acl_bindings(subscriptions: Iterable[Mapping[str, Any]], *, principal: str = DEFAULT_PRINCIPAL) -> list[AclBinding]:
    """The ACLs granting each agency its active subscriptions' share topics and its own consumer groups.

    ``subscriptions`` are as ``GET /api/subscriptions`` returns them. Sorted and without duplicates, so
    the same subscriptions always give the same list. A subscription whose topic is not a share topic of
    its own agency is refused (UserError) rather than granted.
    """
    check_principal(principal)
    bindings: set[AclBinding] = set()
    agency_of: dict[str, str] = {}  # principal -> agency slug: two agencies must never share one
    for subscription in subscriptions:
        if subscription.get("active_version") is None:
            continue
        slug, topic = subscription["agency_slug"], subscription["topic"]
        if not valid_slug(slug):
            raise UserError(f"subscription {subscription['subscription_id']}: agency slug {slug!r} is not a lower-case slug")
        verifies = topic == topics.verify_replies(slug)
        if not (topic.startswith(f"share.{slug}.") or verifies):
            raise UserError(f"subscription {subscription['subscription_id']}: topic {topic!r} is not a share topic "
                            f"of {slug}; no ACL granted")
        who = principal.format(agency_slug=slug, agency=subscription["agency"])
        if agency_of.setdefault(who, slug) != slug:
            raise UserError(f"principal {who} would stand for both {agency_of[who]} and {slug}")
        bindings.update(AclBinding(who, Resource.TOPIC, topic, PatternType.LITERAL, operation)
                        for operation in (Operation.READ, Operation.DESCRIBE))
        if verifies:  # it asks on its own requests topic
            bindings.update(AclBinding(who, Resource.TOPIC, topics.verify_requests(slug), PatternType.LITERAL, operation)
                            for operation in (Operation.WRITE, Operation.DESCRIBE))
        bindings.add(AclBinding(who, Resource.GROUP, f"{slug}.", PatternType.PREFIXED, Operation.READ))
    return sorted(bindings)


def kafka_acls_commands(bindings: Iterable[AclBinding], *, bootstrap: str = "$BOOTSTRAP") -> list[str]:
    """One ``kafka-acls.sh --add`` command line per binding; ``bootstrap`` is left unquoted for the shell."""
    lines = []
    for b in bindings:
        line = (f"kafka-acls.sh --bootstrap-server {bootstrap} --add --allow-principal {shlex.quote(b.principal)}"
                f" --allow-host {shlex.quote(b.host)} --operation {b.operation.value.capitalize()}"
                f" --{b.resource_type.value.lower()} {shlex.quote(b.resource_name)}")
        if b.pattern_type is not PatternType.LITERAL:
            line += f" --resource-pattern-type {b.pattern_type.value.lower()}"
        lines.append(line)
    return lines


def to_json(bindings: Iterable[AclBinding]) -> list[dict[str, str]]:
    """The bindings as plain dicts of strings, field names as in :class:`AclBinding`."""
    return [{key: str(value) for key, value in asdict(b).items()} for b in bindings]


def to_kafka_python(bindings: Iterable[AclBinding]) -> list[ACL]:
    """kafka-python ACL objects, for ``KafkaAdminClient.create_acls``."""
    return [ACL(principal=b.principal, host=b.host, operation=ACLOperation[b.operation.value],
                permission_type=ACLPermissionType[b.permission.value],
                resource_pattern=ResourcePattern(ResourceType[b.resource_type.value], b.resource_name,
                                                 ACLResourcePatternType[b.pattern_type.value]))
            for b in bindings]

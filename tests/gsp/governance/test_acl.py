"""Kafka ACLs derived from subscriptions: who may read what, and the three ways they are printed.

No test runs them on a broker: the embedded broker (Tansu) has no authoriser to check them against
(see the docstring of gsp.governance.acl).
"""

import json
import shlex
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kafka.admin import ACL, ACLOperation, ACLPermissionType, ACLResourcePatternType, ResourcePattern, ResourceType

from gsp.errors import UserError
from gsp.governance.acl import (
    AclBinding,
    Operation,
    PatternType,
    Resource,
    acl_bindings,
    check_principal,
    kafka_acls_commands,
    to_json,
    to_kafka_python,
)
from schemas import topics
from tests.gsp.cli.test_cli import gsp
from tests.local_http import serving

FORBIDDEN = ("raw.", "clean.", "match.", "review.", "quarantine.", "gsp.")


def subscription(slug: str, dataset: str, active_version: int | None = 1, *, major: int = 1,
                 topic: str | None = None) -> dict[str, Any]:
    """One entry as GET /api/subscriptions returns it."""
    return {"subscription_id": f"{slug}:{dataset}", "agency": f"VN/GOV/{slug}", "agency_slug": slug,
            "dataset": dataset, "topic": topic or topics.share(slug, dataset, major), "version": 3,
            "active_version": active_version, "fields": ["msisdn"]}


BHXH = [subscription("bo-y-te-bhxh", "telecom.subscriber"), subscription("bo-y-te-bhxh", "population.citizen", 2),
        subscription("bo-y-te-bhxh", "health.clinic", None)]


def test_an_agency_reads_its_active_topics_and_commits_only_in_its_own_groups() -> None:
    user = "User:bo-y-te-bhxh"
    assert acl_bindings(BHXH) == [
        AclBinding(user, Resource.GROUP, "bo-y-te-bhxh.", PatternType.PREFIXED, Operation.READ),
        AclBinding(user, Resource.TOPIC, "share.bo-y-te-bhxh.citizen.v1", PatternType.LITERAL, Operation.DESCRIBE),
        AclBinding(user, Resource.TOPIC, "share.bo-y-te-bhxh.citizen.v1", PatternType.LITERAL, Operation.READ),
        AclBinding(user, Resource.TOPIC, "share.bo-y-te-bhxh.subscriber.v1", PatternType.LITERAL, Operation.DESCRIBE),
        AclBinding(user, Resource.TOPIC, "share.bo-y-te-bhxh.subscriber.v1", PatternType.LITERAL, Operation.READ),
    ]
    assert all(b.permission == "ALLOW" and b.host == "*" for b in acl_bindings(BHXH))


def test_an_agency_with_nothing_delivered_gets_nothing_not_even_a_group() -> None:
    assert acl_bindings([subscription("so-y-te", "telecom.subscriber", None)]) == []
    assert acl_bindings([]) == []


def test_another_agency_never_gets_the_first_agencys_topics_or_groups() -> None:
    # bo-y-te is a prefix of bo-y-te-bhxh: the trailing dots keep their topics and groups apart.
    bindings = acl_bindings([*BHXH, subscription("bo-y-te", "telecom.subscriber"), subscription("bo-cong-an", "population.citizen")])
    for other in ("User:bo-y-te", "User:bo-cong-an"):
        granted = [b for b in bindings if b.principal == other]
        assert granted and not any("bhxh" in b.resource_name for b in granted)
    bo_y_te = {b.resource_name for b in bindings if b.principal == "User:bo-y-te"}
    assert bo_y_te == {"share.bo-y-te.subscriber.v1", "bo-y-te."}
    assert not "bo-y-te-bhxh.consumer".startswith("bo-y-te.")


def test_no_binding_names_a_pipeline_or_platform_topic() -> None:
    bindings = acl_bindings([*BHXH, subscription("bo-cong-an", "telecom.subscriber")])
    assert bindings and not any(b.resource_name.startswith(FORBIDDEN) for b in bindings)
    # An answer naming a topic that is not the agency's own share topic is refused, not granted.
    for topic in ("raw.telecom.subscriber.v1", "gsp.subscriptions", "share.bo-cong-an.subscriber.v1", "share.bo-y-te.x"):
        with pytest.raises(UserError, match="is not a share topic of bo-y-te-bhxh"):
            acl_bindings([subscription("bo-y-te-bhxh", "telecom.subscriber", topic=topic)])
    with pytest.raises(UserError, match="not a lower-case slug"):
        acl_bindings([subscription("Bo", "telecom.subscriber", topic="share.Bo.subscriber.v1")])


def test_the_same_subscriptions_in_any_order_give_the_same_list_without_duplicates() -> None:
    once = acl_bindings(BHXH)
    assert acl_bindings([*reversed(BHXH), *BHXH]) == once and len(set(once)) == len(once)


def test_the_principal_template() -> None:
    by_xroad = acl_bindings(BHXH, principal="User:{agency}")
    assert {b.principal for b in by_xroad} == {"User:VN/GOV/bo-y-te-bhxh"}
    assert [b.resource_name for b in by_xroad] == [b.resource_name for b in acl_bindings(BHXH)]
    for template, says in [("User:{slug}", "unknown placeholder {slug}"), ("User:{0}", "unknown placeholder {0}"),
                           ("User:{agency", "malformed"), ("User:everyone", "must name the agency"),
                           ("{agency_slug}", "must read TYPE:NAME")]:
        with pytest.raises(UserError, match=says) as raised:
            check_principal(template)
        assert "\n" not in str(raised.value)
    two = [subscription("so-y-te", "telecom.subscriber"), {**subscription("so-tttt", "telecom.subscriber"), "agency": "VN/GOV/so-y-te"}]
    with pytest.raises(UserError, match="would stand for both so-y-te and so-tttt"):
        acl_bindings(two, principal="User:{agency}")


def test_kafka_acls_command_lines() -> None:
    lines = kafka_acls_commands(acl_bindings(BHXH[:1]))
    assert lines == [
        "kafka-acls.sh --bootstrap-server $BOOTSTRAP --add --allow-principal User:bo-y-te-bhxh --allow-host '*' "
        "--operation Read --group bo-y-te-bhxh. --resource-pattern-type prefixed",
        "kafka-acls.sh --bootstrap-server $BOOTSTRAP --add --allow-principal User:bo-y-te-bhxh --allow-host '*' "
        "--operation Describe --topic share.bo-y-te-bhxh.subscriber.v1",
        "kafka-acls.sh --bootstrap-server $BOOTSTRAP --add --allow-principal User:bo-y-te-bhxh --allow-host '*' "
        "--operation Read --topic share.bo-y-te-bhxh.subscriber.v1",
    ]
    # A principal with characters the shell would split on stays one argument.
    [line] = kafka_acls_commands([AclBinding("User:VN GOV", Resource.TOPIC, "share.a.b.v1", PatternType.LITERAL, Operation.READ)],
                                 bootstrap="kafka-1:9093")
    words = shlex.split(line)
    assert words[words.index("--allow-principal") + 1] == "User:VN GOV" and words[2] == "kafka-1:9093"


def test_json_rendering() -> None:
    rendered = to_json(acl_bindings(BHXH[:1]))
    assert json.loads(json.dumps(rendered)) == rendered
    assert rendered[0] == {"principal": "User:bo-y-te-bhxh", "resource_type": "GROUP", "resource_name": "bo-y-te-bhxh.",
                           "pattern_type": "PREFIXED", "operation": "READ", "permission": "ALLOW", "host": "*"}
    assert [(r["resource_type"], r["operation"]) for r in rendered] == [("GROUP", "READ"), ("TOPIC", "DESCRIBE"), ("TOPIC", "READ")]


def test_kafka_python_acls_match_the_bindings() -> None:
    bindings = acl_bindings(BHXH)
    acls = to_kafka_python(bindings)
    assert len(acls) == len(bindings) and all(isinstance(acl, ACL) for acl in acls)
    for binding, acl in zip(bindings, acls, strict=True):
        assert (acl.principal, acl.host, acl.operation.name, acl.permission_type.name) == \
            (binding.principal, "*", binding.operation.value, "ALLOW")
        assert (acl.resource_pattern.resource_type.name, acl.resource_pattern.resource_name,
                acl.resource_pattern.pattern_type.name) == (binding.resource_type.value, binding.resource_name,
                                                            binding.pattern_type.value)
    assert acls[0] == ACL("User:bo-y-te-bhxh", "*", ACLOperation.READ, ACLPermissionType.ALLOW,
                          ResourcePattern(ResourceType.GROUP, "bo-y-te-bhxh.", ACLResourcePatternType.PREFIXED))


_slugs = st.from_regex(r"[a-z][a-z0-9-]{1,10}", fullmatch=True)
_subscriptions = st.lists(
    st.builds(subscription, _slugs, st.sampled_from(["telecom.subscriber", "population.citizen", "health.clinic"]),
              st.none() | st.integers(1, 5), major=st.integers(1, 3)),
    max_size=25)


@given(_subscriptions, st.sampled_from(["User:{agency_slug}", "User:{agency}", "User:gsp-{agency_slug}"]))
def test_every_topic_granted_belongs_to_an_active_subscription_of_the_principals_agency(
        subscriptions: list[dict[str, Any]], template: str) -> None:
    bindings = acl_bindings(subscriptions, principal=template)
    agency_of = {template.format(agency_slug=s["agency_slug"], agency=s["agency"]): s["agency_slug"] for s in subscriptions}
    active = {(s["agency_slug"], s["topic"]) for s in subscriptions if s["active_version"] is not None}
    for b in bindings:
        slug = agency_of[b.principal]
        if b.resource_type is Resource.TOPIC:
            assert (slug, b.resource_name) in active and b.pattern_type is PatternType.LITERAL
        else:
            assert (b.resource_name, b.pattern_type, b.operation) == (f"{slug}.", PatternType.PREFIXED, Operation.READ)
            assert any(a == slug for a, _ in active)
            # No other agency's consumer group falls under this prefix.
            assert not any(f"{other}.".startswith(b.resource_name) for other in agency_of.values() if other != slug)
        assert not b.resource_name.startswith(FORBIDDEN)
    granted = {(agency_of[b.principal], b.resource_name, b.operation) for b in bindings}
    assert all((slug, topic, op) in granted for slug, topic in active for op in (Operation.READ, Operation.DESCRIBE))
    assert bindings == sorted(set(bindings))


@pytest.fixture
def control_plane() -> Iterator[str]:
    """A loopback stand-in for the control plane answering GET /api/subscriptions."""
    answer = json.dumps([*BHXH, subscription("bo-cong-an", "telecom.subscriber")]).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = (200, answer) if self.path == "/api/subscriptions" else (404, b'{"error": "not found"}')
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    with serving(Handler) as url:
        yield url


def test_gsp_acl_export(control_plane: str) -> None:
    env = {"GSP_API_URL": control_plane}
    shell = gsp("acl", "export", env=env)
    assert shell.returncode == 0, shell.stderr
    lines = shell.stdout.splitlines()
    assert len(lines) == 8 and all(line.startswith("kafka-acls.sh --bootstrap-server $BOOTSTRAP --add ") for line in lines)
    assert "--allow-principal User:bo-cong-an --allow-host '*' --operation Read --group bo-cong-an. --resource-pattern-type prefixed" in shell.stdout
    exported = json.loads(gsp("acl", "export", "--format", "json", "--principal", "User:{agency}", env=env).stdout)
    assert {(e["principal"], e["resource_name"]) for e in exported if e["operation"] == "DESCRIBE"} == {
        ("User:VN/GOV/bo-y-te-bhxh", "share.bo-y-te-bhxh.subscriber.v1"),
        ("User:VN/GOV/bo-y-te-bhxh", "share.bo-y-te-bhxh.citizen.v1"),
        ("User:VN/GOV/bo-cong-an", "share.bo-cong-an.subscriber.v1")}


def test_gsp_acl_export_with_a_bad_template_is_one_line() -> None:
    result = gsp("acl", "export", "--principal", "User:{slug}", env={"GSP_API_URL": "http://127.0.0.1:1"})
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == ("gsp: error: principal template 'User:{slug}' has unknown placeholder {slug}; "
                             "use {agency_slug} or {agency}\n")

"""Verification without data, the rules (`streams.verify`) and a message's reply (`streams.verifying.Verifications`):
the verdict is the stream's three-field check, the mask says agree/disagree per supplied field, an invalid request
gets an error of its own, and nothing in an answer is a registry value the request did not supply."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.sql_source import map_columns
from gsp.tools.synth import generate
from schemas import envelope, topics
from schemas.codec import Codec, contract
from schemas.datasets import dataset
from schemas.envelope import Verdict
from streams.clean import clean_citizen, clean_subscriber, name_key
from streams.matching import Matcher, RegistryEntries
from streams.share import Subscription
from streams.verify import MAX_BATCH, REQUIRED, Verifier, invalid
from streams.verifying import HTTP, KAFKA, Verifications

CITIZEN, SUBSCRIBER = dataset("population.citizen"), dataset("telecom.subscriber")
ALL = ("personal_id", "full_name", "birth_date", "phone", "province_code")
REQUEST_ID, REPLY_ID = 7001, 7002
PID = "001099000123"


@pytest.fixture(scope="module")
def verifier() -> Verifier:
    return Verifier(CITIZEN, [SUBSCRIBER])


def entry_of(full_name: str, birth_date: str, *, phone: str | None = None, province_code: str | None = None,
             status: str = "ALIVE") -> dict[str, Any]:
    """A registry entry as the registry table holds it (`RegistryEntries.entry`)."""
    return {"full_name": full_name, "birth_date": birth_date, "phone": phone, "province_code": province_code,
            "name_key": name_key(full_name), "status": status}


REGISTRY = {PID: entry_of("Nguyễn Văn An", "1999-05-04", phone="0912345678", province_code="01")}


def ask(request_id: str = "r1", **values: Any) -> dict[str, Any]:
    return {"request_id": request_id, "personal_id": PID, "full_name": "Nguyễn Văn An", "birth_date": "1999-05-04",
            **values}


# --- the verdict is the stream's ----------------------------------------------------------------------------------


def _header(key: str, i: int) -> dict[str, Any]:
    return envelope.header("telecom.test", key, str(i), 1_700_000_000_000)


def test_the_verdict_is_the_match_stage_exact_check_on_the_same_generated_records(verifier: Verifier) -> None:
    synthetic = generate(1500, seed=11)
    entries = RegistryEntries(CITIZEN, [SUBSCRIBER])
    registry: dict[str, dict[str, Any]] = {}
    for i, row in enumerate(synthetic.citizens):
        cleaned = clean_citizen({**map_columns(row, CITIZEN.source_columns), "header": _header(str(row["personal_id"]), i)})
        if cleaned.rejection is None:
            personal_id, entry = entries.entry(cleaned.record)
            registry[personal_id] = entry
    raw, records = [], []
    for i, row in enumerate(synthetic.subscribers):
        cleaned = clean_subscriber({**row, "header": _header(str(row["msisdn"]), i)})
        if cleaned.rejection is None:
            raw.append(row)
            records.append(cleaned.record)
    stream = [m.verdict for m in Matcher(SUBSCRIBER).match(records, registry.get)]

    def requests(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{"request_id": str(i), "personal_id": r["id_number"], "full_name": r["subscriber_name"],
                 "birth_date": r["birth_date"]} for i, r in enumerate(rows)]

    from_cleaned = [a["verdict"] for a in verifier.verify(requests(records), ALL, registry.get)]
    # As the agency typed them: the request is cleaned as the clean stage cleans, so the verdict is the same.
    from_raw = [a["verdict"] for a in verifier.verify(requests(raw), ALL, registry.get)]
    assert from_cleaned == [str(v) for v in stream]
    assert from_raw == [str(v) for v in stream]
    # The generator's dirt reaches every verdict the check gives.
    assert {Verdict.MATCHED, Verdict.MISMATCH, Verdict.NOT_FOUND} <= set(stream)
    assert raw != records  # some requests really were dirty


# --- the mask -------------------------------------------------------------------------------------------------------


def test_a_matched_request_agrees_on_every_field_it_supplied(verifier: Verifier) -> None:
    answer = verifier.answer(ask(phone="+84 912 345 678", province_code="01"), REGISTRY.get)
    assert answer == {"request_id": "r1", "verdict": "MATCHED", "mask": {
        "personal_id": True, "full_name": True, "birth_date": True, "phone": True, "province_code": True}}


def test_values_are_cleaned_as_the_clean_stage_cleans_them_before_they_are_compared(verifier: Verifier) -> None:
    typed = ask(personal_id="001 099 000 123", full_name="NGUYỄN  văn   AN", birth_date="04/05/1999",
                phone="0912.345.678")
    assert verifier.answer(typed, REGISTRY.get)["mask"] == {
        "personal_id": True, "full_name": True, "birth_date": True, "phone": True}
    # Without diacritics a name is another name to the check (the matcher, not the check, tells typos apart).
    assert verifier.answer(ask(full_name="Nguyen Van An"), REGISTRY.get) == {
        "request_id": "r1", "verdict": "MISMATCH", "mask": {"personal_id": True, "full_name": False, "birth_date": True}}


def test_a_field_that_differs_is_false_and_one_the_registry_lacks_is_null(verifier: Verifier) -> None:
    registry = {PID: entry_of("Nguyễn Văn An", "1999-05-04", phone=None, province_code="79")}
    answer = verifier.answer(ask(birth_date="1999-05-05", phone="0912345678", province_code="01"), registry.get)
    assert answer["verdict"] == "MISMATCH"
    assert answer["mask"] == {"personal_id": True, "full_name": True, "birth_date": False, "phone": None,
                              "province_code": False}
    # The verdict is the three fields' alone: an extra field that differs does not make a MISMATCH.
    assert verifier.answer(ask(province_code="01"), registry.get)["verdict"] == "MATCHED"


def test_an_unknown_id_is_not_found_with_nothing_else_compared(verifier: Verifier) -> None:
    for personal_id in ("001099000124", "123456789"):  # unknown; a 9-digit CMND is not a registry key
        answer = verifier.answer(ask(personal_id=personal_id, phone="0912345678"), REGISTRY.get)
        assert answer == {"request_id": "r1", "verdict": "NOT_FOUND", "mask": {
            "personal_id": False, "full_name": None, "birth_date": None, "phone": None}}


def test_only_supplied_fields_are_in_the_mask_and_a_null_one_is_not_supplied(verifier: Verifier) -> None:
    answer = verifier.answer(ask(phone=None), REGISTRY.get)
    assert set(answer["mask"]) == set(REQUIRED)


# --- invalid requests -----------------------------------------------------------------------------------------------


def test_an_invalid_request_gets_its_own_error_and_the_batch_is_answered(verifier: Verifier) -> None:
    approved = ("personal_id", "full_name", "birth_date")
    batch: list[Any] = [
        ask("ok"),
        {k: v for k, v in ask().items() if k != "request_id"},
        ask(42),  # type: ignore[arg-type]
        ask("extra", phone="0912345678"),
        ask("number", personal_id=1099000123),
        ask("blank", full_name="  "),
        {"request_id": "missing", "personal_id": PID},
        ask("long", full_name="A" * 201),
        "not an object",
        None,
        ask("ok-too"),
    ]
    answers = verifier.verify(batch, approved, REGISTRY.get)
    assert len(answers) == len(batch)
    assert [a.get("verdict") for a in answers] == ["MATCHED", *[None] * 9, "MATCHED"]
    errors = [a["error"] for a in answers[1:-1]]
    assert errors == [
        "request_id: a non-empty string is required",
        "request_id: a non-empty string is required",
        "phone: not a field of this approval; it lists personal_id, full_name, birth_date",
        "personal_id: must be a string",
        "full_name: required",
        "full_name, birth_date: required",
        "full_name: longer than 200 characters",
        "a request must be an object of request_id and field values",
        "a request must be an object of request_id and field values",
    ]
    assert [a["request_id"] for a in answers] == ["ok", None, None, "extra", "number", "blank", "missing", "long",
                                                  None, None, "ok-too"]
    assert all(set(a) == {"request_id", "error"} for a in answers[1:-1])
    assert invalid(ask(), approved) is None


# --- nothing but a verdict and a mask ---------------------------------------------------------------------------------


_PEOPLE = [(f"0010990{i:05d}", name, f"19{60 + i}-0{1 + i % 9}-1{i % 9}", f"09{i:08d}", f"{10 + i:02d}")
           for i, name in enumerate(["Trần Thị Bình", "Lê Văn Cường", "Phạm Thị Dung", "Hoàng Minh Em", "Vũ Thị Giang"])]
_REGISTERED = {pid: entry_of(name, born, phone=phone, province_code=code) for pid, name, born, phone, code in _PEOPLE}
_REGISTRY_VALUES = sorted({v for pid, name, born, phone, code in _PEOPLE for v in (pid, name, born, phone, code)
                           } | {name_key(name) for _, name, *_ in _PEOPLE})
_texts = st.text(alphabet=st.sampled_from("0123456789-/ abcdeđĐăâêôơưÁàảãạ+.TrầnThịBìnhLêVăCườg"), max_size=20)


@st.composite
def _requests(draw: st.DrawFn) -> dict[str, Any]:
    """A request about a registered person, another one or nobody, each field right, wrong, another's or noise."""
    people = st.sampled_from(_PEOPLE)
    person, other = draw(people), draw(people)
    request: dict[str, Any] = {"request_id": draw(st.text(alphabet="abcdef", min_size=1, max_size=8))}
    for at, name in enumerate(ALL):
        choice = draw(st.sampled_from(("own", "other", "noise", "absent") if name not in REQUIRED else
                                      ("own", "other", "noise")))
        if choice != "absent":
            request[name] = person[at] if choice == "own" else other[at] if choice == "other" else draw(_texts)
    return request


@given(batch=st.lists(_requests(), min_size=1, max_size=8), approved=st.sets(st.sampled_from(ALL[3:])))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_no_answer_holds_a_registry_value_its_request_did_not_supply(verifier: Verifier, batch: list[dict[str, Any]],
                                                                    approved: set[str]) -> None:
    codec = Codec()
    codec.add(REPLY_ID, contract("vn.gsp.verify.VerificationReply"))
    answers = verifier.verify(batch, (*REQUIRED, *sorted(approved)), _REGISTERED.get)
    reply = codec.encode(REPLY_ID, {"correlation_id": "c", "error": None, "answers": [
        {"request_id": a["request_id"], "verdict": a.get("verdict"), "mask": a.get("mask", {}), "error": a.get("error")}
        for a in answers]})
    for request, answer in zip(batch, answers, strict=True):
        assert set(answer) in ({"request_id", "verdict", "mask"}, {"request_id", "error"})
        assert answer["request_id"] == request["request_id"]
        if "mask" in answer:
            assert set(answer["mask"]) <= set(request) - {"request_id"}
            assert all(v in (True, False, None) for v in answer["mask"].values())
        supplied = json.dumps(request, ensure_ascii=False)
        shown = json.dumps(answer, ensure_ascii=False)
        for value in _REGISTRY_VALUES:
            assert value not in shown or value in supplied, (value, request, answer)
    supplied_all = json.dumps(batch, ensure_ascii=False).encode()
    for value in _REGISTRY_VALUES:
        assert value.encode() not in reply or value.encode() in supplied_all, value


# --- a message's reply ------------------------------------------------------------------------------------------------


def _subscription(agency: str, fields: tuple[str, ...] = ALL, **extra: Any) -> Subscription:
    return Subscription(subscription_id=f"{agency}:population.citizen", agency=agency, dataset="population.citizen",
                        fields=fields, topic=topics.verify_replies(agency), schema_id=REPLY_ID, pseudonym_key=b"k",
                        mode="verify", **extra)


def _verifications(verifier: Verifier, held: dict[str, list[Subscription]]) -> tuple[Verifications, Codec]:
    codec = Codec()
    codec.add(REQUEST_ID, contract("vn.gsp.verify.VerificationRequest"))
    codec.add(REPLY_ID, contract("vn.gsp.verify.VerificationReply"))
    return Verifications(verifier, codec, subscriptions=lambda slug: held.get(slug, []), lookup=REGISTRY.get,
                         reply_schema_id=REPLY_ID), codec


def _message(codec: Codec, correlation_id: str, requests: list[dict[str, Any]], **extra: Any) -> bytes:
    items = [{"request_id": r.get("request_id"), "fields": {k: v for k, v in r.items() if k != "request_id"}}
             for r in requests]
    return codec.encode(REQUEST_ID, {"correlation_id": correlation_id, "requests": items, **extra})


def test_an_agency_topic_says_who_asks_and_where_the_reply_goes(verifier: Verifier) -> None:
    verifications, codec = _verifications(verifier, {"bo-y-te-bhxh": [_subscription("bo-y-te-bhxh")],
                                                     "bo-tai-chinh-thue": [_subscription("bo-tai-chinh-thue")]})
    # The message claims another agency: the topic decides.
    reply = verifications.handle(topics.verify_requests("bo-y-te-bhxh"), b"c1",
                                 _message(codec, "c1", [ask()], agency="bo-tai-chinh-thue"))
    assert reply is not None
    assert (reply.topic, reply.key, reply.agency, reply.channel) == (
        "verify.bo-y-te-bhxh.replies.v1", b"c1", "bo-y-te-bhxh", KAFKA)
    assert reply.subscription is not None and reply.subscription.agency == "bo-y-te-bhxh"
    assert codec.decode(verifications.encode(reply))[1] == {"correlation_id": "c1", "error": None, "answers": [
        {"request_id": "r1", "verdict": "MATCHED", "mask": dict.fromkeys(REQUIRED, True), "error": None}]}
    # Naming another agency's subscription on one's own topic is refused.
    refused = verifications.handle(topics.verify_requests("bo-y-te-bhxh"), None, _message(
        codec, "c2", [ask()], subscription_id="bo-tai-chinh-thue:population.citizen"))
    assert refused is not None and refused.subscription is None and refused.value["answers"] == []
    assert refused.value["error"] == "bo-y-te-bhxh holds no active verify subscription bo-tai-chinh-thue:population.citizen"
    # The control plane's topic names the agency inside, and is answered on its own replies topic.
    inner = verifications.handle(topics.VERIFY_REQUESTS, b"c3", _message(codec, "c3", [ask()], agency="bo-tai-chinh-thue"))
    assert inner is not None and (inner.topic, inner.agency, inner.channel) == (topics.VERIFY_REPLIES,
                                                                               "bo-tai-chinh-thue", HTTP)


def test_a_batch_without_an_active_verify_subscription_gets_an_error_and_no_answers(verifier: Verifier) -> None:
    expired = _subscription("bo-y-te-bhxh", valid_until=int(time.time() * 1000) - 1)
    verifications, codec = _verifications(verifier, {"bo-y-te-bhxh": [expired]})
    for topic in (topics.verify_requests("bo-y-te-bhxh"), topics.verify_requests("so-y-te-hn")):
        reply = verifications.handle(topic, None, _message(codec, "c", [ask()]))
        assert reply is not None and reply.subscription is None
        assert reply.value == {"correlation_id": "c", "answers": [],
                               "error": f"{topics.verify_agency(topic)} holds no active verify subscription"}


def test_unreadable_messages_are_answered_when_a_correlation_id_can_be_read(verifier: Verifier) -> None:
    verifications, codec = _verifications(verifier, {"bo-y-te-bhxh": [_subscription("bo-y-te-bhxh", fields=REQUIRED)]})
    topic = topics.verify_requests("bo-y-te-bhxh")
    garbage = verifications.handle(topic, b"k1", b"\x00\x00\x00\x1b\x59garbage")
    assert garbage is not None and garbage.key == b"k1" and garbage.value["correlation_id"] == "k1"
    assert garbage.value["error"].startswith("not a VerificationRequest in the Confluent wire format")
    assert verifications.handle(topic, None, b"plain text") is None  # nobody to answer
    assert verifications.handle(topic, b"k2", None) is not None  # a tombstone, with a key
    # Another contract (a reply sent where requests go): answered with an error under its correlation id.
    other = verifications.handle(topic, b"k3", codec.encode(REPLY_ID, {"correlation_id": "c9", "answers": [], "error": None}))
    assert other is not None and other.value == {"correlation_id": "c9", "answers": [], "error": (
        "not a VerificationRequest: correlation_id and requests are required")}
    too_many = verifications.handle(topic, None, _message(codec, "big", [ask()] * (MAX_BATCH + 1)))
    assert too_many is not None and too_many.value["error"] == f"{MAX_BATCH + 1} requests in one message; at most {MAX_BATCH}"
    # A field outside the approval is an error for its request only.
    mixed = verifications.handle(topic, None, _message(codec, "c4", [ask("a"), ask("b", phone="0912345678")]))
    assert mixed is not None and [a.get("error") for a in mixed.value["answers"]] == [
        None, "phone: not a field of this approval; it lists personal_id, full_name, birth_date"]

import pytest

from schemas.codec import contract
from schemas.datasets import dataset
from streams.share import ShareError, Subscription, check, covers, plain_view, projected_schema, shareable_fields

SUBSCRIPTION = Subscription(subscription_id="a:telecom.subscriber", agency="a", dataset="telecom.subscriber",
                            fields=("msisdn",), topic="share.a.subscriber.v1", schema_id=1,
                            row_filter={"carrier": ("Viettel",)}, pseudonym_key=b"k" * 32, key_version=1)


def test_a_subscribers_shareable_fields_are_its_declared_ones_with_their_avro_types() -> None:
    # What streams/share.py used to spell out by hand, now read from schemas/datasets/telecom.subscriber.json.
    assert shareable_fields("telecom.subscriber") == {
        "msisdn": "string", "carrier": "string", "subscriber_name": "string", "id_number": "string",
        "birth_date": "string", "address": ["null", "string"], "updated_at": "long",
        "personal_id": ["null", "string"], "verdict": "string", "match_score": "double"}
    assert shareable_fields(dataset("telecom.subscriber")) == shareable_fields("telecom.subscriber")


def test_the_registry_and_unknown_datasets_cannot_be_shared() -> None:
    for name in ("population.citizen", "telecom.subscribers"):
        with pytest.raises(ShareError, match=rf"^dataset '{name}' cannot be shared; known: electricity\.customer, "
                                             rf"insurance\.participant, population\.event, telecom\.subscriber$"):
            check(name, ["msisdn"], {})


def test_an_unknown_field_is_named_in_one_line() -> None:
    with pytest.raises(ShareError) as caught:
        check("telecom.subscriber", ["msisdn", "cccd"], {})
    assert str(caught.value).startswith("unknown field 'cccd' for dataset telecom.subscriber; shareable fields: msisdn, ")
    with pytest.raises(ShareError, match=r"^a subscription needs at least one field$"):
        check("telecom.subscriber", [], {})


def test_a_projected_schema_holds_the_header_and_the_approved_fields_only() -> None:
    header = contract("vn.gsp.common.EventHeader")
    schema = projected_schema("telecom.subscriber", "bo-cong-an", ["msisdn", "verdict"], header)
    assert (schema["name"], schema["namespace"]) == ("TelecomSubscriber", "vn.gsp.share.bo_cong_an")
    # Every approved field is optional, so an approval adding or dropping one stays compatible both ways.
    assert schema["fields"] == [{"name": "header", "type": header},
                                {"name": "msisdn", "type": ["null", "string"], "default": None},
                                {"name": "verdict", "type": ["null", "string"], "default": None},
                                {**schema["fields"][-1], "name": "person_key", "type": ["null", "string"], "default": None}]


def test_verdicts_select_matched_records_but_not_plain_ones() -> None:
    mismatch = {"header": {}, "msisdn": "0912345678", "carrier": "Viettel", "verdict": "MISMATCH"}
    assert not covers(SUBSCRIPTION, mismatch)
    assert covers(SUBSCRIPTION, {**mismatch, "verdict": "MATCHED"})
    plain = plain_view({"header": {}, "msisdn": "0912345678", "carrier": "Viettel", "findings": []})
    assert "findings" not in plain and covers(SUBSCRIPTION, plain, plain=True)
    assert not covers(SUBSCRIPTION, {**plain, "carrier": "MobiFone"}, plain=True)

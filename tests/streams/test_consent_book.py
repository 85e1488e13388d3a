"""A worker's consent book fails closed: garbage, a tombstone or another contract's record on gsp.consent withdraws
the consent its key names, and the records after it are still applied."""

from schemas.codec import Codec, contract
from streams.consent import ConsentBook

CONSENT_ID, OTHER_ID = 1, 2
SID, ANNA, BINH = "bhxh-ha-noi:telecom.subscriber", "001085012345", "079190000001"


def event(codec: Codec, personal_id: str, given: bool) -> bytes:
    return codec.encode(CONSENT_ID, {"personal_id": personal_id, "subscription_id": SID, "given": given, "at": 1,
                                     "recorded_by": "portal", "reference": None})


def test_bad_bytes_withdraw_the_consent_their_key_names_and_the_next_records_still_apply() -> None:
    codec = Codec()
    codec.add(CONSENT_ID, contract("vn.gsp.control.Consent"))
    codec.add(OTHER_ID, contract("vn.gsp.control.AuditEvent"))
    book = ConsentBook(codec)
    key = f"{SID}|{ANNA}".encode()
    book.apply(key, event(codec, ANNA, True))
    assert book.allows(SID, ANNA) and not book.allows(SID, None) and not book.allows("other:sub", ANNA)
    other = codec.encode(OTHER_ID, {"event_id": "e", "at": 1, "actor": "a", "action": "x", "subject": "s", "details": {}})
    for bad in (b"\x00\x00\x00\x00\x01garbage", b"", other):
        book.apply(key, event(codec, ANNA, True))
        book.apply(key, bad)
        assert not book.allows(SID, ANNA), bad   # fail closed for the pair the key names
    book.apply(None, event(codec, BINH, True))   # no key: not applied
    book.apply(f"{SID}|{BINH}".encode(), event(codec, BINH, True))
    assert book.allows(SID, BINH) and len(book) == 1
    book.apply(f"{SID}|{BINH}".encode(), None)   # a tombstone: no consent on record
    assert not book.allows(SID, BINH)
    book.apply(f"{SID}|{ANNA}".encode(), event(codec, ANNA, True))
    book.apply(f"{SID}|{ANNA}".encode(), event(codec, ANNA, False))
    assert not book.allows(SID, ANNA)

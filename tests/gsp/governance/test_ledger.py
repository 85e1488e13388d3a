"""The audit ledger (gsp.governance.ledger): a ledger in a SQLite file with several chains, realistic deliveries,
verifications and governance changes, heads stored between appends; copies of it tampered with plain SQL as an
attacker holding the database (but not the ledger key) would, each checked with `Ledger.verify` and with the real
`gsp audit verify`; retention; two writers racing on one chain; "who saw my data"; lineage.

The original is verified clean next to every tampered copy, so a finding comes from the tampering."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gsp.errors import UserError
from gsp.governance.ledger import GENESIS, Entry, Ledger, Report, entry_hash, governance_entry
from gsp.governance.ledger_writer import fact_entry
from gsp.http.audit import who_saw

REPO = Path(__file__).resolve().parents[3]
KEY = bytes.fromhex("5a17" * 16)
WRONG_KEY = bytes.fromhex("a5e8" * 16)     # an attacker's: the database is theirs, the ledger key is not
T0 = 1_767_225_600_000                     # 2026-01-01T00:00:00Z, in ms
PEOPLE = [f"00108501{n:04d}" for n in range(12)]   # 12-digit personal ids (CCCD)
ANNA, BAO = PEOPLE[0], PEOPLE[1]
NOBODY = "079199000001"                    # well-formed, in no entry

SUBSCRIPTIONS = {
    "bo-y-te-bhxh:population.citizen": {
        "agency": "bo-y-te-bhxh", "version": 2, "dataset": "population.citizen", "kind": "delivery", "channel": "topic",
        "fields": ["ho_ten", "ngay_sinh", "so_dinh_danh"],
        "terms": {"purpose": "Cấp thẻ bảo hiểm y tế", "legal_basis": "Luật Bảo hiểm y tế 2008, Điều 12",
                  "agency_id": "VN/GOV/bo-y-te/bhxh"}},
    "bo-cong-an-c06:telecom.subscriber": {
        "agency": "bo-cong-an-c06", "version": 1, "dataset": "telecom.subscriber", "kind": "delivery", "channel": "webhook",
        "fields": ["msisdn", "carrier"],
        "terms": {"purpose": "Xác thực thuê bao chính chủ", "legal_basis": "Nghị định 49/2017/NĐ-CP",
                  "agency_id": "VN/GOV/bo-cong-an/c06"}},
    "ngan-hang-nha-nuoc:population.citizen": {
        "agency": "ngan-hang-nha-nuoc", "version": 3, "dataset": "population.citizen", "kind": "verification",
        "channel": "http", "fields": ["ho_ten", "ngay_sinh"],
        "terms": {"purpose": "Xác minh khách hàng (eKYC)", "legal_basis": "Thông tư 16/2020/TT-NHNN",
                  "agency_id": "VN/GOV/ngan-hang-nha-nuoc"}},
}
SIDS = list(SUBSCRIPTIONS)


class Clock:
    def __init__(self, ms: int) -> None:
        self.ms = ms

    def __call__(self) -> float:
        self.ms += 1000
        return self.ms / 1000


@dataclass
class Built:
    """A ledger file and what was written to it: the oracle the tests check the ledger's answers against."""

    path: Path
    facts: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)   # (chain, seq, LedgerFact)
    heads: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    tips: dict[str, int] = field(default_factory=dict)


def make_fact(n: int, sid: str, people: list[str | None], channel: str | None = None) -> dict[str, Any]:
    """The n-th LedgerFact as a stream worker reports it: ``people`` the personal ids of its records."""
    s = SUBSCRIPTIONS[sid]
    records = []
    for k, personal_id in enumerate(people):
        i = n * 10 + k
        records.append({
            "event_id": str(uuid.UUID(int=0xE0000000 + i)), "agency_event_id": str(uuid.UUID(int=0xA0000000 + i)),
            "personal_id": personal_id, "source_system": "HTCSDLQG-DC", "source_version": "2025.1",
            "positions": {"gsp.raw.population.citizen": f"0:{i}", "gsp.clean.population.citizen": f"1:{i}",
                          f"gsp.share.{s['agency']}": f"0:{i}"},
            "verdict": ("match" if k % 2 == 0 else "no_match") if s["kind"] == "verification" else None})
    return {"kind": s["kind"], "at": T0 + n * 60_000, "actor": f"worker-{n % 2}-4711", "channel": channel or s["channel"],
            "agency": s["agency"], "subscription_id": sid, "version": s["version"], "dataset": s["dataset"],
            "fields": list(s["fields"]), "records": records}


def build(path: Path) -> Built:
    """Chains data-0, data-1 (12 entries each, heads at 4, 8, 12; data-0 then one entry past its last head),
    control (6 governance changes, heads at 2, 4, 6) and backfill (2 back-filled deliveries, head at 2)."""
    built = Built(path)
    engine = sa.create_engine(f"sqlite:///{path}")
    ledger = Ledger(engine, KEY, clock=Clock(T0))
    n = 0

    def facts_for(chain: str, count: int) -> None:
        nonlocal n
        entries = []
        for _ in range(count):
            n += 1
            sid = SIDS[2] if n % 5 == 0 else SIDS[n % 2]
            people: list[str | None] = [PEOPLE[(n + k * 3) % len(PEOPLE)] for k in range(3)]
            if n % 7 == 0:
                people.append(None)   # a record with no person (a legal entity's, say)
            if chain == "backfill":   # the same subscription, the past's records sent again another way
                sid, people = SIDS[0], [ANNA, BAO, PEOPLE[n % len(PEOPLE)]]
            fact = make_fact(n, sid, people, channel="backfill" if chain == "backfill" else None)
            seq = built.tips.get(chain, 0) + len(entries) + 1
            built.facts.append((chain, seq, fact))
            entries.append(fact_entry(ledger, fact, SUBSCRIPTIONS[sid]["terms"], source=f"{chain[-1]}:{n}"))
        built.tips[chain] = ledger.append(chain, entries, source_offset=n)

    try:
        for round_ in range(3):
            for chain in ("data-0", "data-1"):
                facts_for(chain, 2)
                facts_for(chain, 2)
            built.tips["control"] = ledger.append("control", [governance_entry({
                "event_id": str(uuid.UUID(int=0xC0000000 + round_ * 2 + k)), "at": T0 + round_ * 3_600_000 + k,
                "actor": "VN/GOV/bo-khoa-hoc-va-cong-nghe/cuc-vien-thong", "action": action,
                "subject": "subscription/bo-cong-an-c06:telecom.subscriber",
                "details": {"version": "1", "fields": "msisdn,carrier"}}) for k, action in
                enumerate(("subscription.approve", "subscription.suspend"))])
            assert ledger.checkpoint() == 3
            for chain, tip in built.tips.items():
                built.heads[chain].append(tip)
        facts_for("backfill", 2)
        built.tips["backfill"] = 2
        assert ledger.checkpoint() == 1
        built.heads["backfill"].append(2)
        assert ledger.checkpoint() == 0   # nothing moved since
        facts_for("data-0", 1)            # written after the last head: the tail the heads do not cover yet
    finally:
        engine.dispose()
    return built


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Built:
    built = build(tmp_path_factory.mktemp("ledger") / "ledger.db")
    assert built.tips == {"data-0": 13, "data-1": 12, "control": 6, "backfill": 2}
    assert built.heads == {"data-0": [4, 8, 12], "data-1": [4, 8, 12], "control": [2, 4, 6], "backfill": [2]}
    return built


@contextlib.contextmanager
def opened(path: Path, key: bytes = KEY) -> Iterator[Ledger]:
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        yield Ledger(engine, key)
    finally:
        engine.dispose()


def verify(path: Path) -> Report:
    with opened(path) as ledger:
        return ledger.verify()


@contextlib.contextmanager
def sql(path: Path) -> Iterator[sqlite3.Connection]:
    """Plain SQL on a ledger file, committed at the end: the attacker's tool."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.row_factory = sqlite3.Row
        with conn:
            yield conn


def copy_of(template: Built, into: Path) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(template.path, into / "copy.db"))


def row(conn: sqlite3.Connection, chain: str, seq: int) -> dict[str, Any]:
    found = conn.execute("SELECT * FROM ledger_entries WHERE chain = ? AND seq = ?", (chain, seq)).fetchone()
    assert found is not None, (chain, seq)
    return dict(found)


def put(conn: sqlite3.Connection, entry: dict[str, Any]) -> None:
    names = list(entry)
    conn.execute(f"INSERT INTO ledger_entries ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                 [entry[n] for n in names])


def renumber(conn: sqlite3.Connection, chain: str, from_seq: int, by: int) -> None:
    """Move entries ``from_seq``.. of ``chain`` by ``by`` numbers (through negatives: the key stays unique)."""
    conn.execute("UPDATE ledger_entries SET seq = -(seq + ?) WHERE chain = ? AND seq >= ?", (by, chain, from_seq))
    conn.execute("UPDATE ledger_entries SET seq = -seq WHERE chain = ? AND seq < 0", (chain,))


def rehash(conn: sqlite3.Connection, chain: str, from_seq: int) -> None:
    """Recompute every hash and link of ``chain`` from ``from_seq`` on, and its tip: what an attacker who knows
    the hashing (it is no secret) does to hide a change from the links."""
    rows = [dict(r) for r in conn.execute("SELECT * FROM ledger_entries WHERE chain = ? AND seq >= ? ORDER BY seq",
                                          (chain, from_seq))]
    before = conn.execute("SELECT hash FROM ledger_entries WHERE chain = ? AND seq = ?", (chain, from_seq - 1)).fetchone()
    prev = before["hash"] if before else GENESIS
    for r in rows:
        r["prev_hash"] = prev
        r["hash"] = prev = entry_hash(r)
        conn.execute("UPDATE ledger_entries SET prev_hash = ?, hash = ? WHERE chain = ? AND seq = ?",
                     (r["prev_hash"], r["hash"], chain, r["seq"]))
    conn.execute("UPDATE ledger_chains SET seq = ?, hash = ? WHERE chain = ?", (rows[-1]["seq"], prev, chain))


def at_key(findings: Report, chain: str, seq: int) -> list[str]:
    return [f.problem for f in findings.findings if (f.chain, f.seq) == (chain, seq)]


# The four tamperings of the issue, each: (what it does to a copy, the (chain, seq) a finding must name).

def change_fields(conn: sqlite3.Connection) -> None:
    """data-0 #5 claims fewer fields were sent: the body rewritten as the ledger writes it (canonical JSON)."""
    entry = row(conn, "data-0", 5)
    body = json.loads(entry["body"])
    body["fields"] = body["fields"][:1]
    conn.execute("UPDATE ledger_entries SET body = ? WHERE chain = 'data-0' AND seq = 5",
                 (json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":")),))


def change_agency(conn: sqlite3.Connection) -> None:
    conn.execute("UPDATE ledger_entries SET agency = 'ngan-hang-nha-nuoc' WHERE chain = 'data-1' AND seq = 3")


def remove_one(conn: sqlite3.Connection) -> None:
    conn.execute("DELETE FROM ledger_entries WHERE chain = 'data-0' AND seq = 6")


def insert_forged(conn: sqlite3.Connection) -> None:
    """A clever forgery: a plausible entry at data-1 #5, linked to #4 and hashed as the ledger hashes, the
    entries after it numbered on and the chain's tip moved along."""
    after = row(conn, "data-1", 4)
    forged = {**row(conn, "data-1", 5), "seq": 5, "agency": "bo-tai-chinh-tong-cuc-thue", "at": after["at"] + 1,
              "subscription_id": "bo-tai-chinh-tong-cuc-thue:population.citizen", "prev_hash": after["hash"]}
    forged["hash"] = entry_hash(forged)
    renumber(conn, "data-1", 5, 1)
    put(conn, forged)
    conn.execute("UPDATE ledger_chains SET seq = seq + 1 WHERE chain = 'data-1'")


def reorder(conn: sqlite3.Connection) -> None:
    """data-0 #3 and #4 swap places."""
    conn.execute("UPDATE ledger_entries SET seq = -1 WHERE chain = 'data-0' AND seq = 3")
    conn.execute("UPDATE ledger_entries SET seq = 3 WHERE chain = 'data-0' AND seq = 4")
    conn.execute("UPDATE ledger_entries SET seq = 4 WHERE chain = 'data-0' AND seq = -1")


TAMPERINGS: dict[str, tuple[Callable[[sqlite3.Connection], None], str, int]] = {
    "changed fields": (change_fields, "data-0", 5),
    "changed agency": (change_agency, "data-1", 3),
    "removed": (remove_one, "data-0", 7),        # the gap shows at the entry after it
    "inserted": (insert_forged, "data-1", 6),    # the old #5, now numbered 6, no longer matches its hash
    "reordered": (reorder, "data-0", 3),
}


def test_the_untouched_ledger_verifies_clean(template: Built) -> None:
    report = verify(template.path)
    assert report.ok, report.findings
    assert report.chains == {"backfill": 2, "control": 6, "data-0": 13, "data-1": 12}
    assert report.heads == 10


@pytest.mark.parametrize("name", TAMPERINGS)
def test_each_tampering_is_found_at_its_entry(template: Built, tmp_path: Path, name: str) -> None:
    tamper, chain, seq = TAMPERINGS[name]
    copy = copy_of(template, tmp_path)
    with sql(copy) as conn:
        tamper(conn)
    report = verify(copy)
    assert at_key(report, chain, seq), report.findings
    # Nothing else is accused (an entry moved or gone also leaves the derived indexes out of step with the entries).
    assert {f.chain for f in report.findings if not f.chain.startswith("ledger_")} == {chain}, report.findings
    assert verify(template.path).ok


def test_a_removed_entry_is_named_as_missing(template: Built, tmp_path: Path) -> None:
    copy = copy_of(template, tmp_path)
    with sql(copy) as conn:
        remove_one(conn)
    problems = at_key(verify(copy), "data-0", 7)
    assert "entries 6..6 are missing" in problems and "does not link to the entry before it" in problems


def test_a_forged_entry_hashed_and_linked_right_still_breaks_the_chain_after_it(template: Built, tmp_path: Path) -> None:
    copy = copy_of(template, tmp_path)
    with sql(copy) as conn:
        insert_forged(conn)
    report = verify(copy)
    assert not at_key(report, "data-1", 5)   # the forgery itself is well made ...
    assert "does not link to the entry before it" in at_key(report, "data-1", 6)   # ... the entry after it is not
    assert "the entry differs from the head stored for it" in at_key(report, "data-1", 8)


def test_a_naive_insertion_before_the_first_entry_is_found(template: Built, tmp_path: Path) -> None:
    copy = copy_of(template, tmp_path)
    with sql(copy) as conn:
        put(conn, {**row(conn, "control", 1), "seq": 0, "hash": hashlib.sha256(b"forged").hexdigest()})
    report = verify(copy)
    assert "out of place after #0" in at_key(report, "control", 0)
    assert "its content does not match its hash (changed)" in at_key(report, "control", 0)
    assert "does not link to the entry before it" in at_key(report, "control", 1)


def test_a_naive_entry_added_past_the_tip_is_found(template: Built, tmp_path: Path) -> None:
    copy = copy_of(template, tmp_path)
    with sql(copy) as conn:
        put(conn, {**row(conn, "data-1", 12), "seq": 13, "prev_hash": row(conn, "data-1", 12)["hash"],
                   "hash": "f" * 64})
    report = verify(copy)
    assert "its content does not match its hash (changed)" in at_key(report, "data-1", 13)
    assert "the chain's tip does not match its last entry" in at_key(report, "data-1", 12)


def test_a_reordering_is_found_at_both_entries(template: Built, tmp_path: Path) -> None:
    copy = copy_of(template, tmp_path)
    with sql(copy) as conn:
        reorder(conn)
    report = verify(copy)
    for seq in (3, 4):
        assert "its content does not match its hash (changed)" in at_key(report, "data-0", seq)
        assert "does not link to the entry before it" in at_key(report, "data-0", seq)


@pytest.mark.parametrize("move_tip", [False, True], ids=["tip-left", "tip-moved-back"])
def test_the_tail_cut_back_past_a_head_is_found(template: Built, tmp_path: Path, move_tip: bool) -> None:
    copy = copy_of(template, tmp_path)
    with sql(copy) as conn:
        conn.execute("DELETE FROM ledger_entries WHERE chain = 'data-0' AND seq >= 11")
        if move_tip:   # the attacker also sets the chain's tip to the new last entry
            conn.execute("UPDATE ledger_chains SET seq = 10, hash = ? WHERE chain = 'data-0'",
                         (row(conn, "data-0", 10)["hash"],))
    report = verify(copy)
    assert at_key(report, "data-0", 12) == ["a head names an entry that is gone (tail cut)"]
    assert bool(at_key(report, "data-0", 13)) is not move_tip   # the tip's own complaint, when left behind


def test_a_whole_chain_removed_is_found_by_its_heads(template: Built, tmp_path: Path) -> None:
    copy = copy_of(template, tmp_path)
    with sql(copy) as conn:
        for table in ("ledger_entries", "ledger_chains", "ledger_people", "ledger_events"):
            conn.execute(f"DELETE FROM {table} WHERE chain = 'data-1'")
    report = verify(copy)
    for seq in (4, 8, 12):
        assert "a head names an entry that is gone (tail cut)" in at_key(report, "data-1", seq), report.findings


@pytest.mark.parametrize("how", ["new head", "head moved"])
def test_a_head_not_made_with_the_ledger_key_is_found(template: Built, tmp_path: Path, how: str) -> None:
    copy = copy_of(template, tmp_path)
    with sql(copy) as conn:
        if how == "new head":   # covers the unprotected tail entry, so cutting it would look like a cut past a head
            h = row(conn, "data-0", 13)["hash"]
            mac = hmac.new(WRONG_KEY, f"head\x00data-0\x0013\x00{h}\x00{T0}".encode(), hashlib.sha256).hexdigest()
            conn.execute("INSERT INTO ledger_heads VALUES ('data-0', 13, ?, ?, ?)", (h, T0, mac))
        else:                   # an existing head made to name another entry's hash
            conn.execute("UPDATE ledger_heads SET hash = ? WHERE chain = 'control' AND seq = 4",
                         (row(conn, "control", 3)["hash"],))
    report = verify(copy)
    chain, seq = ("data-0", 13) if how == "new head" else ("control", 4)
    assert at_key(report, chain, seq) == ["a head not made with the ledger key"]


@pytest.mark.parametrize("heads_too", [False, True], ids=["entries-rehashed", "entries-and-heads-rehashed"])
def test_a_chain_rewritten_with_correct_hashes_is_caught_by_its_heads(template: Built, tmp_path: Path,
                                                                       heads_too: bool) -> None:
    copy = copy_of(template, tmp_path)
    with sql(copy) as conn:
        conn.execute("UPDATE ledger_entries SET agency = 'bo-tai-chinh-tong-cuc-thue' WHERE chain = 'data-1' AND seq = 2")
        rehash(conn, "data-1", 2)
        if heads_too:   # the heads re-made too, but the attacker can only MAC them with a key of their own
            for head in conn.execute("SELECT * FROM ledger_heads WHERE chain = 'data-1'").fetchall():
                h = row(conn, "data-1", head["seq"])["hash"]
                mac = hmac.new(WRONG_KEY, f"head\x00data-1\x00{head['seq']}\x00{h}\x00{head['at']}".encode(),
                               hashlib.sha256).hexdigest()
                conn.execute("UPDATE ledger_heads SET hash = ?, mac = ? WHERE chain = 'data-1' AND seq = ?",
                             (h, mac, head["seq"]))
    report = verify(copy)
    expected = "a head not made with the ledger key" if heads_too else "the entry differs from the head stored for it"
    assert sorted((f.chain, f.seq, f.problem) for f in report.findings) == [("data-1", s, expected) for s in (4, 8, 12)]


# Any change to any stored entry is found, at that entry.

ENTRY_KEYS = [(c, s) for c, tip in (("backfill", 2), ("control", 6), ("data-0", 13), ("data-1", 12)) for s in range(1, tip + 1)]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(where=st.sampled_from(ENTRY_KEYS), data=st.data())
def test_any_single_byte_changed_in_any_body_is_found(template: Built, where: tuple[str, int], data: st.DataObject) -> None:
    chain, seq = where
    with tempfile.TemporaryDirectory() as tmp:
        copy = copy_of(template, Path(tmp))
        with sql(copy) as conn:
            body = bytearray(row(conn, chain, seq)["body"].encode())
            ascii_at = [i for i, b in enumerate(body) if b < 0x80]   # keep the text valid UTF-8 (invalid UTF-8: its own test below)
            i = data.draw(st.sampled_from(ascii_at), label="byte")
            body[i] = data.draw(st.integers(0x00, 0x7F).filter(lambda b: b != body[i]), label="new value")
            conn.execute("UPDATE ledger_entries SET body = ? WHERE chain = ? AND seq = ?", (body.decode(), chain, seq))
        report = verify(copy)
    assert "its content does not match its hash (changed)" in at_key(report, chain, seq), report.findings
    assert {f.chain for f in report.findings} == {chain}


COLUMNS = {"at": st.integers(0, 2**62), "kind": st.text(max_size=20), "actor": st.text(max_size=20),
           "agency": st.none() | st.text(max_size=20), "subscription_id": st.none() | st.text(max_size=30),
           "version": st.none() | st.integers(-5, 10), "dataset": st.none() | st.text(max_size=20),
           "source": st.none() | st.text(max_size=10), "records": st.text(min_size=1, max_size=30),
           "prev_hash": st.text("0123456789abcdef", min_size=64, max_size=64),
           "hash": st.text("0123456789abcdef", min_size=64, max_size=64)}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(where=st.sampled_from(ENTRY_KEYS), column=st.sampled_from(sorted(COLUMNS)), data=st.data())
def test_any_other_column_changed_is_found(template: Built, where: tuple[str, int], column: str,
                                           data: st.DataObject) -> None:
    chain, seq = where
    with tempfile.TemporaryDirectory() as tmp:
        copy = copy_of(template, Path(tmp))
        with sql(copy) as conn:
            old = row(conn, chain, seq)[column]
            new = data.draw(COLUMNS[column].filter(lambda v: v != old and "\x00" not in str(v)), label="new value")
            conn.execute(f"UPDATE ledger_entries SET {column} = ? WHERE chain = ? AND seq = ?", (new, chain, seq))
        report = verify(copy)
    # A changed hash shows at the entry after it (its link) when there is one; anything else at the entry itself.
    assert at_key(report, chain, seq) or (column == "hash" and at_key(report, chain, seq + 1)), report.findings
    assert {f.chain for f in report.findings if not f.chain.startswith("ledger_")} == {chain}


def test_a_body_made_invalid_utf8_is_reported_as_a_finding(template: Built, tmp_path: Path) -> None:
    copy = copy_of(template, tmp_path)
    with sql(copy) as conn:
        conn.execute("UPDATE ledger_entries SET body = CAST(body || X'FF' AS TEXT) WHERE chain = 'data-0' AND seq = 2")
    assert at_key(verify(copy), "data-0", 2)


def test_a_person_index_row_removed_is_found(template: Built, tmp_path: Path) -> None:
    copy = copy_of(template, tmp_path)
    with opened(copy) as ledger, sql(copy) as conn:
        conn.execute("DELETE FROM ledger_people WHERE person_ref = ?", (ledger.person_ref(ANNA),))
    assert {f.chain for f in verify(copy).findings} == {"ledger_people"}


@pytest.mark.parametrize("change", [
    "UPDATE ledger_people SET records = records + 1 WHERE rowid IN (SELECT rowid FROM ledger_people LIMIT 1)",
    "INSERT INTO ledger_events (event_id, chain, seq) VALUES ('k1.forged', 'data-0', 3)",
    "DELETE FROM ledger_events WHERE event_id IN (SELECT event_id FROM ledger_events LIMIT 1)"])
def test_an_index_row_changed_added_or_removed_is_found(template: Built, tmp_path: Path, change: str) -> None:
    copy = copy_of(template, tmp_path)
    with sql(copy) as conn:
        conn.execute(change.replace("rowid IN (SELECT rowid FROM ledger_people LIMIT 1)",
                                    "person_ref = (SELECT min(person_ref) FROM ledger_people)"))
    assert {f.chain for f in verify(copy).findings} & {"ledger_people", "ledger_events"}


# The real `gsp audit verify`, on copies.

def gsp_verify(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GSP_")}
    return subprocess.run([sys.executable, "-m", "gsp", "audit", "verify", *args], capture_output=True, text=True,
                          timeout=120, cwd=REPO, env={**clean, **env})


def cli_env(path: Path, home: Path, key: bytes | None = KEY) -> dict[str, str]:
    return {"GSP_DATABASE_URL": f"sqlite:///{path}", "GSP_HOME": str(home),
            **({"GSP_LEDGER_KEY": key.hex()} if key is not None else {})}


def test_gsp_audit_verify_passes_the_untouched_ledger(template: Built, tmp_path: Path) -> None:
    copy = copy_of(template, tmp_path)
    done = gsp_verify(cli_env(copy, tmp_path / "home"), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report == {"ok": True, "chains": {"backfill": 2, "control": 6, "data-0": 13, "data-1": 12}, "heads": 10,
                      "findings": [], "warnings": report["warnings"]}
    assert [w.split(":")[0] for w in report["warnings"]] == ["data-0"]   # its 13th entry came after the last head
    # the key from GSP_HOME/ledger.key instead, as on the control plane's own machine; the human report
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "ledger.key").write_text(KEY.hex() + "\n")
    done = gsp_verify(cli_env(copy, tmp_path / "home", key=None))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "ok: every entry and head verified"


@pytest.mark.parametrize("name", ["changed fields", "removed", "inserted", "reordered"])
def test_gsp_audit_verify_finds_each_tampering(template: Built, tmp_path: Path, name: str) -> None:
    tamper, chain, seq = TAMPERINGS[name]
    copy = copy_of(template, tmp_path)
    with sql(copy) as conn:
        tamper(conn)
    done = gsp_verify(cli_env(copy, tmp_path / "home"), "--json")
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is False
    assert any((f["chain"], f["seq"]) == (chain, seq) for f in report["findings"]), report["findings"]
    human = gsp_verify(cli_env(copy, tmp_path / "home"))
    assert human.returncode == 1
    assert f"TAMPERED {chain} #{seq}: " in human.stdout and human.stdout.splitlines()[-1].startswith("FAILED: ")
    assert gsp_verify(cli_env(template.path, tmp_path / "home"), "--json").returncode == 0


@pytest.mark.parametrize("key", [None, "not-hex"], ids=["no-key", "bad-key"])
def test_gsp_audit_verify_without_a_usable_key_is_one_line_and_exit_2(template: Built, tmp_path: Path,
                                                                       key: str | None) -> None:
    env = cli_env(copy_of(template, tmp_path), tmp_path / "empty-home", key=None)
    if key is not None:
        env["GSP_LEDGER_KEY"] = key
    done = gsp_verify(env, "--json")
    lines = done.stderr.splitlines()
    assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith("gsp: error: "), done.stderr
    assert "GSP_LEDGER_KEY" in lines[0] and done.stdout == ""
    assert not (tmp_path / "empty-home" / "ledger.key").exists()   # no key was made up for the check


def test_gsp_audit_verify_on_a_missing_database_is_an_error(tmp_path: Path) -> None:
    done = gsp_verify(cli_env(tmp_path / "typo.db", tmp_path / "home"), "--json")
    assert done.returncode == 2 and not (tmp_path / "typo.db").exists()


# Retention.

def retention_ledger(path: Path) -> Ledger:
    """One chain, data-0: entries 1..10 at 1 s, 2 s, ... 10 s, one person each; heads at 3 and 6."""
    ledger = Ledger(sa.create_engine(f"sqlite:///{path}"), KEY, clock=Clock(T0))
    for seq in range(1, 11):
        fact = make_fact(seq, SIDS[0], [PEOPLE[seq]])
        ledger.append("data-0", [fact_entry(ledger, {**fact, "at": seq * 1000}, {}, source=None)])
        if seq in (3, 6):
            ledger.checkpoint()
    return ledger


def test_prune_removes_only_up_to_a_head_and_the_rest_still_verifies(tmp_path: Path) -> None:
    ledger = retention_ledger(tmp_path / "ledger.db")
    try:
        assert ledger.prune(before_ms=500) == 0          # nothing that old
        assert ledger.prune(before_ms=8500) == 6         # 1..8 are old enough, but the newest head among them is 6
        with sql(tmp_path / "ledger.db") as conn:
            assert [r[0] for r in conn.execute("SELECT seq FROM ledger_entries ORDER BY seq")] == [7, 8, 9, 10]
            assert [r[0] for r in conn.execute("SELECT seq FROM ledger_heads")] == [6]   # the anchor's head
        report = ledger.verify()
        assert report.ok and report.chains == {"data-0": 4}, report.findings
        assert ledger.counts() == {"data-0": 4}
        assert ledger.person(PEOPLE[5]) == [] and len(ledger.person(PEOPLE[7])) == 1   # the index pruned along
        assert ledger.lineage(str(uuid.UUID(int=0xE0000000 + 50))) == []
        assert ledger.prune(before_ms=8500) == 0         # no newer head among the old entries: nothing more
        ledger.append("data-0", [Entry(kind="x", actor="t", body={}, at=11_000)])
        ledger.checkpoint()
        assert ledger.prune(before_ms=20_000) == 5       # all old now; the newest head is the tip
        report = ledger.verify()
        assert report.ok and report.chains == {"data-0": 0} and ledger.tip("data-0")[0] == 11, report.findings
    finally:
        ledger.engine.dispose()


@pytest.mark.parametrize("tamper", ["changed", "removed"])
def test_tampering_the_first_kept_entry_after_prune_is_found(tmp_path: Path, tamper: str) -> None:
    path = tmp_path / "ledger.db"
    ledger = retention_ledger(path)
    ledger.prune(before_ms=8500)
    ledger.engine.dispose()
    with sql(path) as conn:
        if tamper == "changed":
            conn.execute("UPDATE ledger_entries SET actor = 'someone-else' WHERE seq = 7")
        else:
            conn.execute("DELETE FROM ledger_entries WHERE seq = 7")
    report = verify(path)
    assert at_key(report, "data-0", 7 if tamper == "changed" else 8), report.findings


def test_a_forged_anchor_does_not_hide_removed_first_entries(tmp_path: Path) -> None:
    """Removing a chain's first entries and moving its retention anchor to the last one removed, as a prune would:
    the anchor is no head made with the key."""
    path = tmp_path / "ledger.db"
    retention_ledger(path).engine.dispose()
    with sql(path) as conn:
        conn.execute("UPDATE ledger_chains SET anchor_seq = 4, anchor_hash = ? WHERE chain = 'data-0'",
                     (row(conn, "data-0", 4)["hash"],))
        conn.execute("DELETE FROM ledger_entries WHERE seq <= 4")
    assert at_key(verify(path), "data-0", 4), "a forged anchor hid entries 1..4"


# Two writers on one chain.

@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_two_writers_racing_on_one_chain_never_fork_it(tmp_path: Path, request: pytest.FixtureRequest,
                                                       database: str) -> None:
    if database == "sqlite":
        url = f"sqlite:///{tmp_path / 'ledger.db'}"
    else:
        url = request.getfixturevalue("postgresql_engine").url.render_as_string(hide_password=False)
    engines = [sa.create_engine(url) for _ in range(2)]   # two control planes, one database
    ledgers = [Ledger(e, KEY) for e in engines]
    start, failed = threading.Barrier(2), []

    def write(ledger: Ledger, name: str) -> None:
        try:
            start.wait()
            for i in range(200):
                ledger.append("control", [Entry(kind="desk.action", actor=name, body={"i": i})])
        except Exception as exc:   # reported below, with the chain's state
            failed.append(exc)

    threads = [threading.Thread(target=write, args=(ledger, f"writer-{n}")) for n, ledger in enumerate(ledgers)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not failed, failed
        report = ledgers[0].verify()
        assert report.ok and report.chains == {"control": 400}, report.findings
        with engines[0].connect() as conn:
            rows = conn.execute(sa.text("SELECT seq, actor, body FROM ledger_entries ORDER BY seq")).all()
        assert [r.seq for r in rows] == list(range(1, 401))
        for name in ("writer-0", "writer-1"):   # each writer's entries all there, once, in its order
            assert [json.loads(r.body)["i"] for r in rows if r.actor == name] == list(range(200))
        assert ledgers[1].tip("control")[0] == 400
    finally:
        for e in engines:
            e.dispose()


# Who saw my data; lineage.

def oracle(built: Built, personal_id: str, kind: str) -> dict[tuple[str, str, str], tuple[int, int, int]]:
    """(agency, subscription, channel) -> (how many of the person's records went there, first and last time), from
    the facts as written."""
    seen: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    for _, _, fact in built.facts:
        if fact["kind"] == kind:
            for r in fact["records"]:
                if r["personal_id"] == personal_id:
                    seen[(fact["agency"], fact["subscription_id"], fact["channel"])].append(fact["at"])
    return {key: (len(ats), min(ats), max(ats)) for key, ats in seen.items()}


def grouped(answer: list[dict[str, Any]]) -> dict[tuple[str, str, str], tuple[int, int, int]]:
    return {(d["agency"], d["subscription_id"], d["channel"]): (d["records"], d["first_at"], d["last_at"]) for d in answer}


@pytest.mark.parametrize("personal_id", [ANNA, BAO, PEOPLE[7]])
def test_who_saw_names_the_agencies_fields_and_terms_and_counts_only_that_persons_records(
        template: Built, personal_id: str) -> None:
    with opened(template.path) as ledger:
        answer = who_saw(ledger, personal_id)
    expected = oracle(template, personal_id, "delivery")
    assert len(expected) == (3 if personal_id in (ANNA, BAO) else 2)   # both agencies; ANNA and BAO back-filled too
    assert grouped(answer["deliveries"]) == expected
    for d in answer["deliveries"]:
        s = SUBSCRIPTIONS[d["subscription_id"]]
        assert (d["version"], d["dataset"], d["fields"]) == (s["version"], s["dataset"], s["fields"])
        assert (d["purpose"], d["legal_basis"]) == (s["terms"]["purpose"], s["terms"]["legal_basis"])
    verifications = oracle(template, personal_id, "verification")
    assert grouped(answer["verifications"]) == verifications
    for v in answer["verifications"]:
        assert set(v["verdicts"]) <= {"match", "no_match"} and v["verdicts"]
        assert v["purpose"] == "Xác minh khách hàng (eKYC)"
    assert [d["last_at"] for d in answer["deliveries"]] == sorted((d["last_at"] for d in answer["deliveries"]),
                                                                  reverse=True)


def test_who_saw_never_shows_a_personal_id_or_another_persons_reference(template: Built) -> None:
    with opened(template.path) as ledger:
        answer = json.dumps(who_saw(ledger, ANNA), ensure_ascii=False)
        refs = [ledger.person_ref(p) for p in PEOPLE]
    assert ANNA in {r["personal_id"] for _, _, f in template.facts for r in f["records"]}
    for personal_id, ref in zip(PEOPLE, refs, strict=True):
        assert personal_id not in answer and ref not in answer


def test_the_ledger_database_holds_no_personal_id(template: Built) -> None:
    with contextlib.closing(sqlite3.connect(template.path)) as conn:
        dump = "\n".join(conn.iterdump())
    with opened(template.path) as ledger:
        assert ledger.person_ref(ANNA) in dump   # people are there, by reference
    for personal_id in PEOPLE:
        assert personal_id not in dump


def test_who_saw_an_unknown_person_is_empty_and_a_malformed_id_is_refused(template: Built) -> None:
    with opened(template.path) as ledger:
        for unknown in (NOBODY, "012345678"):   # a 9-digit CMND may be asked about too
            answer = who_saw(ledger, unknown)
            assert {"deliveries", "verifications"} <= set(answer) and all(v == [] for v in answer.values()), answer
        for bad in ("", "00108501000", "0010850100001", "00108501000a", " 001085010000", "0010850l0000", "*"):
            with pytest.raises(UserError, match="12-digit"):
                who_saw(ledger, bad)


def test_who_saw_refuses_an_id_with_a_trailing_newline(template: Built) -> None:
    with opened(template.path) as ledger, pytest.raises(UserError):
        who_saw(ledger, ANNA + "\n")


def test_another_key_finds_nobody(template: Built) -> None:
    """The reference is keyed: the same id under another key names no one in this ledger."""
    with opened(template.path, key=WRONG_KEY) as ledger:
        assert ledger.person(ANNA) == []


@pytest.mark.parametrize("which", ["agency_event_id", "event_id"])
@pytest.mark.parametrize("kind", ["delivery", "verification"])
def test_lineage_finds_an_entry_by_either_event_id(template: Built, which: str, kind: str) -> None:
    chain, seq, fact = next(f for f in template.facts[8:] if f[2]["kind"] == kind)
    record = fact["records"][1]
    with opened(template.path) as ledger:
        found = ledger.lineage(record[which])
        assert ledger.lineage(str(uuid.UUID(int=1))) == []
        assert found == [{
            "at": fact["at"], "kind": fact["kind"], "agency": fact["agency"], "subscription_id": fact["subscription_id"],
            "version": fact["version"], "dataset": fact["dataset"], "fields": fact["fields"],
            "purpose": SUBSCRIPTIONS[fact["subscription_id"]]["terms"]["purpose"],
            "legal_basis": SUBSCRIPTIONS[fact["subscription_id"]]["terms"]["legal_basis"],
            "channel": fact["channel"], "actor": fact["actor"], "entry": f"{chain}#{seq}",
            "record": {"event_id": record["event_id"], "agency_event_id": record["agency_event_id"],
                       "person_ref": ledger.person_ref(record["personal_id"]), "source_system": "HTCSDLQG-DC",
                       "source_version": "2025.1", "positions": record["positions"],
                       **({"verdict": record["verdict"]} if kind == "verification" else {})}}]

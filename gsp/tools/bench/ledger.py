"""The audit ledger at scale: filling it, "who saw my data", checking it.

    python -m gsp.tools.bench.ledger [--deliveries 1000000] [--people N] [--queries 200] [--per-append 1] [--json]

Fills a fresh SQLite ledger in a throwaway directory with ``--deliveries`` delivered records, as the
stream workers report them: LedgerFacts of up to 500 records each (most full, some partial), one
subscription each among six agencies, entered through `fact_entry` and `Ledger.append` on the
chains ``data-0`` .. ``data-3`` (a subscription's facts stay on one partition), plus verification
answers (about 1 % as many requests, in batches of up to 100), a governance change on ``control`` and heads
stored every tenth of the way. ``--per-append N`` enters N facts of a chain per `Ledger.append` (one
transaction), as the ledger writer does with what one poll brought; default 1, the writer under light
load. The personal ids are drawn from ``--people`` people (default: one for
every 5 records, 200,000 at a million), so a person has several deliveries across several agencies.

Reports, next to a baseline measured in the same run on the same machine:

* append: records/s through `fact_entry` + `Ledger.append` (hashing, chaining, the person and event
  indexes); baseline: the same rows (the same body text) inserted into a plain table of a second
  SQLite file in the same directory, without hash, link or index, as many per transaction.
  ``ratio`` = ledger / baseline.
* who saw my data: `gsp.http.audit.who_saw` (the person index, then each entry) for ``--queries``
  people drawn at random, p50 / p99 / max, against the target of 1 s; each answer's record count is
  checked against what was generated for that person.
* the same for one person with a record in every delivery entry (thousands at a million records): the
  worst case, and whether the answer is complete (`Ledger.person` reads at most 1,000 entries).
* verify: `Ledger.verify()` over the whole ledger.
* the database's size, and the baseline table's.

Progress goes to stderr; a table (or one JSON object with ``--json``) to stdout. Exit status 1 if an
answer disagrees with what was generated or the ledger does not verify. About three minutes at a
million records on 2 cores; the directory is removed at the end.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import shutil
import sqlite3
import sys
import tempfile
import time
import uuid
import zlib
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import sqlalchemy as sa

from gsp.governance.ledger import CONTROL, Entry, Ledger, governance_entry
from gsp.governance.ledger_writer import fact_entry
from gsp.http.audit import who_saw

__all__ = ["main", "run"]

TARGET_S = 1.0            # "answered from an index in under a second"
MAX_RECORDS = 500         # a share agent's micro-batch (streams/app.py: take_events up to 500)
CHAINS = 4
T0 = 1_767_225_600_000    # 2026-01-01T00:00:00Z

# (agency, subscription id, version, dataset, fields, purpose, legal basis)
_SUBSCRIPTIONS = [
    ("bo-y-te-bhxh", "population.citizen", 2, ["ho_ten", "ngay_sinh", "so_dinh_danh", "dia_chi_thuong_tru"],
     "Cấp thẻ bảo hiểm y tế", "Luật Bảo hiểm y tế 2008, Điều 12"),
    ("bo-cong-an-c06", "telecom.subscriber", 1, ["msisdn", "carrier", "so_dinh_danh"],
     "Xác thực thuê bao chính chủ", "Nghị định 49/2017/NĐ-CP"),
    ("bo-tai-chinh-tong-cuc-thue", "population.citizen", 3, ["ho_ten", "so_dinh_danh", "dia_chi_thuong_tru"],
     "Đối soát mã số thuế cá nhân", "Luật Quản lý thuế 2019, Điều 30"),
    ("bo-lao-dong-tbxh", "population.citizen", 1, ["ho_ten", "ngay_sinh", "gioi_tinh"],
     "Chi trả trợ cấp xã hội", "Nghị định 20/2021/NĐ-CP"),
    ("bo-giao-duc-dao-tao", "population.citizen", 1, ["ho_ten", "ngay_sinh"],
     "Xét tuyển đại học", "Quy chế tuyển sinh 2025"),
    ("ubnd-tp-ha-noi", "telecom.subscriber", 2, ["msisdn", "carrier"],
     "Gửi tin nhắn cảnh báo thiên tai", "Luật Phòng, chống thiên tai 2013"),
]
_VERIFIER = ("ngan-hang-nha-nuoc", "population.citizen", 1, ["ho_ten", "ngay_sinh"],
             "Xác minh khách hàng (eKYC)", "Thông tư 16/2020/TT-NHNN")


@dataclass(frozen=True, slots=True)
class _Sub:
    agency: str
    sid: str
    version: int
    dataset: str
    fields: list[str]
    terms: dict[str, Any]
    chain: str


def _sub(spec: tuple[str, str, int, list[str], str, str]) -> _Sub:
    agency, dataset, version, fields, purpose, basis = spec
    sid = f"{agency}:{dataset}"
    return _Sub(agency, sid, version, dataset, fields, {"purpose": purpose, "legal_basis": basis, "agency_id": agency},
                f"data-{zlib.crc32(sid.encode()) % CHAINS}")


def personal_id(person: int) -> str:
    return f"0{person:011d}"


class _Generator:
    """LedgerFacts as the workers report them, reproducibly; counts each person's records as it goes."""

    def __init__(self, deliveries: int, people: int, seed: int) -> None:
        self.deliveries, self.people = deliveries, people
        self.frequent = people   # one more person, with a record in every delivery entry: the worst case to answer
        self.rnd = random.Random(seed)
        self.subs = [_sub(s) for s in _SUBSCRIPTIONS]
        self.verifier = _sub(_VERIFIER)
        self.delivered_to = array("I", bytes(4 * (people + 1)))   # person -> records delivered
        self.verified = array("I", bytes(4 * (people + 1)))       # person -> verification requests
        self.n = 0

    def _records(self, count: int, sub: _Sub, verification: bool) -> list[dict[str, Any]]:
        rnd, records = self.rnd, []
        for k in range(count):
            self.n += 1
            person = self.frequent if k == 0 and not verification else rnd.randrange(self.people)
            (self.verified if verification else self.delivered_to)[person] += 1
            records.append({
                "event_id": str(uuid.UUID(int=rnd.getrandbits(128), version=4)),
                "agency_event_id": None if verification else str(uuid.UUID(int=rnd.getrandbits(128), version=4)),
                "personal_id": personal_id(person), "source_system": "HTCSDLQG-DC", "source_version": "2025.1",
                "positions": {} if verification else {
                    f"gsp.raw.{sub.dataset}": f"{self.n % 8}:{self.n}", f"gsp.clean.{sub.dataset}": f"{self.n % 8}:{self.n}",
                    f"gsp.share.{sub.agency}": f"0:{self.n}"},
                "verdict": rnd.choice(("match", "match", "match", "no_match")) if verification else None})
        return records

    def facts(self) -> Iterator[tuple[_Sub, dict[str, Any]]]:
        """(subscription, LedgerFact), until ``deliveries`` records are delivered; a verification fact now and then."""
        rnd, left, k = self.rnd, self.deliveries, 0
        while left > 0:
            k += 1
            if k % 10 == 0:
                sub, verification, count = self.verifier, True, rnd.randint(1, 100)
            else:
                sub, verification = rnd.choice(self.subs), False
                count = min(left, MAX_RECORDS if rnd.random() < 0.7 else rnd.randint(1, MAX_RECORDS - 1))
                left -= count
            yield sub, {"kind": "verification" if verification else "delivery", "at": T0 + k * 1000,
                        "actor": f"worker-{k % 2}-{4711 + k % 2}", "channel": "http" if verification else "topic",
                        "agency": sub.agency, "subscription_id": sub.sid, "version": sub.version,
                        "dataset": sub.dataset, "fields": list(sub.fields),
                        "records": self._records(count, sub, verification)}


_plain = sa.MetaData()
_plain_entries = sa.Table(   # the baseline: the ledger's columns, without hash, link or index
    "plain_entries", _plain,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("chain", sa.String(64), nullable=False), sa.Column("at", sa.BigInteger, nullable=False),
    sa.Column("kind", sa.String(64), nullable=False), sa.Column("actor", sa.String(240), nullable=False),
    sa.Column("agency", sa.String(200)), sa.Column("subscription_id", sa.String(240)), sa.Column("version", sa.Integer),
    sa.Column("dataset", sa.String(128)), sa.Column("body", sa.Text, nullable=False), sa.Column("records", sa.Text),
    sa.Column("source", sa.String(64)),
)


def _canonical(body: Any) -> str:
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _percentile(sorted_values: list[float], p: float) -> float:
    """The nearest-rank percentile."""
    return sorted_values[max(1, math.ceil(len(sorted_values) * p / 100)) - 1]


def run(deliveries: int, *, people: int | None = None, queries: int = 200, per_append: int = 1, seed: int = 7,
        err: TextIO = sys.stderr) -> dict[str, Any]:
    people = people or max(10, deliveries // 5)
    workdir = Path(tempfile.mkdtemp(prefix="gsp-bench-ledger-"))
    ledger_engine = sa.create_engine(f"sqlite:///{workdir / 'ledger.db'}")
    plain_engine = sa.create_engine(f"sqlite:///{workdir / 'plain.db'}")

    def say(message: str) -> None:
        print(f"ledger bench: {message}", file=err, flush=True)

    try:
        ledger = Ledger(ledger_engine, bytes(range(32)), clock=time.time)
        _plain.create_all(plain_engine)
        gen = _Generator(deliveries, people, seed)
        say(f"filling a ledger with {deliveries:,} delivered records of {people:,} people in {workdir}")
        ledger_s = entering_s = plain_s = 0.0
        records = delivered = 0
        offsets = dict.fromkeys((f"data-{p}" for p in range(CHAINS)), -1)
        pending: dict[str, list[Entry]] = {chain: [] for chain in offsets}
        step = next_report = max(1, deliveries // 10)
        started = time.perf_counter()

        def enter(chain: str) -> None:
            nonlocal ledger_s, plain_s
            batch, pending[chain] = pending[chain], []
            t0 = time.perf_counter()
            ledger.append(chain, batch, source_offset=offsets[chain])
            t1 = time.perf_counter()
            with plain_engine.begin() as conn:
                conn.execute(sa.insert(_plain_entries), [{
                    "chain": chain, "at": e.at, "kind": e.kind, "actor": e.actor, "agency": e.agency,
                    "subscription_id": e.subscription_id, "version": e.version, "dataset": e.dataset,
                    "body": _canonical(e.body), "records": None if e.records is None else _canonical(e.records),
                    "source": e.source} for e in batch])
            ledger_s += t1 - t0
            plain_s += time.perf_counter() - t1

        for sub, fact in gen.facts():
            offsets[sub.chain] += 1
            t0 = time.perf_counter()
            pending[sub.chain].append(fact_entry(ledger, fact, sub.terms, source=f"{sub.chain[5:]}:{offsets[sub.chain]}"))
            entering_s += time.perf_counter() - t0
            if len(pending[sub.chain]) >= per_append:
                enter(sub.chain)
            records += len(fact["records"])
            delivered += len(fact["records"]) if fact["kind"] == "delivery" else 0
            if delivered >= next_report or delivered == deliveries:   # every tenth of the way, and at the end
                for chain in pending:
                    if pending[chain]:
                        enter(chain)
                t0 = time.perf_counter()
                ledger.append(CONTROL, [governance_entry({  # a governance change, then the heads, as the writer does
                    "event_id": str(uuid.UUID(int=gen.rnd.getrandbits(128), version=4)), "at": fact["at"],
                    "actor": "VN/GOV/bo-y-te", "action": "subscription.approve",
                    "subject": f"subscription/{sub.sid}", "details": {"version": str(sub.version)}})])
                ledger.checkpoint()
                ledger_s += time.perf_counter() - t0
                say(f"{delivered:,} / {deliveries:,} delivered records ({100 * delivered // deliveries}%), "
                    f"{records / (ledger_s + entering_s):,.0f} records/s into the ledger, "
                    f"{records / plain_s:,.0f} into a plain table; {time.perf_counter() - started:.0f} s")
                while next_report <= delivered:
                    next_report += step
        ledger_s += entering_s

        with ledger_engine.connect() as conn:   # counted back from the database, not from the generator
            counted = {r.kind: (r.entries, int(r.records or 0)) for r in conn.execute(sa.text(
                "SELECT kind, COUNT(*) AS entries, SUM(json_array_length(records)) AS records "
                "FROM ledger_entries GROUP BY kind"))}

        say(f"who saw my data, for {queries} people drawn at random")
        latencies, agree, found_entries, found_records = [], True, 0, 0
        rnd = random.Random(seed + 1)
        for _ in range(queries):
            person = rnd.randrange(people)
            t0 = time.perf_counter()
            answer = who_saw(ledger, personal_id(person))
            latencies.append(time.perf_counter() - t0)
            got = sum(d["records"] for d in answer["deliveries"])
            asked = sum(v["records"] for v in answer["verifications"])
            agree = agree and got == gen.delivered_to[person] and asked == gen.verified[person]
            found_entries += len(answer["deliveries"]) + len(answer["verifications"])
            found_records += got
        latencies.sort()
        t0 = time.perf_counter()
        answer = who_saw(ledger, personal_id(gen.frequent))
        frequent_s = time.perf_counter() - t0
        frequent_found = sum(d["records"] for d in answer["deliveries"])

        say("verify: every chain and head")
        t0 = time.perf_counter()
        report = ledger.verify()
        verify_s = time.perf_counter() - t0
        checked = sum(report.chains.values())
        ledger_bytes = _size(workdir / "ledger.db")
        plain_bytes = _size(workdir / "plain.db")
    finally:
        ledger_engine.dispose()
        plain_engine.dispose()
        shutil.rmtree(workdir, ignore_errors=True)

    rate, base_rate = records / ledger_s, records / plain_s
    p50, p99, worst = (_percentile(latencies, 50), _percentile(latencies, 99), latencies[-1]) if latencies else (0.0,) * 3
    return {
        "deliveries": deliveries,
        "people": people,
        "ledger": {"delivery_entries": counted.get("delivery", (0, 0))[0],
                   "delivered_records": counted.get("delivery", (0, 0))[1],
                   "verification_entries": counted.get("verification", (0, 0))[0],
                   "verification_records": counted.get("verification", (0, 0))[1],
                   "other_entries": sum(n for kind, (n, _) in counted.items() if kind not in ("delivery", "verification")),
                   "chains": report.chains, "heads": report.heads},
        "append": {"records": records, "facts_per_append": per_append, "elapsed_s": round(ledger_s, 3), "records_per_s": round(rate, 1),
                   "us_per_record": round(1e6 / rate, 2), "fact_entry_share": round(entering_s / ledger_s, 3),
                   "baseline": "the same rows into a plain SQLite table: no hash, link or index; as many per transaction",
                   "baseline_elapsed_s": round(plain_s, 3), "baseline_records_per_s": round(base_rate, 1),
                   "ratio": round(rate / base_rate, 3)},
        "who_saw_frequent": {"delivery_entries": gen.delivered_to[gen.frequent], "ms": round(frequent_s * 1000, 2),
                             "ratio_to_target": round(frequent_s / TARGET_S, 4), "records_found": frequent_found,
                             "complete": frequent_found == gen.delivered_to[gen.frequent]},
        "who_saw": {"queries": len(latencies), "p50_ms": round(p50 * 1000, 2), "p99_ms": round(p99 * 1000, 2),
                    "max_ms": round(worst * 1000, 2), "target_ms": TARGET_S * 1000,
                    "ratio_to_target": round(worst / TARGET_S, 4),
                    "groups_per_answer": round(found_entries / max(1, len(latencies)), 2),
                    "records_per_answer": round(found_records / max(1, len(latencies)), 2),
                    "answers_agree": agree},
        "verify": {"ok": report.ok, "findings": len(report.findings), "entries": checked, "elapsed_s": round(verify_s, 3),
                   "records_per_s": round(records / verify_s, 1) if verify_s else 0.0},
        "database": {"bytes": ledger_bytes, "bytes_per_record": round(ledger_bytes / max(1, records), 1),
                     "baseline_bytes": plain_bytes},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "sqlite": sqlite3.sqlite_version},
    }


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))   # with -journal / -wal, if any


def render(r: dict[str, Any]) -> str:
    a, w, v, d, led = r["append"], r["who_saw"], r["verify"], r["database"], r["ledger"]
    mb = 1024 * 1024
    rows = [
        ("append: fact_entry + Ledger.append", f"{a['records_per_s']:,.0f} records/s", "plain table, same rows",
         f"{a['baseline_records_per_s']:,.0f} records/s", f"{a['ratio']:.2f}"),
        (f"who saw my data, p50 ({w['queries']} people)", f"{w['p50_ms']:,.1f} ms", "target", "1,000 ms",
         f"{w['p50_ms'] / w['target_ms']:.4f}"),
        ("who saw my data, p99", f"{w['p99_ms']:,.1f} ms", "target", "1,000 ms", f"{w['p99_ms'] / w['target_ms']:.4f}"),
        ("who saw my data, max", f"{w['max_ms']:,.1f} ms", "target", "1,000 ms", f"{w['ratio_to_target']:.4f}"),
        (f"who saw, 1 person in {r['who_saw_frequent']['delivery_entries']:,} entries", f"{r['who_saw_frequent']['ms']:,.1f} ms",
         "target", "1,000 ms", f"{r['who_saw_frequent']['ratio_to_target']:.4f}"),
        ("verify, whole ledger", f"{v['elapsed_s']:,.1f} s", "", f"{v['records_per_s']:,.0f} records/s", ""),
        ("database size", f"{d['bytes'] / mb:,.0f} MB", "plain table", f"{d['baseline_bytes'] / mb:,.0f} MB",
         f"{d['bytes'] / max(1, d['baseline_bytes']):.2f}"),
    ]
    m = r["machine"]
    lines = [f"GSP ledger bench: {led['delivered_records']:,} delivered records in {led['delivery_entries']:,} delivery "
             f"entries, {led['verification_records']:,} verification requests in {led['verification_entries']:,} entries, "
             f"{led['other_entries']} governance changes; {r['people']:,} people; {led['heads']} heads",
             f"{m['cpus']} CPUs, Python {m['python']}, SQLite {m['sqlite']}", "",
             f"  {'figure':<40} {'value':>17}   {'baseline (same run)':<24} {'value':>17} {'ratio':>7}"]
    lines += [f"  {a_:<40} {b:>17}   {c:<24} {d_:>17} {e:>7}" for a_, b, c, d_, e in rows]
    lines += ["",
              f"  append: {a['records']:,} records in {a['elapsed_s']:,.1f} s ({a['us_per_record']} µs/record, "
              f"{100 * a['fact_entry_share']:.0f}% of it in fact_entry), {a['facts_per_append']} fact(s) per append; "
              f"baseline {a['baseline_elapsed_s']:,.1f} s",
              f"  who saw my data: {w['groups_per_answer']} groups, {w['records_per_answer']} delivered records per answer; "
              f"answers {'agree' if w['answers_agree'] else 'DO NOT agree'} with what was generated",
              f"  the frequent person's answer: {r['who_saw_frequent']['records_found']:,} of their "
              f"{r['who_saw_frequent']['delivery_entries']:,} delivered records"
              f"{'' if r['who_saw_frequent']['complete'] else ' (INCOMPLETE: Ledger.person reads at most 1,000 entries)'}",
              f"  verify: {v['entries']:,} entries, {'ok' if v['ok'] else str(v['findings']) + ' FINDINGS'}; "
              f"database {d['bytes_per_record']:,.0f} bytes per record"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gsp.tools.bench.ledger", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deliveries", type=int, default=1_000_000, help="delivered records to fill in (1,000,000)")
    parser.add_argument("--people", type=int, default=None, help="distinct people (default: deliveries / 5)")
    parser.add_argument("--queries", type=int, default=200, help="'who saw my data' questions timed (200)")
    parser.add_argument("--per-append", type=int, default=1, help="facts of a chain per Ledger.append (1)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = parser.parse_args(argv)
    if min(args.deliveries, args.queries, args.per_append, args.people or 1) < 1:
        parser.error("--deliveries, --queries, --per-append and --people must be at least 1")
    result = run(args.deliveries, people=args.people, queries=args.queries, per_append=args.per_append, seed=args.seed)
    print(json.dumps(result, ensure_ascii=False) if args.json else render(result), end="\n" if args.json else "")
    return 0 if result["verify"]["ok"] and result["who_saw"]["answers_agree"] else 1


if __name__ == "__main__":
    sys.exit(main())

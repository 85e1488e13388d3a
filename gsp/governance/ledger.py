"""The audit ledger: every share, verification answer and governance change, chained so an edit shows.

What one entry holds: who (a worker, or the identity that acted), what (its ``kind``: ``delivery``,
``verification``, ``subscription.approve``, ``credential.issue``, ``quarantine.release``,
``consent.withdraw`` ...), when, to which agency under which subscription version, on which dataset;
a ``body`` (for a delivery or a verification: the approved fields, the purpose and legal basis, the
channel; for a governance change: its subject and details) and ``records``, one row per record
delivered or request answered (the agency's event id, the platform's event id, a keyed reference to
the person, the record's source system and version and its positions on the way, or the verdict
given). An entry names people only by ``person_ref`` (HMAC-SHA-256 of the personal id with the
ledger key), so the ledger lists no personal id; "who saw my data" computes the same reference from
the id asked about. Two derived indexes, a person's entries (with how many of their records each
holds) and an event id's entries, are written with the entries and checked against them by `verify`.

Chains. Entries are appended to *chains*, each written by one writer at a time: ``data-<p>`` for
partition ``p`` of ``gsp.ledger`` (what the stream workers report, entered by the control plane's
ledger writer that holds that partition), ``control`` for governance changes, ``backfill`` for
back-filled deliveries. An entry carries its chain, its sequence number (1, 2, ... without gaps),
the hash of the previous entry of its chain and its own hash, SHA-256 over its whole content and
that previous hash. Appending compares and sets the chain's tip (`ledger_chains`), so two writers
racing on one chain cannot fork it: the loser retries on the new tip.

Heads. At intervals (`checkpoint`) the control plane stores each chain's tip as a *head*: (chain,
seq, hash, time) authenticated with an HMAC under the ledger key, which lives outside the database
(GSP_HOME/ledger.key, or GSP_LEDGER_KEY), and publishes it on ``gsp.ledger.heads`` (the witness: a
Kafka log outside the database, never compacted; `gsp audit verify --witness BOOTSTRAP` reads it). `verify` recomputes every hash and link, and checks every
head against the entry it names. It finds an entry changed (its hash), removed (a gap in the
sequence, and the next entry's link), inserted (a duplicate or out-of-place number, and the link),
reordered (links), the tail cut back past a head (the head names a missing entry), a head forged
without the key, and an index row removed, added or changed. What the heads do not protect against:
someone holding both the database and the ledger key can rewrite a chain and its heads (the
witness then still holds the old heads, unless they also control the broker); without the witness,
deleting heads needs no key, so a tail after the newest remaining head can be cut unseen (verify
warns of entries no head covers, which after a clean stop should be none), and with it, whatever
was written after the last witnessed head; an emptied ledger and an empty witness pass; and an
entry never written (a sink outside the platform) is not in the ledger at all.

Retention (GSP_AUDIT_RETENTION_DAYS): `prune` removes a chain's entries older than the cut-off up to
its newest head at or below them; that head becomes the chain's *anchor*, and `verify` starts the
chain from it (the first kept entry must link to the anchor's hash).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from gsp.errors import UserError

__all__ = ["CONTROL", "GENESIS", "Entry", "Finding", "Ledger", "Report", "governance_entry", "ledger_key"]

GENESIS = "0" * 64  # the previous hash of a chain's first entry
CONTROL = "control"  # the chain of governance changes and desk actions
KEY_FILE = "ledger.key"

_metadata = sa.MetaData()
_entries = sa.Table(
    "ledger_entries", _metadata,
    sa.Column("chain", sa.String(64), primary_key=True),
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("at", sa.BigInteger, nullable=False),              # ms since the epoch
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("actor", sa.String(240), nullable=False),
    sa.Column("agency", sa.String(200)),                         # the receiving agency (slug), for shares
    sa.Column("subscription_id", sa.String(240)),
    sa.Column("version", sa.Integer),
    sa.Column("dataset", sa.String(128)),
    sa.Column("body", sa.Text, nullable=False),                  # canonical JSON: the terms, or a change's details
    sa.Column("records", sa.Text),                               # canonical JSON: one row per record shared or asked
    sa.Column("source", sa.String(64)),                          # the gsp.ledger position reported, "p:o"
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)
_chains = sa.Table(
    "ledger_chains", _metadata,
    sa.Column("chain", sa.String(64), primary_key=True),
    sa.Column("seq", sa.BigInteger, nullable=False),             # the tip: 0 for an empty chain
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("source_offset", sa.BigInteger),                   # data chains: last gsp.ledger offset entered
    sa.Column("anchor_seq", sa.BigInteger, nullable=False, default=0),   # retention: entries up to here are gone
    sa.Column("anchor_hash", sa.String(64), nullable=False, default=GENESIS),
)
_heads = sa.Table(
    "ledger_heads", _metadata,
    sa.Column("chain", sa.String(64), primary_key=True),
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("at", sa.BigInteger, nullable=False),
    sa.Column("mac", sa.String(64), nullable=False),
)
# Derived indexes (checked by `verify` against the entries): a person's entries, with how many of their
# records each holds and the verdicts given about them; an event id's entries. Clustered by their key
# (WITHOUT ROWID on SQLite): one B-tree each, which is most of what appending a record costs.
_people = sa.Table(
    "ledger_people", _metadata,
    sa.Column("person_ref", sa.String(32), primary_key=True),
    sa.Column("chain", sa.String(64), primary_key=True),
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("records", sa.Integer, nullable=False),
    sa.Column("verdicts", sa.String(200)),
    sqlite_with_rowid=False,
)
_events = sa.Table(
    "ledger_events", _metadata,
    sa.Column("event_id", sa.String(64), primary_key=True),
    sa.Column("chain", sa.String(64), primary_key=True),
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sqlite_with_rowid=False,
)


def ledger_key(home: Path, configured: str | None = None) -> bytes:
    """The ledger key: GSP_LEDGER_KEY (hex) when set, else GSP_HOME/ledger.key, made (0600) on first use.

    Every control plane writing one database must use the same key (set GSP_LEDGER_KEY on each).
    Lost, the heads cannot be checked and people cannot be looked up: keep it with the backups.
    """
    if configured:
        try:
            return bytes.fromhex(configured)
        except ValueError:
            raise UserError("GSP_LEDGER_KEY must be hex (for example: python -c 'import secrets; "
                            "print(secrets.token_hex(32))')") from None
    path = home / KEY_FILE
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        pass
    home.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it meanwhile
        return bytes.fromhex(path.read_text().strip())
    key = secrets.token_bytes(32)
    with os.fdopen(fd, "w") as out:
        out.write(key.hex() + "\n")
    return key


def _canonical(content: Any) -> str:
    return json.dumps(content, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


@dataclass(slots=True)
class Entry:
    """One entry to append. ``records``: one row per record delivered or verification answered, each naming
    its person by ``person_ref`` (never the id) and found by its ``event_id`` and ``agency_event_id``; an entry
    about one person without records (a consent) names them by ``person_ref`` in its ``body``."""

    kind: str
    actor: str
    body: dict[str, Any]
    at: int | None = None
    agency: str | None = None
    subscription_id: str | None = None
    version: int | None = None
    dataset: str | None = None
    records: list[dict[str, Any]] | None = None
    source: str | None = None


@dataclass(frozen=True, slots=True)
class Finding:
    chain: str
    seq: int
    problem: str

    def __str__(self) -> str:
        return f"{self.chain} #{self.seq}: {self.problem}"


@dataclass(slots=True)
class Report:
    chains: dict[str, int] = field(default_factory=dict)   # chain -> entries checked
    heads: int = 0
    findings: list[Finding] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)     # not tampering, but not covered either (a tail without a head)
    witnessed: int | None = None                          # heads read from the witness (None: not asked)

    @property
    def ok(self) -> bool:
        return not self.findings


def index_rows(chain: str, seq: int, body: str, records: str | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The person and event index rows an entry implies, from its stored content alone (append and verify agree)."""
    people: dict[str, dict[str, Any]] = {}
    events: dict[str, None] = {}
    for record in json.loads(records) if records else ():
        ref = record.get("person_ref")
        if ref:
            row = people.setdefault(ref, {"person_ref": ref, "chain": chain, "seq": seq, "records": 0, "verdicts": set()})
            row["records"] += 1
            if record.get("verdict"):
                row["verdicts"].add(record["verdict"])
        for key in ("event_id", "agency_event_id"):
            if record.get(key):
                events[record[key]] = None
    ref = json.loads(body).get("person_ref") if '"person_ref"' in body else None
    if isinstance(ref, str) and ref not in people:
        people[ref] = {"person_ref": ref, "chain": chain, "seq": seq, "records": 0, "verdicts": set()}
    for row in people.values():
        row["verdicts"] = ",".join(sorted(row["verdicts"])) or None
    return list(people.values()), [{"event_id": e, "chain": chain, "seq": seq} for e in events]


def _digest(rows: Iterable[tuple[Any, ...]]) -> tuple[int, int]:
    """(count, order-free digest) of index rows: the sum of their SHA-256s mod 2^128."""
    count, total = 0, 0
    for row in rows:
        count += 1
        total += int.from_bytes(hashlib.sha256("\x00".join(map(str, row)).encode()).digest()[:16], "big")
    return count, total % (1 << 128)


def _fold(implied: dict[str, list[tuple[Any, ...]]], expected: dict[str, tuple[int, int]]) -> None:
    """Add the implied index rows gathered so far to the expected digests, and forget them."""
    for name, rows in implied.items():
        count, total = _digest(rows)
        expected[name] = (expected[name][0] + count, (expected[name][1] + total) % (1 << 128))
        rows.clear()


def _readable(conn: sa.Connection) -> list[Any]:
    """The entries' columns as `verify` reads them: on SQLite, text as bytes, so a value that is not UTF-8 (written
    behind the ledger's back) is read, and found changed, instead of failing the read."""
    if conn.dialect.name != "sqlite":
        return list(_entries.c)
    return [sa.cast(c, sa.LargeBinary).label(c.name) if isinstance(c.type, sa.String) else c for c in _entries.c]


def _last_head(conn: sa.Connection, chain: str) -> int:
    """The newest stored head of a chain (0: none)."""
    return int(conn.execute(sa.select(sa.func.max(_heads.c.seq)).where(_heads.c.chain == chain)).scalar() or 0)


def entry_hash(row: dict[str, Any]) -> str:
    """SHA-256 over the entry's content and the previous entry's hash (the link)."""
    content = {name: row[name] for name in ("chain", "seq", "at", "kind", "actor", "agency", "subscription_id",
                                            "version", "dataset", "body", "records", "source")}
    return hashlib.sha256((row["prev_hash"] + "\n" + _canonical(content)).encode()).hexdigest()


def governance_entry(event: dict[str, Any]) -> Entry:
    """An AuditEvent (a subscription decision, a credential change, a desk action ...) as a ledger entry."""
    subject = event["subject"]
    sid = subject.split("/", 1)[1] if subject.startswith("subscription/") else None
    details = dict(event.get("details") or {})
    version = int(details["version"]) if sid and str(details.get("version", "")).isdigit() else None
    return Entry(kind=event["action"], actor=event["actor"], at=int(event["at"]), subscription_id=sid,
                 version=version, body={"subject": subject, "details": details, "event_id": event["event_id"]})


class ChainMoved(Exception):
    """Another writer appended to the chain meanwhile: reload its tip and try again."""


class Ledger:
    def __init__(self, engine: sa.Engine, key: bytes, *, clock: Callable[[], float] = time.time) -> None:
        if len(key) < 16:
            raise UserError("the ledger key must be at least 16 bytes")
        self._engine = engine
        self._key = key
        self._clock = clock
        # Told of the heads each checkpoint stored, once committed: the witness publishes them outside the database.
        self.on_heads: Callable[[list[dict[str, Any]]], None] = lambda heads: None
        _metadata.create_all(engine)

    @property
    def engine(self) -> sa.Engine:
        return self._engine

    def person_ref(self, personal_id: str) -> str:
        """How the ledger names a person: a keyed hash of the personal id, never the id itself."""
        return hmac.new(self._key, b"person\x00" + personal_id.encode(), hashlib.sha256).hexdigest()[:32]

    def _now(self) -> int:
        return int(self._clock() * 1000)

    # writing

    def append(self, chain: str, entries: Sequence[Entry], *, source_offset: int | None = None,
               conn: sa.Connection | None = None, attempts: int = 5) -> int:
        """Append ``entries`` to ``chain`` in one transaction (``conn``'s, when given: they commit with the
        caller's change, or not at all); the number of the last one.

        ``source_offset``: for a data chain, the gsp.ledger offset these entries bring it up to.
        """
        if conn is not None:
            return self._append(conn, chain, entries, source_offset)
        for attempt in range(attempts):
            try:
                with self._engine.begin() as conn:
                    return self._append(conn, chain, entries, source_offset)
            except (ChainMoved, sa.exc.IntegrityError):
                if attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")

    def tip(self, chain: str) -> tuple[int, str, int | None]:
        """(seq, hash, gsp.ledger offset entered) of a chain's last entry; (0, GENESIS, None) when empty."""
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(_chains).where(_chains.c.chain == chain)).first()
        return (0, GENESIS, None) if row is None else (row.seq, row.hash, row.source_offset)

    def _append(self, conn: sa.Connection, chain: str, entries: Sequence[Entry], source_offset: int | None) -> int:
        tip = conn.execute(sa.select(_chains).where(_chains.c.chain == chain).with_for_update()).first()
        if tip is None:
            conn.execute(sa.insert(_chains).values(chain=chain, seq=0, hash=GENESIS, source_offset=None,
                                                   anchor_seq=0, anchor_hash=GENESIS))
            seq, prev = 0, GENESIS
        else:
            seq, prev = tip.seq, tip.hash
        start = seq
        rows: list[dict[str, Any]] = []
        people: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        now = self._now()
        for e in entries:
            seq += 1
            row: dict[str, Any] = {"chain": chain, "seq": seq, "at": e.at if e.at is not None else now, "kind": e.kind,
                   "actor": e.actor, "agency": e.agency, "subscription_id": e.subscription_id, "version": e.version,
                   "dataset": e.dataset, "body": _canonical(e.body),
                   "records": None if e.records is None else _canonical(e.records), "source": e.source,
                   "prev_hash": prev}
            row["hash"] = prev = entry_hash(row)
            rows.append(row)
            implied_people, implied_events = index_rows(chain, seq, row["body"], row["records"])
            people.extend(implied_people)
            events.extend(implied_events)
        if not rows and source_offset is None:
            return seq
        moved = conn.execute(sa.update(_chains).where(_chains.c.chain == chain, _chains.c.seq == start).values(
            seq=seq, hash=prev, **({} if source_offset is None else {"source_offset": source_offset}))).rowcount
        if moved != 1:
            raise ChainMoved(chain)
        if rows:
            conn.execute(sa.insert(_entries), rows)
        if people:
            conn.execute(sa.insert(_people), people)
        if events:
            conn.execute(sa.insert(_events), events)
        return seq

    def checkpoint(self) -> int:
        """Store the tip of every chain that moved since its last head, authenticated; how many heads. Each is
        then handed to ``on_heads`` (the witness outside the database, `gsp.ledger.heads`)."""
        now = self._now()
        stored = 0
        heads: list[dict[str, Any]] = []
        with self._engine.begin() as conn:
            last = {r.chain: r.seq for r in conn.execute(
                sa.select(_heads.c.chain, sa.func.max(_heads.c.seq).label("seq")).group_by(_heads.c.chain))}
            for tip in conn.execute(sa.select(_chains)).all():
                if tip.seq == 0 or last.get(tip.chain) == tip.seq:
                    continue
                head = {"chain": tip.chain, "seq": tip.seq, "hash": tip.hash, "at": now,
                        "mac": self._mac(tip.chain, tip.seq, tip.hash, now)}
                conn.execute(sa.insert(_heads).values(**head))
                heads.append(head)
                stored += 1
        if heads:
            self.on_heads(heads)
        return stored

    def _mac(self, chain: str, seq: int, digest: str, at: int) -> str:
        return hmac.new(self._key, f"head\x00{chain}\x00{seq}\x00{digest}\x00{at}".encode(), hashlib.sha256).hexdigest()

    def prune(self, before_ms: int) -> int:
        """Remove entries older than ``before_ms``, per chain up to its newest head among them (the new anchor)."""
        removed = 0
        with self._engine.begin() as conn:
            for tip in conn.execute(sa.select(_chains)).all():
                oldest_kept = conn.execute(sa.select(sa.func.min(_entries.c.seq)).where(
                    _entries.c.chain == tip.chain, _entries.c.at >= before_ms)).scalar()
                limit = tip.seq if oldest_kept is None else oldest_kept - 1
                head = conn.execute(sa.select(_heads).where(_heads.c.chain == tip.chain, _heads.c.seq <= limit,
                                                            _heads.c.seq > tip.anchor_seq)
                                    .order_by(_heads.c.seq.desc()).limit(1)).first()
                if head is None:
                    continue
                for table in (_entries, _people, _events):
                    result = conn.execute(sa.delete(table).where(table.c.chain == tip.chain, table.c.seq <= head.seq))
                    if table is _entries:
                        removed += result.rowcount
                conn.execute(sa.update(_chains).where(_chains.c.chain == tip.chain).values(
                    anchor_seq=head.seq, anchor_hash=head.hash))
                conn.execute(sa.delete(_heads).where(_heads.c.chain == tip.chain, _heads.c.seq < head.seq))
        return removed

    # checking

    def verify(self, *, progress: Callable[[str, int], None] = lambda chain, n: None,
               witnessed: Iterable[dict[str, Any]] | None = None) -> Report:
        """Recompute every chain: hashes, links, numbering, and every head against its entry; with ``witnessed``
        (the heads published outside the database, `gsp.ledger.heads`), those too: a head deleted from the
        database with the tail after it still shows there."""
        report = Report()
        witness = list(witnessed or [])
        implied: dict[str, list[tuple[Any, ...]]] = {"people": [], "events": []}
        expected = {"people": (0, 0), "events": (0, 0)}
        with self._engine.connect() as conn:
            chains = {r.chain: r for r in conn.execute(sa.select(_chains))}
            names = sorted(set(chains) | {r.chain for r in conn.execute(sa.select(_entries.c.chain).distinct())}
                           | {r.chain for r in conn.execute(sa.select(_heads.c.chain).distinct())})  # a chain removed whole
            for chain in names:
                tip = chains.get(chain)
                anchor_seq, anchor_hash = (tip.anchor_seq, tip.anchor_hash) if tip is not None else (0, GENESIS)
                hashes = self._verify_chain(conn, chain, anchor_seq, anchor_hash, report, progress, implied, expected)
                if tip is None:
                    if hashes:
                        report.findings.append(Finding(chain, 0, "entries of a chain the ledger does not list"))
                elif tip.seq != (max(hashes) if hashes else anchor_seq) or (hashes and hashes[tip.seq] != tip.hash):
                    report.findings.append(Finding(chain, tip.seq, "the chain's tip does not match its last entry"))
                self._verify_heads(conn, chain, hashes, anchor_seq, anchor_hash, report)
                if witnessed is not None:
                    self._verify_witnessed([h for h in witness if h.get("chain") == chain], hashes, anchor_seq, report)
            if witnessed is not None:
                report.witnessed = len(witness)
                for head in witness:
                    if not isinstance(head.get("chain"), str):
                        report.findings.append(Finding("witness", 0, f"an unreadable witnessed head: {str(head)[:80]}"))
                    elif head["chain"] not in names:
                        report.findings.append(Finding(str(head.get("chain")), int(head.get("seq") or 0),
                                                       "the witness holds a head of a chain the ledger no longer has"))
            _fold(implied, expected)
            for name, table, columns in (("people", _people, ("person_ref", "chain", "seq", "records", "verdicts")),
                                         ("events", _events, ("event_id", "chain", "seq"))):
                query = sa.select(*(table.c[c] for c in columns))
                held = _digest(tuple(r) for r in conn.execution_options(stream_results=True, yield_per=20_000)
                               .execute(query))
                if held != expected[name]:
                    report.findings.append(Finding(f"ledger_{name}", 0, f"the {name} index does not match the entries "
                                                   f"({held[0]} rows, {expected[name][0]} implied): rows removed, added "
                                                   "or changed"))
        return report

    def _verify_chain(self, conn: sa.Connection, chain: str, anchor_seq: int, anchor_hash: str, report: Report,
                      progress: Callable[[str, int], None], implied: dict[str, list[tuple[Any, ...]]],
                      expected: dict[str, tuple[int, int]]) -> dict[int, str]:
        expected_seq, prev = anchor_seq + 1, anchor_hash
        hashes: dict[int, str] = {}
        checked = 0
        query = sa.select(*_readable(conn)).where(_entries.c.chain == chain).order_by(_entries.c.seq)
        for read in conn.execution_options(stream_results=True, yield_per=5000).execute(query).mappings():
            row: dict[str, Any] = {k: v.decode("utf-8", errors="replace") if isinstance(v, bytes) else v
                                   for k, v in read.items()}
            seq = row["seq"]
            if seq != expected_seq:
                problem = (f"entries {expected_seq}..{seq - 1} are missing" if seq > expected_seq
                           else f"out of place after #{expected_seq - 1}")
                report.findings.append(Finding(chain, seq, problem))
            if row["prev_hash"] != prev:
                report.findings.append(Finding(chain, seq, "does not link to the entry before it"))
            if entry_hash(row) != row["hash"]:
                report.findings.append(Finding(chain, seq, "its content does not match its hash (changed)"))
            hashes[seq] = row["hash"]
            prev, expected_seq = row["hash"], seq + 1
            try:
                people, events = index_rows(chain, seq, row["body"], row["records"])
            except (ValueError, TypeError, AttributeError):
                report.findings.append(Finding(chain, seq, "its content is not the JSON the ledger writes (changed)"))
                people, events = [], []
            implied["people"].extend((p["person_ref"], chain, seq, p["records"], p["verdicts"]) for p in people)
            implied["events"].extend((e["event_id"], chain, seq) for e in events)
            if len(implied["events"]) > 100_000:
                _fold(implied, expected)
            checked += 1
            if checked % 50_000 == 0:
                progress(chain, checked)
        report.chains[chain] = checked
        return hashes

    def _verify_heads(self, conn: sa.Connection, chain: str, hashes: dict[int, str], anchor_seq: int,
                      anchor_hash: str, report: Report) -> None:
        anchored = anchor_seq == 0  # prune keeps the head its anchor was taken from
        for head in conn.execute(sa.select(_heads).where(_heads.c.chain == chain).order_by(_heads.c.seq)):
            report.heads += 1
            if not hmac.compare_digest(head.mac, self._mac(chain, head.seq, head.hash, head.at)):
                report.findings.append(Finding(chain, head.seq, "a head not made with the ledger key"))
            elif head.seq <= anchor_seq:
                anchored = anchored or (head.seq == anchor_seq and head.hash == anchor_hash)
            elif head.seq not in hashes:
                report.findings.append(Finding(chain, head.seq, "a head names an entry that is gone (tail cut)"))
            elif hashes[head.seq] != head.hash:
                report.findings.append(Finding(chain, head.seq, "the entry differs from the head stored for it"))
        if not anchored:
            report.findings.append(Finding(chain, anchor_seq, "the retention anchor is no head made with the ledger key"))
        covered = max((s for s in hashes if s <= _last_head(conn, chain)), default=anchor_seq)
        if hashes and max(hashes) > covered:
            report.warnings.append(f"{chain}: entries {covered + 1}..{max(hashes)} are not covered by a head yet "
                                   "(one is stored every GSP_LEDGER_HEAD_INTERVAL_S while the control plane runs, and "
                                   "on a clean stop); a cut there would not show")

    def _verify_witnessed(self, heads: list[dict[str, Any]], hashes: dict[int, str], anchor_seq: int,
                          report: Report) -> None:
        for head in heads:
            try:
                chain, seq, digest, at = str(head["chain"]), int(head["seq"]), str(head["hash"]), int(head["at"])
                genuine = hmac.compare_digest(str(head["mac"]), self._mac(chain, seq, digest, at))
            except (KeyError, TypeError, ValueError):
                report.findings.append(Finding("witness", 0, f"an unreadable witnessed head: {str(head)[:80]}"))
                continue
            if not genuine:
                report.findings.append(Finding(chain, seq, "the witness holds a head not made with the ledger key"))
            elif seq <= anchor_seq:
                continue  # removed by retention
            elif seq not in hashes:
                report.findings.append(Finding(chain, seq, "the witness saw this entry; the ledger no longer has it"))
            elif hashes[seq] != digest:
                report.findings.append(Finding(chain, seq, "the entry differs from the head the witness holds"))

    # reading

    def person(self, personal_id: str) -> list[dict[str, Any]]:
        """Every entry about one person, newest first: who received or asked what, when, under which terms, and
        how many of the person's records each entry holds (read from the index: no entry's records are parsed)."""
        ref = self.person_ref(personal_id)
        columns = [c for c in _entries.c if c.name != "records"]
        query = (sa.select(*columns, _people.c.records.label("mine"), _people.c.verdicts.label("verdicts"))
                 .join(_people, sa.and_(_people.c.chain == _entries.c.chain, _people.c.seq == _entries.c.seq))
                 .where(_people.c.person_ref == ref).order_by(_entries.c.at.desc()))
        with self._engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [_summary(dict(r)) for r in rows]

    def lineage(self, event_id: str) -> list[dict[str, Any]]:
        """The deliveries of one event id (the agency's or the platform's), each with the record's way."""
        query = (sa.select(_entries).join(_events, sa.and_(_events.c.chain == _entries.c.chain,
                                                            _events.c.seq == _entries.c.seq))
                 .where(_events.c.event_id == event_id).order_by(_entries.c.at))
        with self._engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        out = []
        for row in rows:
            body = json.loads(row["body"])
            for record in json.loads(row["records"] or "[]"):
                if event_id in (record.get("event_id"), record.get("agency_event_id")):
                    out.append({**_terms(dict(row), body), "record": record, "entry": f"{row['chain']}#{row['seq']}"})
        return out

    def entries(self, *, kind: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """The newest entries (of one kind), for operators."""
        query = sa.select(_entries).order_by(_entries.c.at.desc()).limit(limit)
        if kind is not None:
            query = query.where(_entries.c.kind == kind)
        with self._engine.connect() as conn:
            return [{**dict(r), "body": json.loads(r["body"]), "records": json.loads(r["records"] or "null")}
                    for r in conn.execute(query).mappings()]

    def delivered(self, subscription_id: str) -> int:
        """Records the ledger holds as delivered under one subscription (every version, every channel)."""
        query = sa.select(_entries.c.records).where(_entries.c.subscription_id == subscription_id,
                                                    _entries.c.kind == "delivery")
        with self._engine.connect() as conn:
            return sum(len(json.loads(records or "[]")) for records in conn.execute(query).scalars())

    def counts(self) -> dict[str, int]:
        """Entries held per chain (those retention removed not counted)."""
        with self._engine.connect() as conn:
            return {r.chain: r.seq - r.anchor_seq for r in conn.execute(sa.select(_chains))}


def _terms(row: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    return {"at": row["at"], "kind": row["kind"], "agency": row["agency"], "subscription_id": row["subscription_id"],
            "version": row["version"], "dataset": row["dataset"], "fields": body.get("fields"),
            "purpose": body.get("purpose"), "legal_basis": body.get("legal_basis"), "channel": body.get("channel"),
            "actor": row["actor"]}


def _summary(row: dict[str, Any]) -> dict[str, Any]:
    """An entry as the person it concerns may see it: the terms, and how many of their records (no other person's)."""
    summary = {**_terms(row, json.loads(row["body"])), "records": row["mine"]}
    if row["kind"] == "verification":
        summary["verdicts"] = (row["verdicts"] or "").split(",") if row["verdicts"] else []
    return summary

"""`gsp audit verify|person|entries`: the audit ledger (gsp.governance.ledger).

``verify`` reads the ledger's database itself (GSP_DATABASE_URL, else GSP_HOME's SQLite) with the
ledger key (GSP_LEDGER_KEY, else GSP_HOME/ledger.key), so an auditor can check a copy offline; the
other subcommands ask a running control plane with the caller's credential.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from gsp.cli._common import Commands, add_actions, add_command, print_json, print_table
from gsp.errors import UserError
from gsp.http.client import ApiClient
from schemas.settings import Settings

__all__ = ["register", "run"]


def register(commands: Commands) -> None:
    audit = add_command(
        commands, "audit", summary="the audit ledger: check it, ask who received a person's data",
        about="""\
            Every delivery to an agency, every verification answer, subscription decision, desk action and
            credential change is an entry of a hash-chained ledger in the control plane's database.""",
        example=["gsp audit verify", "gsp audit person 001085012345", "gsp audit entries --kind delivery"])
    actions = add_actions(audit)
    verify = add_command(
        actions, "verify", summary="recompute every chain and head: exit 1 if an entry was changed, removed, "
        "inserted or reordered",
        about="""\
            Reads the database of GSP_DATABASE_URL (default: GSP_HOME's SQLite) directly, so it can check a
            copy; needs the ledger key (GSP_LEDGER_KEY, else GSP_HOME/ledger.key) to check the heads.""",
        example=["gsp audit verify", "GSP_DATABASE_URL=sqlite:///copy.db gsp audit verify --json"])
    verify.add_argument("--witness", metavar="BOOTSTRAP",
                        help="also check the heads published on gsp.ledger.heads at this Kafka bootstrap (host:port): "
                             "a head deleted from the database, with the entries after it, still shows there")
    verify.add_argument("--json", action="store_true", help="print the report as one JSON object")
    person = add_command(
        actions, "person", summary="which agencies received a person's data, and who asked to verify them",
        about="""\
            Needs the portal or admin role. Answered from the ledger's person index: agency, subscription,
            fields, purpose, legal basis, first and last time.""",
        example=["gsp audit person 001085012345", "gsp audit person 001085012345 --json"])
    person.add_argument("personal_id", help="12-digit personal id (or a 9-digit CMND)")
    person.add_argument("--json", action="store_true", help="print the answer as one JSON object")
    entries = add_command(actions, "entries", summary="the newest entries (admin)",
                          example=["gsp audit entries --kind subscription.approve --limit 10"])
    entries.add_argument("--kind", help="only entries of this kind: delivery, verification, subscription.approve, ...")
    entries.add_argument("--limit", type=int, default=20, help="how many, up to 1000")
    entries.add_argument("--json", action="store_true", help="print the entries as one JSON array")
    audit.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    return {"verify": run_verify, "person": run_person, "entries": run_entries}[args.action](args, settings)


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def run_verify(args: argparse.Namespace, settings: Settings) -> int:
    import sqlalchemy as sa

    from gsp.governance.ledger import Ledger, ledger_key
    from gsp.runtime.database import control_engine

    if not settings.ledger_key and not (settings.home / "ledger.key").exists():
        raise UserError(f"no ledger key: set GSP_LEDGER_KEY or GSP_HOME (now {settings.home}) to where gsp serve ran")
    url = sa.engine.make_url(settings.resolved_database_url)
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
        raise UserError(f"no ledger database at {url.database}: set GSP_DATABASE_URL or GSP_HOME")
    engine = control_engine(url)
    try:
        ledger = Ledger(engine, ledger_key(settings.home, settings.ledger_key))
        witnessed = _witnessed(args.witness) if args.witness else None
        report = ledger.verify(progress=lambda chain, n: print(f"  {chain}: {n} entries checked", file=sys.stderr),
                               witnessed=witnessed)
    except sa.exc.DBAPIError as exc:
        raise UserError(f"ledger database unreachable: {str(exc.orig).splitlines()[0]}") from None
    finally:
        engine.dispose()
    if args.json:
        print_json({"ok": report.ok, "chains": report.chains, "heads": report.heads,
                    "findings": [{"chain": f.chain, "seq": f.seq, "problem": f.problem} for f in report.findings],
                    "warnings": report.warnings, **({} if report.witnessed is None else {"witnessed": report.witnessed})})
    else:
        for chain, n in sorted(report.chains.items()):
            print(f"{chain}: {n} entries")
        print(f"{report.heads} heads checked" + ("" if report.witnessed is None
                                                  else f", {report.witnessed} witnessed heads on gsp.ledger.heads"))
        for warning in report.warnings:
            print(f"warning: {warning}")
        for finding in report.findings:
            print(f"TAMPERED {finding}")
        print("ok: every entry and head verified" if report.ok else f"FAILED: {len(report.findings)} finding(s)")
    return 0 if report.ok else 1


def _witnessed(bootstrap: str) -> list[dict[str, object]]:
    from kafka.errors import KafkaError

    from gsp.governance.ledger_writer import witnessed_heads

    try:
        return witnessed_heads(bootstrap)
    except KafkaError as exc:
        raise UserError(f"the witness at {bootstrap} could not be read: {exc}") from None


def run_person(args: argparse.Namespace, settings: Settings) -> int:
    answer = ApiClient.for_settings(settings).post("/api/audit/person", {"personal_id": args.personal_id})
    if args.json:
        print_json(answer)
        return 0
    print_table(("received by", "subscription", "version", "fields", "purpose", "legal basis", "channel", "records",
                 "first", "last"),
                [(d["agency"], d["subscription_id"], d["version"], ",".join(d["fields"] or []), d["purpose"],
                  d["legal_basis"], d["channel"], d["records"], _when(d["first_at"]), _when(d["last_at"]))
                 for d in answer["deliveries"]])
    if answer["verifications"]:
        print()
        print_table(("verified by", "subscription", "fields compared", "purpose", "channel", "requests", "verdicts",
                     "first", "last"),
                    [(v["agency"], v["subscription_id"], ",".join(v["fields"] or []), v["purpose"], v["channel"],
                      v["records"], ",".join(v.get("verdicts", [])), _when(v["first_at"]), _when(v["last_at"]))
                     for v in answer["verifications"]])
    return 0


def run_entries(args: argparse.Namespace, settings: Settings) -> int:
    query = f"?limit={args.limit}" + (f"&kind={args.kind}" if args.kind else "")
    entries = ApiClient.for_settings(settings).get(f"/api/audit/entries{query}")
    if args.json:
        print_json(entries)
        return 0
    print_table(("chain", "seq", "at", "kind", "actor", "agency", "subscription", "hash"),
                [(e["chain"], e["seq"], _when(e["at"]), e["kind"], e["actor"], e["agency"], e["subscription_id"],
                  e["hash"][:16]) for e in entries])
    return 0

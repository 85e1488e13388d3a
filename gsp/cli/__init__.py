"""The `gsp` command. User mistakes print one line and exit non-zero; no traceback."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, NoReturn

from gsp.errors import UserError
from gsp.http.client import ApiClient
from schemas.settings import Settings, SettingsError

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="gsp", description="Event-driven data integration and sharing platform")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    demo = commands.add_parser("demo", help="run a synthetic population and telecom registry through the platform")
    demo.add_argument("--records", type=int, default=10_000, help="citizens, and as many telecom subscribers (default 10000)")
    demo.add_argument("--seed", type=int, default=7, help="generator seed (default 7)")
    demo.add_argument("--duration", type=float, default=300.0, help="stop after this many seconds (default 300)")
    demo.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    demo.add_argument("--workdir", type=Path, help="where to keep the demo databases and logs (default: a new temp dir)")

    serve = commands.add_parser("serve", help="run the platform: broker (embedded unless configured), control plane, stream workers")
    serve.add_argument("--workers", type=int, default=1, help="stream worker processes (default 1)")

    connect = commands.add_parser("connect", help="run a SQL source connector as its own process")
    connect_commands = connect.add_subparsers(dest="action", required=True, parser_class=_Parser)
    connect_run = connect_commands.add_parser("run", help="publish a table's rows (config: JSON file)")
    connect_run.add_argument("config", type=Path, help="connector config (name, dataset, database_url, table, key_column, …)")
    connect_run.add_argument("--once", action="store_true", help="stop when the table is drained instead of polling")
    connect_run.add_argument("--port", type=int, default=0, help="port of /metrics and /health (default: a free one)")

    commands.add_parser("worker", help="run a stream worker (needs GSP_KAFKA_BOOTSTRAP and GSP_SCHEMA_REGISTRY_URL)")

    sub = commands.add_parser("subscription", help="agencies' subscriptions (talks to a running control plane)")
    sub_commands = sub.add_subparsers(dest="action", required=True, parser_class=_Parser)
    create = sub_commands.add_parser("create", help="approve a subscription")
    create.add_argument("--agency", required=True, help="agency slug, e.g. bo-cong-an")
    create.add_argument("--dataset", required=True, help="dataset, e.g. telecom.subscriber")
    create.add_argument("--fields", required=True, help="comma-separated approved fields")
    create.add_argument("--where", action="append", default=[], metavar="FIELD=V1,V2",
                        help="row filter: only rows whose FIELD is one of the values (repeatable)")
    create.add_argument("--verdicts", default="MATCHED", help="comma-separated match verdicts shared (default MATCHED)")
    sub_commands.add_parser("list", help="list subscriptions")
    delete = sub_commands.add_parser("delete", help="revoke a subscription")
    delete.add_argument("subscription_id")

    bench = commands.add_parser("bench", help="records/s of each piece next to baselines measured in the same run")
    bench.add_argument("--records", type=int, default=20_000, help="records per measurement (default 20000)")
    bench.add_argument("--json", action="store_true", help="print the figures as one JSON object")

    quarantine = commands.add_parser("quarantine", help="work quarantined records (talks to a running control plane)")
    q_commands = quarantine.add_subparsers(dest="action", required=True, parser_class=_Parser)
    q_list = _desk_list(q_commands, "quarantined records, oldest first, without their values", ["released", "discarded"])
    q_list.add_argument("--rule", help="rule id, e.g. id.prefix")
    q_list.add_argument("--counts", action="store_true", help="print open records per dataset and rule instead")
    q_show = q_commands.add_parser("show", help="one quarantined record with its original value")
    q_show.add_argument("event_id")
    q_release = q_commands.add_parser("release", help="publish the record again, fixed, under a new event id")
    q_release.add_argument("event_id")
    q_release.add_argument("--fix", action="append", default=[], metavar="FIELD=VALUE",
                           help="set a field, dotted for nested ones, e.g. residence.ward_code=00004 (repeatable)")
    q_release.add_argument("--unset", action="append", default=[], metavar="FIELD",
                           help="set an optional field to null (repeatable)")
    q_release.add_argument("--by", help="who releases it (default: your user name)")
    q_discard = q_commands.add_parser("discard", help="close a quarantined record for good, with a reason")
    q_discard.add_argument("event_id")
    q_discard.add_argument("--reason", required=True, help="why it is discarded (kept and audited)")
    q_discard.add_argument("--by", help="who discards it (default: your user name)")

    review = commands.add_parser("review", help="decide pairs the matcher proposed (talks to a running control plane)")
    r_commands = review.add_subparsers(dest="action", required=True, parser_class=_Parser)
    r_list = _desk_list(r_commands, "proposed matches, oldest first: id, dataset, key, personal id, probability, levels",
                        ["accepted", "rejected"])
    r_list.add_argument("--json", action="store_true", help="print the items as one JSON array")
    r_show = r_commands.add_parser("show", help="one proposed match with the subscriber's record")
    r_show.add_argument("item_id")
    r_accept = r_commands.add_parser("accept", help="the subscriber is the proposed registry record: share it as MATCHED")
    r_accept.add_argument("item_id")
    r_accept.add_argument("--by", required=True, help="who decides (kept and audited)")
    r_accept.add_argument("--reason", default="", help="why (optional)")
    r_reject = r_commands.add_parser("reject", help="not the proposed registry record: NO_MATCH (MISMATCH for its own id)")
    r_reject.add_argument("item_id")
    r_reject.add_argument("--by", required=True, help="who decides (kept and audited)")
    r_reject.add_argument("--reason", required=True, help="why (kept and audited)")
    r_export = r_commands.add_parser("export", help="every decision as CSV, a column per comparison level")
    r_export.add_argument("--out", type=Path, help="file to write (default: standard output)")

    clean = commands.add_parser("clean", help="apply a dataset's cleaning contract to JSON Lines (file or stdin)")
    clean.add_argument("--dataset", required=True, help="e.g. population.citizen or telecom.subscriber")
    clean.add_argument("file", nargs="?", type=Path, help="JSON Lines file (default: standard input)")

    match = commands.add_parser("match", help="record linkage: evaluate a model on CSV files, generate labelled data")
    match_commands = match.add_subparsers(dest="action", required=True, parser_class=_Parser)
    evaluate = match_commands.add_parser("evaluate", help="precision, recall, F1 and records/s on CSV files with known links")
    evaluate.add_argument("--settings", required=True, help="linkage settings JSON (names the CSV columns to use)")
    evaluate.add_argument("--left", required=True, help="registry CSV")
    evaluate.add_argument("--right", required=True, help="records to link, CSV")
    evaluate.add_argument("--truth", required=True, help="true links, CSV (record id, registry id)")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.add_argument("--batch-size", type=int, default=1000, help="micro-batch size for scoring (default 1000)")
    evaluate.add_argument("--model", help="score with this trained model file instead of training")
    evaluate.add_argument("--save-model", help="save the trained model (settings and parameters) here")
    evaluate.add_argument("--supervised", action="store_true", help="estimate m from the true links instead of EM")
    generate = match_commands.add_parser("generate", help="write labelled Vietnamese linkage data (left, right, links CSV)")
    generate.add_argument("--out", required=True, type=Path, help="directory to write into")
    generate.add_argument("--registry", type=int, default=100_000, help="registry records (default 100000)")
    generate.add_argument("--records", type=int, help="records to link (default: as many as the registry)")
    generate.add_argument("--match-share", type=float, default=0.8, help="share of records with a true match (default 0.8)")
    generate.add_argument("--seed", type=int, default=7)

    quality = commands.add_parser("quality", help="data-quality scorecards (correct, complete, clean, live)")
    quality_commands = quality.add_subparsers(dest="action", required=True, parser_class=_Parser)
    quality_report = quality_commands.add_parser("report", help="scores per dataset, worst fields and rules, trend")
    quality_report.add_argument("--dataset", help="only this dataset, e.g. telecom.subscriber")
    quality_report.add_argument("--json", action="store_true", help="print one JSON object")

    commands.add_parser("settings", help="print the environment variables the platform reads")
    return parser


def _desk_list(commands: Any, summary: str, closed: list[str]) -> argparse.ArgumentParser:
    """A desk's `list` command with the options every desk has."""
    listing: argparse.ArgumentParser = commands.add_parser("list", help=summary)
    listing.add_argument("--dataset", help="e.g. telecom.subscriber")
    listing.add_argument("--status", default="open", choices=["open", *closed, "all"], help="(default open)")
    listing.add_argument("--limit", type=int, default=100, help="at most this many (default 100, at most 1000)")
    return listing


def _api(settings: Settings, method: str, path: str, body: Any = None, *, text: bool = False) -> Any:
    """The control plane's JSON answer (its text with ``text``); its error message as a UserError."""
    return ApiClient.for_settings(settings).call(method, path, body, text=text)


def _where(clauses: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for clause in clauses:
        name, sep, values = clause.partition("=")
        if not sep or not name or not values:
            raise UserError(f"--where {clause!r} must look like FIELD=V1,V2")
        out[name.strip()] = [v.strip() for v in values.split(",") if v.strip()]
    return out


def _whoami() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        raise UserError("say who you are with --by") from None


def _fixes(assignments: list[str], unset: list[str]) -> dict[str, str | None]:
    fixes: dict[str, str | None] = {}
    for assignment in assignments:
        name, sep, value = assignment.partition("=")
        if not sep or not name.strip():
            raise UserError(f"--fix {assignment!r} must look like FIELD=VALUE")
        fixes[name.strip()] = value
    fixes.update({name.strip(): None for name in unset})
    return fixes


def _quarantine(args: argparse.Namespace, settings: Settings) -> int:
    base = "/api/quarantine"
    if args.action == "list" and args.counts:
        for dataset, rules in _api(settings, "GET", f"{base}/counts").items():
            for rule, n in rules.items():
                print(f"{dataset}\t{rule}\t{n}")
    elif args.action == "list":
        query = {"dataset": args.dataset, "rule": args.rule, "status": args.status, "limit": args.limit}
        for item in _api(settings, "GET", f"{base}?{urllib.parse.urlencode({k: v for k, v in query.items() if v})}"):
            print(f"{item['event_id']}\t{item['dataset']}\t{item['rule']}\t{item['field'] or '-'}\t{item['status']}\t{item['reason']}")
    elif args.action == "show":
        print(json.dumps(_api(settings, "GET", f"{base}/{urllib.parse.quote(args.event_id)}"), ensure_ascii=False, indent=2))
    elif args.action == "release":
        body = {"fixes": _fixes(args.fix, args.unset), "by": args.by or _whoami()}
        item = _api(settings, "POST", f"{base}/{urllib.parse.quote(args.event_id)}/release", body)
        print(f"released {args.event_id} as {item['released_event_id']} to raw.{item['dataset']}.v1")
    else:
        body = {"reason": args.reason, "by": args.by or _whoami()}
        _api(settings, "POST", f"{base}/{urllib.parse.quote(args.event_id)}/discard", body)
        print(f"discarded {args.event_id}")
    return 0


def _review(args: argparse.Namespace, settings: Settings) -> int:
    base = "/api/review"
    if args.action == "list":
        query = {"dataset": args.dataset, "status": args.status, "limit": args.limit}
        items = _api(settings, "GET", f"{base}?{urllib.parse.urlencode({k: v for k, v in query.items() if v})}")
        if args.json:
            print(json.dumps(items, ensure_ascii=False))
            return 0
        for item in items:
            probability = "-" if item["probability"] is None else f"{item['probability']:.4f}"
            levels = ",".join(f"{name}={level}" for name, level in sorted(item["levels"].items())) or "-"
            print(f"{item['item_id']}\t{item['dataset']}\t{item['source_key']}\t{item['personal_id']}\t{probability}\t{levels}")
    elif args.action == "show":
        print(json.dumps(_api(settings, "GET", f"{base}/{urllib.parse.quote(args.item_id)}"), ensure_ascii=False, indent=2))
    elif args.action == "export":
        csv_text = _api(settings, "GET", f"{base}/decisions.csv", text=True)
        if args.out is None:
            sys.stdout.write(csv_text)
        else:
            try:
                args.out.write_text(csv_text, encoding="utf-8")
            except OSError as exc:
                raise UserError(f"cannot write {args.out}: {exc.strerror}") from None
            print(f"decisions written to {args.out}")
    else:
        item = _api(settings, "POST", f"{base}/{urllib.parse.quote(args.item_id)}/{args.action}",
                    {"by": args.by, "reason": args.reason})
        print(f"{item['status']} {args.item_id}: {item['match_verdict']} published as {item['match_event_id']} "
              f"to match.{item['dataset']}.v1")
    return 0


def _run(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "demo":
        from gsp.tools.demo import DemoOptions, run_demo

        return run_demo(settings, DemoOptions(records=args.records, seed=args.seed, duration_s=args.duration,
                                              json=args.json, workdir=args.workdir))
    if args.command == "serve":
        from gsp.runtime.serve import run_platform

        return run_platform(settings, workers=args.workers)
    if args.command == "connect":
        from gsp.runtime.connector import run_connector

        return run_connector(settings, args.config, once=args.once, port=args.port)
    if args.command == "worker":
        from gsp.runtime.serve import run_worker

        return run_worker(settings)
    if args.command == "subscription":
        if args.action == "create":
            body = {"agency": args.agency, "dataset": args.dataset,
                    "fields": [f.strip() for f in args.fields.split(",") if f.strip()],
                    "row_filter": _where(args.where), "verdicts": [v.strip() for v in args.verdicts.split(",")]}
            event = _api(settings, "POST", "/api/subscriptions", body)
            print(f"subscription {event['subscription_id']} v{event['version']} -> topic {event['topic']} "
                  f"(schema id {event['schema_id']})")
        elif args.action == "list":
            for s in _api(settings, "GET", "/api/subscriptions"):
                print(f"{s['subscription_id']}\tv{s['version']}\t{s['topic']}\t{','.join(s['fields'])}")
        else:
            _api(settings, "DELETE", f"/api/subscriptions/{args.subscription_id}")
            print(f"subscription {args.subscription_id} revoked")
        return 0
    if args.command == "bench":
        from gsp.tools.bench.platform import run_bench

        return run_bench(settings, records=args.records, as_json=args.json)
    if args.command == "clean":
        from gsp.cli.clean import run_clean

        if args.file is None:
            return run_clean(args.dataset, sys.stdin, sys.stdout, err=sys.stderr)
        try:
            source = args.file.open(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise UserError(f"cannot read {args.file}: {exc.strerror}") from None
        with source:
            return run_clean(args.dataset, source, sys.stdout, err=sys.stderr)
    if args.command == "match":
        from gsp.tools.linkage_eval import run_evaluate, run_generate

        if args.action == "evaluate":
            return run_evaluate(args.settings, args.left, args.right, args.truth, as_json=args.json,
                                batch_size=args.batch_size, model=args.model, save_model=args.save_model,
                                supervised=args.supervised)
        return run_generate(args.out, registry=args.registry, records=args.records, match_share=args.match_share,
                            seed=args.seed)
    if args.command == "quarantine":
        return _quarantine(args, settings)
    if args.command == "review":
        return _review(args, settings)
    if args.command == "quality":
        import sqlalchemy as sa

        from gsp.desks.quality import render_report, report

        data = report(sa.create_engine(settings.resolved_database_url), args.dataset)
        if not data:
            raise UserError("no quality snapshots yet" + (f" for {args.dataset}" if args.dataset else "")
                            + f" in {settings.resolved_database_url}; run gsp demo or gsp serve first")
        if args.json:
            print(json.dumps(data, ensure_ascii=False))
        else:
            render_report(data, sys.stdout)
        return 0
    if args.command == "settings":
        for name, doc in Settings.documentation():
            print(f"{name:<26} {doc}")
        return 0
    raise AssertionError(args.command)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        from gsp.runtime import logs

        logs.configure(settings.log_level if args.command in ("worker", "serve") else "warning")
        return _run(args, settings)
    except (UserError, SettingsError) as exc:
        print(f"gsp: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gsp: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`gsp clean … | head`): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141

"""`gsp subscription`: agencies request subscriptions, data owners decide them, on a running control plane.

A consumer agency requests (or changes) what it receives of a dataset; the dataset's owner approves
or refuses each version within its answer deadline, and may suspend, resume or revoke. Every action
is the caller's credential's (GSP_TOKEN); `gsp.governance.subscriptions` keeps the states.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Any, TextIO

from gsp.cli._common import Commands, add_actions, add_command, print_json, print_table
from gsp.errors import UserError
from gsp.http.client import ApiClient, query
from schemas.envelope import Verdict
from schemas.settings import Settings

__all__ = ["register", "run"]

_BASE = "/api/subscriptions"
_ID_HELP = "as gsp subscription list shows it, e.g. bo-y-te-bhxh:telecom.subscriber"
_SID = "bo-y-te-bhxh:telecom.subscriber"  # the examples' subscription
_MAX_INTERVAL_S = 3600.0


def register(commands: Commands) -> None:
    subscription = add_command(
        commands, "subscription", summary="request and decide agencies' subscriptions (talks to a running control plane)",
        about="""\
            A subscription gives one agency the approved fields of one dataset, optionally only rows whose
            fields hold given values, on a topic of its own. A consumer agency requests it with a purpose
            and a legal basis; the dataset's owner agency approves or refuses within its answer deadline
            (GSP_ANSWER_DAYS working days). A change is a new version the owner decides while the approved
            one keeps delivering. Every action is attributed to the credential in GSP_TOKEN. Talks to the
            control plane at GSP_API_URL, else the gsp serve whose runtime file is in GSP_HOME.""",
        example=["gsp subscription list --overdue",
                 "gsp subscription request --dataset telecom.subscriber --fields msisdn,carrier "
                 '--purpose "đối soát thuê bao" --legal-basis "Nghị định 13/2023/NĐ-CP"',
                 f'gsp subscription approve {_SID} --reason "đúng mục đích"'])
    actions = add_actions(subscription)

    listing = add_command(
        actions, "list", summary="the subscriptions you may see: state, versions, answer deadline, topic",
        about="""\
            A consumer sees its agency's, an owner its datasets', admin and ops all. Columns:
            subscription_id, state, active (the delivering version), latest (the newest version and its
            state), due (a request's answer deadline, OVERDUE once past it), topic.""",
        example=["gsp subscription list", "gsp subscription list --overdue",
                 "gsp subscription list --dataset telecom.subscriber --json"])
    listing.add_argument("--overdue", action="store_true", help="only requests past their answer deadline")
    listing.add_argument("--dataset", help="only this dataset, e.g. telecom.subscriber")
    listing.add_argument("--json", action="store_true", help="print the subscriptions as one JSON array")

    show = add_command(actions, "show", summary="one subscription, every version: what, why, for how long, who decided",
                       example=[f"gsp subscription show {_SID}", f"gsp subscription show {_SID} --json"])
    show.add_argument("subscription_id", help=_ID_HELP)
    show.add_argument("--json", action="store_true", help="print the subscription as one JSON object")

    request = add_command(
        actions, "request", summary="ask a dataset's owner for a subscription (consumer)",
        about="""\
            Creates version 1 in state requested (or a new version of an ended subscription with the same
            name); the owner answers by the deadline printed. Fields and row filter must be among the
            dataset's shareable fields (gsp catalog show DATASET). With --mode verify, of the registry
            (population.citizen): no records are received; the fields are the ones you may check with
            gsp verify (personal_id, full_name and birth_date always, phone and province_code if asked).""",
        example=["gsp subscription request --dataset telecom.subscriber --fields msisdn,carrier,personal_id "
                 '--purpose "đối soát người tham gia bảo hiểm" --legal-basis "Luật BHXH 2024, Điều 29"',
                 "gsp subscription request --dataset telecom.subscriber --fields msisdn --where carrier=Viettel "
                 '--name tax-audit --purpose "kiểm tra thuế" --legal-basis "consent" '
                 "--from 2027-01-01T00:00:00+07:00 --until 2027-12-31T23:59:59+07:00 --backfill",
                 "gsp subscription request --mode verify --dataset population.citizen "
                 "--fields personal_id,full_name,birth_date,phone "
                 '--purpose "xác thực thông tin thuê bao" --legal-basis "Nghị định 163/2024/NĐ-CP"'])
    request.add_argument("--dataset", required=True, help="a dataset of the catalog, e.g. telecom.subscriber")
    _change_options(request)
    request.add_argument("--name", help="a slug telling this agency's subscriptions to one dataset apart, one per "
                                        "purpose, e.g. tax-audit (default: main)")

    change = add_command(
        actions, "change", summary="ask for a change: a new version, while the approved one keeps delivering",
        about="The new version states everything again, as a request does; the owner decides it the same way.",
        example=[f"gsp subscription change {_SID} --fields msisdn,carrier,personal_id "
                 '--purpose "đối soát người tham gia bảo hiểm" --legal-basis "Luật BHXH 2024, Điều 29"'])
    change.add_argument("subscription_id", help=_ID_HELP)
    _change_options(change)

    approve = add_command(
        actions, "approve", summary="approve a requested version (owner): it delivers from its start",
        example=[f"gsp subscription approve {_SID}",
                 f'gsp subscription approve {_SID} --version 2 --reason "đúng Điều 29"'])
    approve.add_argument("subscription_id", help=_ID_HELP)
    approve.add_argument("--version", type=int, help="the version to decide (default: the one waiting)")
    approve.add_argument("--reason", help="why (optional; kept and shown to the agency)")

    refuse = add_command(actions, "refuse", summary="refuse a requested version (owner), with a reason",
                         example=[f'gsp subscription refuse {_SID} --reason "personal_id is not needed for that purpose"'])
    refuse.add_argument("subscription_id", help=_ID_HELP)
    refuse.add_argument("--version", type=int, help="the version to decide (default: the one waiting)")
    refuse.add_argument("--reason", required=True, help="why (kept and shown to the agency)")

    suspend = add_command(actions, "suspend", summary="stop delivering for now (owner), with a reason",
                          example=[f'gsp subscription suspend {_SID} --reason "data breach under investigation"'])
    suspend.add_argument("subscription_id", help=_ID_HELP)
    suspend.add_argument("--reason", required=True, help="why (kept and shown to the agency)")

    resume = add_command(actions, "resume", summary="deliver a suspended subscription again (owner)",
                         example=[f"gsp subscription resume {_SID}"])
    resume.add_argument("subscription_id", help=_ID_HELP)

    revoke = add_command(actions, "revoke",
                         summary="end a subscription for good (owner, or the consumer ending its own), with a reason",
                         example=[f'gsp subscription revoke {_SID} --reason "the programme ended"'])
    revoke.add_argument("subscription_id", help=_ID_HELP)
    revoke.add_argument("--reason", required=True, help="why (kept and shown to the agency)")

    pull = add_command(
        actions, "pull", summary="print your subscription's records as JSON Lines, without Kafka (consumer)",
        about="""\
            Reads the records after a cursor, a page at a time, until caught up: one JSON object per line,
            {"partition", "offset", "event"} (the event with its header; upsert by header.event_id). The
            next cursor goes to stderr, and with --cursor-file to that file after each page is printed, so
            a cron job resumes where it stopped (at least once: a page may come again, never is skipped).
            With --follow, asks again every --interval seconds until Ctrl-C.""",
        example=[f"gsp subscription pull {_SID} > records.jsonl",
                 f"gsp subscription pull {_SID} --cursor-file {_SID.split(':')[0]}.cursor >> records.jsonl",
                 f"gsp subscription pull {_SID} --follow --interval 10 --limit 100"])
    pull.add_argument("subscription_id", help=_ID_HELP)
    pull.add_argument("--cursor", help="start after this cursor (a next cursor printed before); default: the "
                                       "--cursor-file's, else the beginning")
    pull.add_argument("--cursor-file", type=Path, metavar="FILE",
                      help="read the cursor from FILE when it exists, and save the next one there after each page")
    pull.add_argument("--limit", type=int, default=500, help="records per request, 1 to 1000")
    pull.add_argument("--follow", action="store_true", help="keep asking for new records until Ctrl-C")
    pull.add_argument("--interval", type=float, default=5.0, help="seconds between asks once caught up (--follow), "
                                                                  f"at most {_MAX_INTERVAL_S:g}")
    subscription.set_defaults(run=run)


def _change_options(parser: argparse.ArgumentParser) -> None:
    """What a request and a change both state."""
    parser.add_argument("--fields", required=True, help="comma-separated shareable fields, e.g. msisdn,carrier")
    parser.add_argument("--purpose", required=True, help="what the data is for, in plain words")
    parser.add_argument("--legal-basis", required=True, help="the law or decree article relied on, or consent")
    parser.add_argument("--where", action="append", default=[], metavar="FIELD=V1,V2",
                        help="row filter: only rows whose FIELD is one of the values (repeatable)")
    parser.add_argument("--verdicts", default=Verdict.MATCHED.value,
                        help=f"comma-separated identity verdicts a record must carry ({', '.join(Verdict)})")
    parser.add_argument("--from", dest="valid_from", metavar="ISO",
                        help="start, ISO 8601 with a zone, e.g. 2027-01-01T00:00:00+07:00 (default: when approved)")
    parser.add_argument("--until", dest="valid_until", metavar="ISO",
                        help="end, ISO 8601 with a zone (default: until revoked)")
    parser.add_argument("--backfill", action="store_true", help="also records ingested before the start")
    parser.add_argument("--consent", action="store_true",
                        help="the legal basis is each person's consent: records of a person are shared only while "
                             "their consent is on record (gsp consent give|withdraw)")
    parser.add_argument("--mode", choices=["stream", "verify"],
                        help="stream: receive the approved fields of records; verify (of the registry, e.g. "
                             "population.citizen): receive nothing, check identity details you hold with gsp verify "
                             "(default: stream for a new subscription, its current mode for a change)")


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _where(clauses: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for clause in clauses:
        name, sep, values = clause.partition("=")
        if not sep or not name.strip() or not _csv(values):
            raise UserError(f"--where {clause!r} must look like FIELD=V1,V2")
        out[name.strip()] = _csv(values)
    return out


def _change(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {"fields": _csv(args.fields), "purpose": args.purpose, "legal_basis": args.legal_basis,
                            "row_filter": _where(args.where), "verdicts": _csv(args.verdicts), "backfill": args.backfill,
                            "mode": args.mode, "consent": args.consent}
    for key in ("valid_from", "valid_until"):
        if getattr(args, key) is not None:
            body[key] = getattr(args, key)
    return body


def _path(sid: str, *rest: str) -> str:
    return "/".join([_BASE, urllib.parse.quote(sid, safe=""), *rest])


def run(args: argparse.Namespace, settings: Settings) -> int:
    api = ApiClient.for_settings(settings)
    if args.action == "list":
        found = api.get(_BASE + query(overdue="true" if args.overdue else None, dataset=args.dataset))
        if args.json:
            print_json(found)
        else:
            print_table(["subscription_id", "state", "active", "latest", "due", "topic"], map(_row, found))
    elif args.action == "show":
        found = api.get(_path(args.subscription_id))
        if args.json:
            print_json(found, indent=2)
        else:
            _render(found, sys.stdout)
    elif args.action in ("request", "change"):
        if args.action == "request":
            body = {"dataset": args.dataset, **_change(args), **({"name": args.name} if args.name else {})}
            found = api.post(_BASE, body)
        else:
            found = api.post(_path(args.subscription_id, "versions"), _change(args))
        latest = found["versions"][-1]
        print(f"subscription {found['subscription_id']} version {latest['version']}: {latest['state']}; "
              f"the owner of {found['dataset']} answers by {latest['due_at']}")
    elif args.action in ("approve", "refuse"):
        version = args.version if args.version is not None else _waiting(api.get(_path(args.subscription_id)))
        found = api.post(_path(args.subscription_id, "versions", str(version), args.action), {"reason": args.reason})
        _outcome(found, version)
    elif args.action == "pull":
        _pull(api, args)
    else:
        body = {} if args.action == "resume" else {"reason": args.reason}
        _outcome(api.post(_path(args.subscription_id, args.action), body))
    return 0


def _pull(api: ApiClient, args: argparse.Namespace) -> None:
    """Pages until caught up (and with --follow, again every interval until Ctrl-C); the cursor is saved only once
    its page is printed."""
    if not 0 < args.interval <= _MAX_INTERVAL_S:
        raise UserError(f"--interval must be more than 0 and at most {_MAX_INTERVAL_S:g} seconds")
    cursor = args.cursor or (_read_cursor(args.cursor_file) if args.cursor_file else None)
    shown = None  # the cursor last printed: every new one, and the first even when unchanged
    try:
        while True:
            page = api.get(_path(args.subscription_id, "records") + query(cursor=cursor, limit=args.limit))
            for record in page["records"]:
                print_json(record)
            sys.stdout.flush()
            cursor = page["next_cursor"]
            if args.cursor_file:
                _save_cursor(args.cursor_file, cursor)
            if cursor != shown:
                print(f"next cursor: {cursor}", file=sys.stderr)
                shown = cursor
            if not page["more"]:
                if not args.follow:
                    break
                time.sleep(args.interval)
    except KeyboardInterrupt:  # --follow ends here; what was printed has its cursor saved
        pass


def _read_cursor(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UserError(f"--cursor-file {path}: {exc.strerror}") from None


def _save_cursor(path: Path, cursor: str) -> None:
    """Replaced whole: a crash mid-write leaves the previous cursor, never half of one."""
    partial = path.with_name(path.name + ".partial")
    try:
        partial.write_text(cursor + "\n", encoding="utf-8")
        os.replace(partial, path)
    except OSError as exc:
        raise UserError(f"--cursor-file {path}: {exc.strerror}") from None


def _waiting(found: dict[str, Any]) -> int:
    """The latest version waiting for the owner's decision."""
    waiting = [v["version"] for v in found["versions"] if v["state"] == "requested"]
    if not waiting:
        states = ", ".join(f"version {v['version']} {v['state']}" for v in found["versions"])
        raise UserError(f"subscription {found['subscription_id']} has no version waiting for a decision ({states})")
    return int(waiting[-1])


def _outcome(found: dict[str, Any], version: int | None = None) -> None:
    """One line: the version decided (or the subscription's versions that matter) and what delivers now."""
    sid = found["subscription_id"]
    if version is not None:
        state = next(v["state"] for v in found["versions"] if v["version"] == version)
        line = f"subscription {sid} version {version}: {state}"
    else:
        line = f"subscription {sid}: {_status(found)}"
    if found["active_version"] is not None:
        line += f"; version {found['active_version']} delivers on {found['topic']}"
    print(line)


_OPEN = ("requested", "approved", "active", "suspended")


def _status(found: dict[str, Any]) -> str:
    """The versions that matter, with their state: the open ones (else the one that ended last), and the latest
    (the answer's own ``state`` says what is delivered, not what was asked last)."""
    versions = found["versions"]
    shown = [v for v in versions if v["state"] in _OPEN] or [v for v in versions if v["state"] != "refused"][-1:]
    if versions[-1] not in shown:
        shown.append(versions[-1])
    return ", ".join(f"version {v['version']} {v['state']}" for v in shown)


def _row(found: dict[str, Any]) -> list[Any]:
    latest = found["versions"][-1]
    waiting = [v for v in found["versions"] if v["state"] == "requested"]
    due = " ".join([waiting[-1]["due_at"], *(["OVERDUE"] if waiting[-1]["overdue"] else [])]) if waiting else None
    active = found["active_version"]
    return [found["subscription_id"], found["state"], None if active is None else f"v{active}",
            f"v{latest['version']} {latest['state']}", due, found["topic"]]


def _render(found: dict[str, Any], out: TextIO) -> None:
    out.write(f"{found['subscription_id']}: {_status(found)}\n"
              f"  agency:  {found['agency']}\n"
              f"  dataset: {found['dataset']}\n"
              f"  name:    {found['name']}\n"
              f"  mode:    {found.get('mode', 'stream')}\n"
              + (f"  asks on: {found['requests_topic']}\n" if found.get("requests_topic") else "")
              + f"  topic:   {found['topic']}\n")
    for v in found["versions"]:
        out.write(f"version {v['version']}: {v['state']}\n")
        lines = [("fields", ", ".join(v["fields"])),
                 ("rows", "; ".join(f"{k} in {', '.join(vs)}" for k, vs in v["row_filter"].items()) or "all"),
                 ("verdicts", ", ".join(v["verdicts"])),
                 ("purpose", v["purpose"]),
                 ("legal basis", v["legal_basis"]),
                 ("period", _period(v)),
                 ("requested", f"{v['requested_at']} by {v['requested_by']}")]
        if v["state"] == "requested":
            left = v["working_days_left"]
            lines.append(("answer due", v["due_at"] + (" OVERDUE" if v["overdue"] else
                                                       "" if left is None else f" ({left:g} working days left)")))
        if v["decided_by"]:
            verb = "refused" if v["state"] == "refused" else "approved"
            lines.append((verb, f"{v['decided_at']} by {v['decided_by']}" + (f": {v['reason']}" if v["reason"] else "")))
        if v["ended_by"]:
            lines.append((v["state"], f"{v['ended_at']} by {v['ended_by']}"
                          + (f": {v['end_reason']}" if v["end_reason"] else "")))
        for label, value in lines:
            out.write(f"  {label + ':':<12} {value}\n")


def _period(version: dict[str, Any]) -> str:
    start = version["valid_from"] or "when approved"
    end = version["valid_until"] or "revoked"
    return f"from {start} until {end}" + (", with the records before it (backfill)" if version["backfill"] else "")

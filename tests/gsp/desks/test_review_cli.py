"""`gsp review`: the stewards' match review from the command line, against a control plane found through
$GSP_HOME/runtime.json, as the steward whose credential is in GSP_TOKEN. Mistakes are one line on stderr and exit
code 2."""

import csv
import functools
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from tests.desks import msisdn
from tests.gsp.desks.test_review import SUBSCRIBERS, personal_id, running_plane, serving, stewards, who


def gsp(*args: str, home: Path, token: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "GSP_API_URL"}
    return subprocess.run([sys.executable, "-m", "gsp", *args], capture_output=True, text=True, timeout=60,
                          env={**env, "GSP_HOME": str(home), "GSP_TOKEN": token}, check=False)


def one_line_error(result: subprocess.CompletedProcess[str], message: str) -> bool:
    lines = result.stderr.strip().splitlines()
    return result.returncode == 2 and len(lines) == 1 and message in lines[0] and "Traceback" not in result.stderr


def test_the_cli_lists_shows_decides_and_exports_and_says_what_went_wrong_in_one_line(
        bootstrap: str, sqlite_engine: sa.Engine, tmp_path: Path) -> None:
    with running_plane(bootstrap, sqlite_engine) as plane, serving(plane) as url:
        (tmp_path / "runtime.json").write_text(json.dumps({"api_url": url}))
        key, pid = msisdn(), personal_id()
        item_id, other = plane.propose(key, pid), plane.propose(msisdn(), personal_id(), probability=None, levels={})
        plane.index(item_id, other)
        lan, minh = stewards(plane)
        as_lan = functools.partial(gsp, home=tmp_path, token=lan.token)

        listed = as_lan("review", "list", "--dataset", SUBSCRIBERS, "--limit", "1000")
        assert listed.returncode == 0, listed.stderr
        lines = {line.split("\t")[0]: line.split("\t") for line in listed.stdout.splitlines()}
        assert lines[item_id] == [item_id, SUBSCRIBERS, key, pid, "0.9300",
                                  "birth_date=day_month_swapped,family_name=folded,given_name=exact"]
        assert lines[other][4:] == ["-", "-"]
        as_json = as_lan("review", "list", "--json", "--limit", "1000")
        assert item_id in {i["item_id"] for i in json.loads(as_json.stdout)}
        shown = as_lan("review", "show", item_id)
        assert json.loads(shown.stdout)["record"]["value"]["msisdn"] == key

        accepted = as_lan("review", "accept", item_id, "--reason", "called the subscriber")
        assert accepted.returncode == 0 and accepted.stdout.startswith(f"accepted {item_id}: MATCHED published as ")
        assert one_line_error(as_lan("review", "accept", item_id),
                              f"gsp: error: review item {item_id} is already accepted by {who(lan)}: called the subscriber")
        assert one_line_error(as_lan("review", "show", "nope"), "gsp: error: no review item 'nope'")
        assert one_line_error(as_lan("review", "reject", other),
                              "the following arguments are required: --reason")
        assert one_line_error(as_lan("review", "reject", other, "--reason", " "),
                              "gsp: error: a reason is required to reject a proposed match")
        assert one_line_error(gsp("review", "accept", other, home=tmp_path, token=""),
                              "needs a credential")  # GSP_HOME holds no admin.token here
        assert one_line_error(as_lan("review", "list", "--status", "closed"), "invalid choice: 'closed'")
        assert one_line_error(as_lan("review", "export", "--out", str(tmp_path / "no" / "dir.csv")),
                              f"gsp: error: cannot write {tmp_path / 'no' / 'dir.csv'}")
        assert gsp("review", "reject", other, "--reason", "moved away", home=tmp_path, token=minh.token).returncode == 0

        exported = as_lan("review", "export", "--out", str(tmp_path / "decisions.csv"))
        assert exported.returncode == 0, exported.stderr
        rows = list(csv.DictReader(io.StringIO((tmp_path / "decisions.csv").read_text(encoding="utf-8"))))
        assert [(r["personal_id"], r["decision"], r["decided_by"]) for r in rows] == \
            [(pid, "ACCEPTED", who(lan)), (plane.desk.show(other)["personal_id"], "REJECTED", who(minh))]
        assert rows[0]["level.birth_date"] == "day_month_swapped" and rows[1]["level.birth_date"] == ""
        assert as_lan("review", "export").stdout == (tmp_path / "decisions.csv").read_text(encoding="utf-8")
    assert one_line_error(as_lan("review", "list"), f"gsp: error: no control plane answering at {url}")

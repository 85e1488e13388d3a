"""`gsp demo` leaves no temporary folder behind unless asked to; a --workdir is the user's and stays."""

import shutil
import sys
from pathlib import Path

import pytest

from gsp.tools.demo import DemoOptions, _gsp_command, demo_workdir


def test_the_temporary_folder_is_removed_when_the_demo_ends() -> None:
    with demo_workdir(DemoOptions()) as (workdir, kept):
        (workdir / "agency.db").write_bytes(b"rows")
        (workdir / "worker-data").mkdir()
        assert workdir.name.startswith("gsp-demo-") and not kept
    assert not workdir.exists()


def test_keep_keeps_the_temporary_folder() -> None:
    with demo_workdir(DemoOptions(keep=True)) as (workdir, kept):
        (workdir / "agency.db").write_bytes(b"rows")
    try:
        assert kept and (workdir / "agency.db").read_bytes() == b"rows"
    finally:
        shutil.rmtree(workdir)


def test_a_given_workdir_is_created_and_kept(tmp_path: Path) -> None:
    with demo_workdir(DemoOptions(workdir=tmp_path / "demo-run")) as (workdir, kept):
        (workdir / "agency.db").write_bytes(b"rows")
    assert kept and workdir == tmp_path / "demo-run" and (workdir / "agency.db").exists()


def test_a_failed_demo_keeps_its_logs_and_ctrl_c_does_not() -> None:
    with pytest.raises(RuntimeError), demo_workdir(DemoOptions()) as (failed, _):
        (failed / "worker-1.log").write_text("Traceback …")
        raise RuntimeError("stream worker keeps exiting")
    try:
        assert (failed / "worker-1.log").exists()
    finally:
        shutil.rmtree(failed)
    with pytest.raises(KeyboardInterrupt), demo_workdir(DemoOptions()) as (interrupted, _):
        raise KeyboardInterrupt
    assert not interrupted.exists()


def test_the_closing_hint_names_a_gsp_the_shell_can_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = tmp_path / "venv" / "bin" / "gsp"
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    monkeypatch.setattr(sys, "argv", [str(script), "demo"])
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # as after `make demo`: the virtualenv is not activated
    assert _gsp_command() == str(script)
    monkeypatch.setenv("PATH", str(script.parent))
    assert _gsp_command() == "gsp"

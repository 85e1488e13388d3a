"""A throwaway PostgreSQL cluster of one test's own, which the test may stop and start (the session's may not)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from gsp.runtime.embedded import free_port

__all__ = ["PgCluster"]


class PgCluster:
    def __init__(self) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
        assert found, "PostgreSQL server binaries not found: install Debian package postgresql"
        self._bin = Path(found[-1]).parent
        self._workdir = Path(tempfile.mkdtemp(prefix="gsp-pg-outage-"))
        # initdb refuses to run as root, so the cluster belongs to Debian's postgres user.
        self._as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as_owner:
            shutil.chown(self._workdir, user="postgres", group="postgres")
        self._data, self.port = self._workdir / "data", free_port()
        self.url = f"postgresql+pg8000://postgres@127.0.0.1:{self.port}/postgres"
        self._pg("initdb", "-D", str(self._data), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8")

    def start(self) -> None:
        self._pg("pg_ctl", "start", "-w", "-t", "60", "-D", str(self._data), "-l", str(self._workdir / "server.log"),
                 "-o", f"-h 127.0.0.1 -p {self.port} -k {self._workdir} -c fsync=off -c full_page_writes=off")

    def stop(self) -> None:
        """Stop at once, as a crash would: connections are cut, nothing waits for clients."""
        self._pg("pg_ctl", "stop", "-w", "-D", str(self._data), "-m", "immediate")

    def remove(self) -> None:
        subprocess.run([*self._as_owner, str(self._bin / "pg_ctl"), "stop", "-D", str(self._data), "-m", "immediate"],
                       capture_output=True, timeout=60)
        shutil.rmtree(self._workdir, ignore_errors=True)

    def _pg(self, program: str, *args: str) -> None:
        subprocess.run([*self._as_owner, str(self._bin / program), *args], check=True, capture_output=True, timeout=120)

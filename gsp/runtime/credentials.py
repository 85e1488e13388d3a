"""The credentials `gsp serve` makes for itself: the first admin's, and its own workers'.

The first start registers the platform's own agency and issues an admin credential, written to
``GSP_HOME/admin.token`` with mode 0600 (the CLI reads it when GSP_TOKEN is unset); it is never
written again while an admin credential is active. The stream workers read the registry with an ops
credential of their own, kept in ``GSP_HOME/worker.token`` (0600).
"""

from __future__ import annotations

import os
from pathlib import Path

from gsp.governance.identity import Grant, IdentityStore, Role, Unauthenticated
from schemas.settings import ADMIN_TOKEN_FILE

__all__ = ["PLATFORM_AGENCY", "ensure_admin", "worker_token"]

PLATFORM_AGENCY = "VN/GOV/gsp/platform"
_PLATFORM_NAME = "Nền tảng tích hợp, chia sẻ dữ liệu (GSP)"
_WORKERS = "gsp serve: stream workers"
_WORKER_TOKEN_FILE = "worker.token"


def ensure_admin(store: IdentityStore, home: Path) -> Path | None:
    """Issue the first admin credential into ``home``; the file written, or None when an admin already exists."""
    store.register_agency(PLATFORM_AGENCY, name=_PLATFORM_NAME)
    if store.active(Role.ADMIN):
        return None
    issued = store.issue(PLATFORM_AGENCY, grants=[Grant(Role.ADMIN)], label="first admin, made by gsp serve")
    path = home / ADMIN_TOKEN_FILE
    _write_secret(path, issued.token)
    return path


def worker_token(store: IdentityStore, home: Path) -> str:
    """The ops credential this GSP_HOME's stream workers read the registry with: the one kept in
    ``home/worker.token`` (0600) while it is active, else a new one. Another control plane on the same
    database (another GSP_HOME) keeps its own, so neither start cuts off the other's workers."""
    path = home / _WORKER_TOKEN_FILE
    try:
        kept = path.read_text(encoding="utf-8").strip()
        store.authenticate(kept)
        return kept
    except (OSError, Unauthenticated):
        pass
    store.register_agency(PLATFORM_AGENCY, name=_PLATFORM_NAME)
    token = store.issue(PLATFORM_AGENCY, grants=[Grant(Role.OPS)], label=_WORKERS).token
    _write_secret(path, token)
    return token


def _write_secret(path: Path, secret: str) -> None:
    """``secret`` into a new file only its owner may read (a stale one is removed first: it may be readable)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(secret + "\n")

"""The credentials `gsp serve` makes for itself: the first admin's, and its own workers'.

The first start registers the platform's own agency and issues an admin credential, written to
``GSP_HOME/admin.token`` with mode 0600 (the CLI reads it when GSP_TOKEN is unset); it is never
written again while an admin credential is active. Every start issues its stream workers an ops
credential to read the registry with, and revokes the one the previous start issued.
"""

from __future__ import annotations

import os
from pathlib import Path

from gsp.governance.identity import Grant, IdentityStore, Role
from schemas.settings import ADMIN_TOKEN_FILE

__all__ = ["PLATFORM_AGENCY", "ensure_admin", "worker_token"]

PLATFORM_AGENCY = "VN/GOV/gsp/platform"
_PLATFORM_NAME = "Nền tảng tích hợp, chia sẻ dữ liệu (GSP)"
_WORKERS = "gsp serve: stream workers"


def ensure_admin(store: IdentityStore, home: Path) -> Path | None:
    """Issue the first admin credential into ``home``; the file written, or None when an admin already exists."""
    store.register_agency(PLATFORM_AGENCY, name=_PLATFORM_NAME)
    if store.active(Role.ADMIN):
        return None
    issued = store.issue(PLATFORM_AGENCY, grants=[Grant(Role.ADMIN)], label="first admin, made by gsp serve")
    path = home / ADMIN_TOKEN_FILE
    path.unlink(missing_ok=True)  # a stale file may be readable by others; the new one is created 0600
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(issued.token + "\n")
    return path


def worker_token(store: IdentityStore) -> str:
    """A fresh ops credential for this start's stream workers; the previous starts' are revoked."""
    store.register_agency(PLATFORM_AGENCY, name=_PLATFORM_NAME)
    for old in store.active(Role.OPS, label=_WORKERS):
        store.revoke(old["key_id"])
    return store.issue(PLATFORM_AGENCY, grants=[Grant(Role.OPS)], label=_WORKERS).token

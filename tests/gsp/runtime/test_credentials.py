"""The credentials `gsp serve` makes for itself: the first admin's once, its workers' kept while active."""

from pathlib import Path

import sqlalchemy as sa

from gsp.governance.identity import IdentityStore, Role
from gsp.runtime.credentials import ensure_admin, worker_token


def test_the_first_admin_token_is_written_once_readable_by_its_owner_only(sqlite_engine: sa.Engine, tmp_path: Path) -> None:
    store = IdentityStore(sqlite_engine)
    written = ensure_admin(store, tmp_path)
    assert written == tmp_path / "admin.token" and (written.stat().st_mode & 0o777) == 0o600
    assert store.authenticate(written.read_text().strip()).roles == {Role.ADMIN}
    assert ensure_admin(store, tmp_path) is None          # an admin exists: nothing new, nothing overwritten
    assert len(store.active(Role.ADMIN)) == 1


def test_workers_keep_their_credential_until_it_is_revoked(sqlite_engine: sa.Engine, tmp_path: Path) -> None:
    store = IdentityStore(sqlite_engine)
    first = worker_token(store, tmp_path)
    assert store.authenticate(first).roles == {Role.OPS}
    assert worker_token(store, tmp_path) == first           # a restart keeps it: running workers are not cut off
    (tmp_path / "elsewhere").mkdir()
    other = worker_token(store, tmp_path / "elsewhere")
    assert other != first and store.authenticate(first)    # a second GSP_HOME gets its own; the first still works
    store.revoke(store.authenticate(first).key_id)
    renewed = worker_token(store, tmp_path)
    assert renewed != first and ((tmp_path / "worker.token").stat().st_mode & 0o777) == 0o600

"""The control plane's database engine: SQLite (embedded default) or PostgreSQL (GSP_DATABASE_URL)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from gsp.errors import UserError

# Many threads of one process write the embedded SQLite database (ledger writer, indexers, recorders, back-fill,
# the API); a writer waits this long for another's lock before "database is locked" (pysqlite's default is 5 s,
# too short on a loaded machine).
SQLITE_LOCK_WAIT_S = 30.0


def control_engine(url: str | sa.URL) -> sa.Engine:
    """An engine for ``url``; a one-line UserError when the URL or its driver is not usable."""
    try:
        parsed = sa.engine.make_url(url)
        options: dict[str, Any] = {}
        if parsed.get_backend_name() == "sqlite":
            options["connect_args"] = {"timeout": SQLITE_LOCK_WAIT_S}
        return sa.create_engine(parsed, **options)
    except (sa.exc.ArgumentError, ImportError) as exc:
        raise UserError(f"GSP_DATABASE_URL is not usable: {exc}") from None

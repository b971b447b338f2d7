"""``status()``: which server, database, revision, pgvector and data folder the lab uses right now."""

from __future__ import annotations

import sqlalchemy as sa

from . import database, paths, phases, settings
from .diagnose import where
from .postgres import binaries


def status() -> dict[str, str]:
    """Return the server, database, revision, pgvector version and data folder in use (binaries if copied)."""
    eng = database.checked_engine()
    with eng.connect() as conn:
        version = conn.scalar(sa.text("SHOW server_version"))
        revision = phases.current_revision(conn) or "none (empty database)"
        row = database.vector_extension(conn)
    pgvector = ("not available on this server: install it, see github.com/pgvector/pgvector"
                if row is None else
                f"{row.installed_version} (installed)" if row.installed_version else
                f"{row.default_version} (available, not yet installed)")
    embedded = settings.database_url() is None
    kind = "embedded" if embedded else "DATABASE_URL"
    found = {
        "server": f"PostgreSQL {version} ({kind}, {where(eng.url)})",
        "database": eng.url.database or f"(none named: the server uses {eng.url.username or 'your user name'!r})",
        "revision": revision,
        "pgvector": pgvector,
        "data folder": data_folder() if embedded else "(on the server)",
    }
    note = binaries.binaries_note() if embedded else None
    if note:  # as root, with the venv in a folder closed to other users
        found["binaries"] = note
    return found


def data_folder() -> str:
    """Return the embedded server's data folder, and why it is there when that is not the obvious place."""
    reason, obvious = paths.data_root_reason()
    pgdata = str(paths.pgdata_dir())
    return pgdata if obvious else f"{pgdata} ({reason})"

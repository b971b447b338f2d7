"""What state a lab database is in, as the alembic command line and the server see it."""

from __future__ import annotations

import pgvector.sqlalchemy  # noqa: F401  (registers the vector type, so reflection knows it)
import sqlalchemy as sa

from labkit import database, phases

from .helpers import admin, alembic


def alembic_current(**env) -> str:
    """Return the revision ``alembic current`` prints for the given environment, without "(head)"."""
    out = alembic("current", **env)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().removesuffix(" (head)")


def databases() -> set[str]:
    """Return the names of every database on the server."""
    with admin() as conn:
        return set(conn.scalars(sa.text("SELECT datname FROM pg_database")))


def snapshot(url: sa.URL) -> dict:
    """Return the revision, tables, columns of users and row count of a lab database."""
    with database.engine(url).connect() as conn:
        insp = sa.inspect(conn)
        tables = sorted(insp.get_table_names())
        cols = [c["name"] for c in insp.get_columns("users")] if "users" in tables else []
        rows = conn.scalar(sa.text("SELECT count(*) FROM users")) if cols else None
        return {"revision": phases.current_revision(conn), "tables": tables, "columns": cols,
                "rows": rows}


EXPECTED = {  # phase -> (columns of users, or None for no table)
    0: None,
    1: ["id", "name"],
    2: ["id", "name", "email", "bio"],
    3: ["id", "full_name", "email", "bio"],
    4: ["id", "full_name", "email", "bio", "settings", "embedding"],
}


def assert_at_phase(url: sa.URL, phase: int) -> None:
    """Assert the lab database at url is exactly at the phase: revision, columns, rows."""
    state = snapshot(url)
    assert state["revision"] == phases.REVISIONS.get(phase), state
    assert state["columns"] == (EXPECTED[phase] or []), state
    if phase == 0:
        assert "users" not in state["tables"]
        assert "alembic_version" not in state["tables"]
        return
    assert state["rows"] == len(phases.SAMPLE_USERS)
    with database.engine(url).connect() as conn:
        if phase >= 2:
            assert conn.scalar(sa.text("SELECT count(email) FROM users")) == 4
        if phase == 4:
            assert conn.scalar(sa.text("SELECT count(embedding) FROM users")) == 5
            assert conn.scalar(sa.text(
                "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_users_embedding'"
            )).count("USING hnsw") == 1

"""Notebook 9: whole databases of a project's own, on the lab's server, for schema diffs between them.

A schema-diff tool (migra, ``pg_dump --schema-only``) compares two *databases*, not two schemas
of one, so notebook 9's project works in databases named ``<lab database>_<name>``, made anew on
each run and dropped at the end. Only a database this module marked is ever dropped.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import sqlalchemy as sa

from .. import database, diagnose
from ..errors import LabError
from ..postgres import binaries

# The comment on each database project_database makes: only such a database is ever dropped.
DATABASE_MARK = "made by the Database Evolution lab for notebook 9; dropped on every run"


def _name(suffix: str) -> str:
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,20}", suffix):
        raise LabError(f"{suffix!r} is not a plain database suffix: use up to 21 lowercase letters, digits and _.")
    return f"{database.resolve_url().database}_{suffix}"


def _autocommit():
    return database.engine().connect().execution_options(isolation_level="AUTOCOMMIT")


def drop_project_database(suffix: str) -> bool:
    """Drop database ``<lab database>_<suffix>`` if this module made it; return whether one was dropped."""
    name = _name(suffix)
    with _autocommit() as conn:
        found = conn.execute(sa.text("SELECT shobj_description(oid, 'pg_database'), pg_has_role(datdba, 'USAGE') "
                                     "FROM pg_database WHERE datname = :n"), {"n": name}).first()
        if found is None:
            return False
        if found[0] != DATABASE_MARK or not found[1]:
            raise LabError(f"The server already has a database {name!r} that this lab did not make for you,\n"
                           "so it will not drop it. Nothing was changed.",
                           "Drop or rename it yourself, or set LAB_STUDENT=<name> to work under another name.")
        _drop(conn, name)
    return True


def _drop(conn: sa.Connection, name: str, tries: int = 20) -> None:
    """DROP DATABASE ... WITH (FORCE), waiting out a session the learner may not end.

    FORCE ends the sessions on it, but a learner who is not a superuser may end only their own
    role's: another session, such as an autovacuum worker begun on the new tables (seen in a room
    of 30), makes PostgreSQL refuse the whole drop (42501). It is done in moments: try again.

    A drop also waits for a checkpoint of the whole server (it asks for one); on a busy shared
    server that took longer than a classroom's 2-minute statement_timeout (two learners in the
    room of 30, 8 December). It is no runaway query, so it gets 10 minutes, then the limit is back.
    """
    conn.execute(sa.text("SET statement_timeout = '10min'"))
    try:
        for _ in range(tries):
            try:
                conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))  # PostgreSQL 13+
                return
            except sa.exc.DBAPIError as exc:
                if diagnose.sqlstate(exc) != diagnose.INSUFFICIENT_PRIVILEGE:
                    raise
            time.sleep(0.5)
    finally:
        conn.execute(sa.text("RESET statement_timeout"))  # the session's own limit, for whoever uses it next
    raise LabError(f"Database {name!r} still has a session you may not end (another role's, or the server's\n"
                   "autovacuum), so it was not dropped. Nothing was changed.",
                   "Run the cell again in a minute; if it stays, ask whoever runs the server.")


def project_database(suffix: str) -> str:
    """Make database ``<lab database>_<suffix>`` anew, empty, and return its URL (password included)."""
    name = _name(suffix)
    drop_project_database(suffix)
    server = database.resolve_url()
    database.ensure_database(server, name)  # a short LabError without CREATEDB
    with _autocommit() as conn:
        conn.execute(sa.text(f"COMMENT ON DATABASE \"{name}\" IS '{DATABASE_MARK}'"))
        conn.execute(sa.text(f'REVOKE ALL ON DATABASE "{name}" FROM PUBLIC'))  # a classroom's fence holds
    return server.set(database=name).render_as_string(hide_password=False)


def pg_dump() -> str:
    """Return the path of a pg_dump for the lab's server: Debian's of its major version, else the embedded 18's."""

    with database.engine().connect() as conn:
        major = conn.scalar(sa.text("SELECT current_setting('server_version_num')::int / 10000"))
    own = Path(f"/usr/lib/postgresql/{major}/bin/pg_dump")  # a build's own pg_dump knows its own quirks
    if own.exists():
        return str(own)
    bins = binaries.library_bins()  # the newest: pg_dump refuses a server newer than itself
    return str(bins[max(bins)] / "pg_dump")

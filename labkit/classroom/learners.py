"""The learners of a classroom: each gets a LOGIN role and a fenced database ``lab_<name>``.

``classroom setup --users alice,bob`` (or ``--count 30``) gives each learner a LOGIN role with a
random password (no SUPERUSER or CREATEROLE) and a database ``lab_<name>`` owned by it,
with CONNECT revoked from PUBLIC and pgvector installed (it is not a trusted extension).
The room's progress reads every learner's database as ``classroom-reader`` (``READER``), a
LOGIN role with ``pg_read_all_data`` and ``pg_read_all_stats`` and nothing more, granted CONNECT
on each: a learner owns what the reading touches, so it must not run as a superuser.
CREATEDB, because notebook 9 compares whole databases (``lab_<name>_nb9_...``); the lab closes each
one it makes to PUBLIC (``history.project_database``), and teardown drops every database the role owns.
"""

from __future__ import annotations

import secrets
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from .. import database, settings
from ..diagnose import explain
from ..errors import LabError
from . import limits
from .server import admin_url, read_secrets, write_secrets


def learner_names(users: str | None = None, count: int | None = None, prefix: str = "learner") -> list[str]:
    """Return the validated learner names from a comma list, or prefix01..prefixNN."""
    names = ([n.strip() for n in users.split(",") if n.strip()] if users
             else [f"{prefix}{i:02d}" for i in range(1, (count or 0) + 1)])
    bad = [n for n in names if not settings.STUDENT_NAME.fullmatch(n) or n == "postgres"]
    if bad or not names:
        raise LabError("Learner names must be a lowercase letter followed by up to 30 lowercase\n"
                       "letters, digits or underscores (for example alice or team_2).")
    return names


def learner_url(name: str) -> str:
    """Return the DATABASE_URL a learner's server gets: their role, their password, their database."""
    state = read_secrets()
    password = state.get("learners", {}).get(name)
    if password is None:
        raise LabError(f"No classroom database for {name!r}: run python -m lab_helpers classroom setup --users {name}")
    base = admin_url()
    return (f"postgresql://{name}:{quote(password, safe='')}@{base.host}:{base.port or 5432}/lab_{name}")


READER = "classroom-reader"  # a hyphen: no learner can be named so (settings.STUDENT_NAME)


def ensure_reader(conn: sa.Connection, state: dict) -> None:
    """Create (or repair) the room's read-only role; its password goes into ``state``."""
    if conn.scalar(sa.text("SELECT current_setting('server_version_num')::int")) < 140000:
        raise LabError("The classroom needs PostgreSQL 14 or later: the room is read through pg_read_all_data.",
                       "Use the classroom's own server (python -m lab_helpers classroom server start).")
    password = state.get("reader_password") or secrets.token_urlsafe(18)
    exists = conn.scalar(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :n"), {"n": READER})
    conn.execute(sa.text(f'{"ALTER" if exists else "CREATE"} ROLE "{READER}" LOGIN NOSUPERUSER NOCREATEDB '
                         "NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD " + _literal(password)))
    _exec(conn, f'GRANT pg_read_all_data, pg_read_all_stats TO "{READER}"')
    _exec(conn, f'ALTER ROLE "{READER}" SET default_transaction_read_only = on')
    state["reader_password"] = password


def _exec(conn: sa.Connection, sql: str) -> None:
    conn.exec_driver_sql(sql)


def setup(names: list[str], given: dict | None = None) -> list[str]:
    """Create (or repair) each learner's role and fenced database, and set every learner's limits.

    ``given`` holds the limits named on the command line (None: keep the stored or default one).
    Return one line per learner, then the limits and what the room holds.
    """
    state = read_secrets()
    passwords = state.setdefault("learners", {})
    chosen = limits.chosen(state.get("limits"), **(given or {}))
    lines = []
    eng = database.engine(admin_url())
    try:
        conn = eng.connect().execution_options(isolation_level="AUTOCOMMIT")
    except DBAPIError as exc:
        raise explain(exc, eng.url) from None
    with conn:
        limits.check(conn, chosen)
        ensure_reader(conn, state)
        write_secrets(state)
        for name in names:
            password = passwords.get(name) or secrets.token_urlsafe(18)
            exists = conn.scalar(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :n"), {"n": name})
            verb = "ALTER" if exists else "CREATE"
            conn.execute(sa.text(f'{verb} ROLE "{name}" LOGIN NOSUPERUSER CREATEDB NOCREATEROLE '
                                 "NOREPLICATION NOBYPASSRLS PASSWORD " + _literal(password)))
            db = f"lab_{name}"
            if not conn.scalar(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": db}):
                _exec(conn, f'CREATE DATABASE "{db}" OWNER "{name}"')
            _exec(conn, f'ALTER DATABASE "{db}" OWNER TO "{name}"')
            _exec(conn, f'REVOKE ALL ON DATABASE "{db}" FROM PUBLIC')
            _exec(conn, f'GRANT CONNECT, TEMPORARY ON DATABASE "{db}" TO "{name}"')
            _exec(conn, f'GRANT CONNECT ON DATABASE "{db}" TO "{READER}"')
            with database.engine(eng.url.set(database=db)).connect() as inner:
                inner.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS vector")
                inner.commit()
            passwords[name] = password
            write_secrets(state)
            lines.append(f"{name}: database {db}, role {name} ({'updated' if exists else 'created'})")
        for name in sorted(passwords):  # every learner, so that a re-run keeps the room's limits uniform
            limits.apply(conn, name, chosen)
        state["limits"] = limits.as_state(chosen)
        write_secrets(state)
        lines += [limits.describe(chosen), limits.room_line(conn, len(passwords), chosen)]
    for name in names:  # the pooled admin connections to each lab database are not needed again
        database.engine(eng.url.set(database=f"lab_{name}")).dispose()
    return lines


def _literal(text: str) -> str:
    """Return ``text`` as a SQL string literal (ALTER ROLE ... PASSWORD takes no bind parameter)."""
    return "'" + text.replace("'", "''") + "'"


def teardown(names: list[str]) -> list[str]:
    """Drop each learner's database and role and forget the password; return one line per learner."""
    state = read_secrets()
    lines = []
    with database.engine(admin_url()).connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for name in names:
            owned = conn.scalars(sa.text("SELECT datname FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba "
                                         "WHERE r.rolname = :n"), {"n": name}).all()
            for db in sorted({f"lab_{name}", *owned}):  # lab_<name>, and notebook 9's lab_<name>_nb9_...
                _exec(conn, f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
            _exec(conn, f'DROP ROLE IF EXISTS "{name}"')
            state.get("learners", {}).pop(name, None)
            lines.append(f"{name}: dropped")
    write_secrets(state)
    return lines

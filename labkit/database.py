"""Which database the lab works in, and connecting to it: URL, engine, connection, create-database.

Everything that needs the database (notebooks, the ``alembic`` command line through
``migrations/env.py``, the tests and ``python -m lab_helpers``) resolves it here, so all of
them agree on which server and which database they talk to. Working out the name
(``database_name``) is pure; ``resolve_url`` then starts the embedded server and creates
the database when needed.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from . import sessions, settings
from .diagnose import DUPLICATE_DATABASE, INSUFFICIENT_PRIVILEGE, UNIQUE_VIOLATION, explain, limit_problem, sqlstate
from .errors import LabError
from .postgres import embedded

EMBEDDED_DATABASE = "lab"
URL_EXAMPLE = "postgresql://user:password@host:5432/dbname"
ENCODE_HINT = ("A password with special characters must be URL-encoded:\n"
               "@ as %40, % as %25, : as %3A, / as %2F (urllib.parse.quote(password, safe='')).")

_notebook_database: list[str] = []  # set by start(N, own_database=True): this process's suffix


# --------------------------------------------------------------------------- resolution (pure)

def parse_database_url(raw: str) -> URL:
    """Parse a DATABASE_URL, accepting postgres:// and postgresql://, and use psycopg2."""
    raw = raw.strip()
    # Never echo the text: it may hold a password. An unencoded @ would also split it wrongly.
    authority = raw.split("://", 1)[1].split("?", 1)[0] if "://" in raw else ""
    if authority.count("@") > 1:
        raise LabError("DATABASE_URL has more than one @ before the host.", ENCODE_HINT)
    try:
        url = make_url(raw)
    except (ArgumentError, ValueError):
        raise LabError(f"DATABASE_URL is not a database URL. Expected the form {URL_EXAMPLE}.",
                       ENCODE_HINT) from None
    backend = url.drivername.split("+")[0]
    if backend not in ("postgres", "postgresql"):
        raise LabError(f"DATABASE_URL points at {backend!r}, but this lab needs PostgreSQL.",
                       f"Expected the form {URL_EXAMPLE}.")
    return url.set(drivername="postgresql+psycopg2")


def student_name() -> str | None:
    """Return the validated LAB_STUDENT name, or None when unset (a bad name is a LabError)."""
    return settings.student()


def use_notebook_database(suffix: str | None) -> None:
    """From now on, work in the lab database's per-notebook sibling ``<database>_<suffix>`` (None: stop)."""
    _notebook_database[:] = [suffix] if suffix else []


def database_name(base: str | None) -> str | None:
    """Return the database the lab works in on a server whose own database is ``base``: per LAB_STUDENT and notebook."""
    student = student_name()
    name = f"lab_{student}" if student else base
    if _notebook_database:
        name = f"{name or 'lab'}_{_notebook_database[0]}"
    return name


def lab_owns_database() -> bool:
    """Return whether the lab created the database it works in (embedded ``lab``, ``lab_<student>``, ``*_nbN``).

    Only then may ``goto``/``reset`` drop a ``users`` table without asking whose it is.
    """
    return settings.database_url() is None or student_name() is not None or bool(_notebook_database)


def describe(url: URL) -> str:
    """Return the URL as text with its password shown as ***."""
    return url.render_as_string(hide_password=True)


# --------------------------------------------------------------------------- resolution (with side effects)

def embedded_url() -> URL:
    """Start the embedded server (or reuse the running one) and return its server-level URL."""
    info = embedded.start()
    if info.socket_dir is not None:
        return URL.create("postgresql+psycopg2", username="postgres",
                          database="postgres", query={"host": str(info.socket_dir)})
    return URL.create("postgresql+psycopg2", username="postgres", host=info.hostname,
                      port=info.port, database="postgres")


def resolve_url() -> URL:
    """Return the URL of the lab database: DATABASE_URL or the embedded server, per LAB_STUDENT.

    After ``start(N, own_database=True)`` (or with LAB_PER_NOTEBOOK=1), this process works
    in a sibling database of its own, ``<database>_nbN``, created on first use.
    """
    raw = settings.database_url()
    student_name()  # a bad LAB_STUDENT is refused before any server starts
    base = parse_database_url(raw) if raw else embedded_url().set(database=EMBEDDED_DATABASE)
    if raw is None:
        ensure_database(base.set(database="postgres"), EMBEDDED_DATABASE)
    name = database_name(base.database)
    if name == base.database:
        return base
    ensure_database(base, name)
    return base.set(database=name)


def ensure_database(server_url: URL, name: str) -> None:
    """Create database ``name`` on the server when it does not exist yet."""
    eng = _engine(server_url)
    try:
        with eng.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            exists = conn.scalar(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
            if exists:
                return
            quoted = eng.dialect.identifier_preparer.quote_identifier(name)
            conn.execute(sa.text(f"CREATE DATABASE {quoted}"))
    except DBAPIError as exc:
        if sqlstate(exc) == INSUFFICIENT_PRIVILEGE:
            raise LabError(
                f"Database {name!r} does not exist yet, and user {server_url.username!r} may not create it\n"
                "(creating it needs the CREATEDB privilege).",
                f"Ask the server's admin to run\nALTER ROLE {server_url.username} CREATEDB, or to create {name} "
                "for you.") from None
        # another process created it a moment ago (at the same moment: pg_database's unique index says so)
        if sqlstate(exc) in (DUPLICATE_DATABASE, UNIQUE_VIOLATION):
            return
        raise explain(exc, server_url) from None


# --------------------------------------------------------------------------- connecting

def application_name(role: str | None = None) -> str:
    """Return the application_name the lab's sessions show in pg_stat_activity, e.g. ``lab: alembic``.

    A lock-timeout message names the session holding the lock by it, so a learner can
    tell a notebook's kernel from the ``alembic`` command line.
    """
    if role is None:
        argv0 = Path(sys.argv[0]) if sys.argv and sys.argv[0] else Path("python")
        role = ("notebook" if "ipykernel" in sys.modules else
                "alembic" if "alembic" in (argv0.name, argv0.parent.name) else
                argv0.stem or "python")
    return f"lab: {role}"[:63]


@cache
def _engine(url: URL) -> sa.Engine:
    args = {"connect_timeout": 5, "application_name": application_name()}
    try:
        eng = sa.create_engine(url, connect_args=args, pool_pre_ping=True)
    except NoSuchModuleError:
        raise LabError("psycopg2 is not installed.", "Run pip install -r requirements.txt") from None
    if settings.database_url() is None and url.host is None:
        sa.event.listen(eng, "do_connect", _reviving_connect)
    sessions.install(eng)
    sa.event.listen(eng, "handle_error", _limit_reached)
    return eng


def _limit_reached(context) -> LabError | None:
    """Raise the lab's message in place of a statement stopped by a server limit (statement_timeout, ...).

    On the lab's engines this covers every path at once: ``lab_helpers.query``, ``goto``, a
    migration, and a learner's own code on ``lab_helpers.engine()``. Other errors (a retry
    loop's LockNotAvailable among them) stay the driver's.
    """
    if context.is_pre_ping or context.connection is None or context.original_exception is None:
        return None  # a failure to connect is explain()'s, at connect time
    return limit_problem(context.original_exception, context.engine.url)


def _reviving_connect(dialect, conn_rec, cargs, cparams):
    """Connect to the embedded server; if it died (kill -9, a laptop that slept), start it and retry once."""
    try:
        return dialect.loaded_dbapi.connect(*cargs, **cparams)
    except dialect.loaded_dbapi.OperationalError:
        if embedded.running() is not None:
            raise  # it runs: the problem is elsewhere, and explain() says so
        embedded.start()
        return dialect.loaded_dbapi.connect(*cargs, **cparams)


def engine(url: URL | None = None) -> sa.Engine:
    """Return a shared engine for the lab database (or the given URL)."""
    return _engine(url or resolve_url())


def checked_engine() -> sa.Engine:
    """Return the shared engine for the lab database, having connected once (a short LabError if that fails)."""
    eng = engine()
    check_connection(eng)
    return eng


@contextlib.contextmanager
def connection(handed: sa.Connection | sa.Engine | None = None) -> Iterator[sa.Connection]:
    """Yield ``handed`` if it is a Connection (left open), else a new connection to it or the lab database.

    A failure to connect becomes a short LabError (see ``diagnose.explain``).
    """
    if isinstance(handed, sa.Connection):
        yield handed
        return
    eng = handed if isinstance(handed, sa.Engine) else engine()
    try:
        conn = eng.connect()
    except DBAPIError as exc:
        raise explain(exc, eng.url) from None
    with conn:
        yield conn


def check_connection(eng: sa.Engine) -> None:
    """Connect once, raising a short LabError on any connection problem."""
    with connection(eng):
        pass


def vector_extension(conn: sa.Connection):
    """Return the vector extension's row (default_version, installed_version), or None when unavailable."""
    return conn.execute(sa.text(
        "SELECT default_version, installed_version FROM pg_available_extensions "
        "WHERE name = 'vector'")).first()

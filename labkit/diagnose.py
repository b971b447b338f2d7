"""Driver errors turned into short LabErrors a learner can act on, passwords redacted.

Each function reads the error's SQLSTATE (``pgcode``, the same in every language the server
speaks) and returns a ``LabError(what, fix)``, or None for an error it does not recognise
(the caller then keeps the original). Only libpq's connection-time failures, which carry
no SQLSTATE, are read by their (English) text.
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from . import paths, sessions, settings
from .errors import RUN_DOCTOR, LabError
from .text import first_line, redact


def where(url: sa.URL) -> str:
    """Return a short, password-free name for the server a URL points at."""
    host = url.host or url.query.get("host") or "localhost"
    return f"{host}:{url.port or 5432}" if url.host else f"the local socket in {host}"


def _message(exc: BaseException, url: sa.URL) -> tuple[str, str]:
    """Return a driver error's text, password redacted, and its first non-blank line."""
    text = redact(str(getattr(exc, "orig", exc) or exc), url.password)
    return text, first_line(text, type(exc).__name__)


# SQLSTATE codes (PostgreSQL's errcodes; psycopg2.errors has a class for each). A statement's
# error carries one, in every language the server speaks; libpq's connection-time failures carry
# none, so only those are read by their text (in English: a translated one gets the generic line).
STATEMENT_TIMEOUT = "57014"       # query_canceled: statement_timeout (or a cancel request)
IDLE_IN_TRANSACTION = "25P03"     # idle_in_transaction_session_timeout
CONFIGURATION_LIMIT = "53400"     # configuration_limit_exceeded: temp_file_limit
DISK_FULL = "53100"               # disk_full
LOCK_NOT_AVAILABLE = "55P03"      # lock_not_available: lock_timeout
INSUFFICIENT_PRIVILEGE = "42501"  # insufficient_privilege
DUPLICATE_DATABASE = "42P04"      # duplicate_database
UNIQUE_VIOLATION = "23505"        # unique_violation: also two CREATE DATABASE of one name at once
LIMITS = (STATEMENT_TIMEOUT, IDLE_IN_TRANSACTION, CONFIGURATION_LIMIT, DISK_FULL)


def sqlstate(exc: BaseException) -> str | None:
    """Return the SQLSTATE of a driver error (wrapped by SQLAlchemy or not), or None when it has none."""
    return getattr(getattr(exc, "orig", None) or exc, "pgcode", None)


def known_problem(exc: BaseException, url: sa.URL) -> LabError | None:
    """Return a short LabError for a driver error a learner can fix, or None for any other error."""
    if sqlstate(exc) is not None:
        return limit_problem(exc, url) or migration_problem(exc, url)
    return limit_problem(exc, url) or connect_problem(exc, url)


def limit_problem(exc: BaseException, url: sa.URL) -> LabError | None:
    """Return the lab's message for a statement stopped by one of the server's limits (by SQLSTATE), or None.

    The lab's engines raise these in place of the driver's error (``database.engine``), so a
    learner's query, ``goto`` and a migration all meet the same message.
    """
    code, (_, first), server = sqlstate(exc), _message(exc, url), where(url)
    text = str(getattr(exc, "orig", exc) or exc)
    if code == STATEMENT_TIMEOUT:
        return LabError(f"A statement ran longer than statement_timeout allows on {server} and was cancelled.",
                        "Look for a query that never ends (a join without its condition, a loop, pg_sleep),\n"
                        "fix it, and run the cell again; nothing of that transaction was kept.")
    # libpq often reads the server's FATAL 25P03 only as the closed socket it left: no SQLSTATE then.
    closed = code is None and "server closed the connection unexpectedly" in text
    if code == IDLE_IN_TRANSACTION or closed:
        also = " (or the server restarted)" if closed else ""
        return LabError(f"The server at {server} closed this connection: a transaction left idle past\n"
                        f"idle_in_transaction_session_timeout ends so{also}; anything uncommitted was rolled back.",
                        "Commit or roll back when a cell is done (with engine.begin() as conn: ...), "
                        "then run it again.")
    if code == CONFIGURATION_LIMIT:
        return LabError(f"A query needed more temporary disk on {server} than temp_file_limit allows: {first}",
                        "It was cancelled. Usually a join lacks its condition or a sort holds far more rows\n"
                        "than the lesson uses: check the query, then run it again.")
    if code == DISK_FULL or (code is None and ("No space left on device" in text or "could not extend file" in text)):
        place = f"the data folder {paths.data_root()}" if settings.database_url() is None else f"the server {server}"
        return LabError(f"The disk holding {place} is full: {first}",
                        "Nothing was changed. Free some space, then run the cell or command again.")
    return None


def connect_problem(exc: BaseException, url: sa.URL) -> LabError | None:
    """Return a short LabError for a failure to connect, read from libpq's text (it carries no SQLSTATE), or None."""
    text, first = _message(exc, url)
    server, user, db = where(url), url.username or "(default user)", url.database
    embedded = settings.database_url() is None
    if "password authentication failed" in text or "no password supplied" in text:
        return LabError(f"The server at {server} refused the password for user {user!r}.",
                        "Check the user name and password in DATABASE_URL.")
    if re.search(r'database ".*" does not exist', text):
        return LabError(f"The database {db!r} does not exist on {server}.",
                        f"Create it (createdb {db}) or fix the database name in DATABASE_URL.")
    if "permission denied for database" in text:
        return LabError(f"User {user!r} may not connect to the database {db!r} on {server}: {first}",
                        "On a shared server each learner may use only their own database: "
                        "check the name in DATABASE_URL.")
    if "too many connections for role" in text:
        return LabError(f"User {user!r} holds as many connections as one learner may on {server}"
                        " (its CONNECTION LIMIT).",
                        "Shut down the kernels of notebooks you are not using, and make one engine per\n"
                        "notebook, not one per loop; then run the cell again.")
    if ("could not translate host name" in text or "Connection refused" in text
            or "timeout expired" in text or "No such file or directory" in text
            or "could not connect" in text or "Network is unreachable" in text):
        if embedded:
            return LabError(f"The embedded PostgreSQL server (data folder {paths.data_root()}) is not answering:\n"
                            f"{first}\nIts log is in the data folder's pgdata/log.", RUN_DOCTOR)
        return LabError(f"Cannot reach a PostgreSQL server at {server}: {first}",
                        "Is the server running, and are the host and port in DATABASE_URL right?")
    return None


def _holders(url: sa.URL, statement: str | None) -> list[str]:
    """Return the sessions holding locks in the database at ``url`` (an empty list if that fails too)."""
    eng = sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args={"connect_timeout": 5})
    try:
        with eng.connect() as conn:
            return sessions.blocking_sessions(conn, statement)
    except Exception:  # a second failure while explaining the first: say less, never crash
        return []
    finally:
        eng.dispose()


def migration_problem(exc: BaseException, url: sa.URL) -> LabError | None:
    """Return a short LabError for a fixable error raised while migrating, or None."""
    code, statement = sqlstate(exc), (getattr(exc, "statement", None) or "").upper()
    if code == LOCK_NOT_AVAILABLE:
        holders = _holders(url, getattr(exc, "statement", None))
        who = holders[0] if holders else "another session (it has let go since)"
        more = f" and {len(holders) - 1} more" if len(holders) > 1 else ""
        return LabError(
            f"Gave up waiting for a lock after {settings.lock_timeout()}; nothing was changed. It is held by\n"
            f"{who}{more}.", "End that session's transaction (in a notebook: commit, close the connection, "
            "or restart its kernel), then run this again.")
    if code == INSUFFICIENT_PRIVILEGE and "CREATE EXTENSION" in statement:
        user, db = url.username or "(default user)", url.database
        return LabError(f"User {user!r} may not create the vector extension in database {db!r}: that needs "
                        "a superuser.", "Ask the server's admin to run CREATE EXTENSION vector; once in that "
                        "database, then run the migration again.")
    return None


def explain(exc: DBAPIError | Exception, url: sa.URL) -> LabError:
    """Turn a driver error into a short message that never shows the password."""
    known = known_problem(exc, url)
    if known is not None:
        return known
    _, first = _message(exc, url)
    return LabError(f"Could not use the database {url.database!r} on {where(url)}: {first}")


def short_error(exc: BaseException) -> str:
    """Return an error as one or two lines: the driver's class name and PostgreSQL's message."""
    orig = getattr(exc, "orig", None) or exc
    lines = [ln.rstrip() for ln in str(orig).strip().splitlines() if ln.strip()]
    keep = [lines[0]] + [ln for ln in lines[1:] if ln.startswith(("HINT", "DETAIL"))]
    return f"{type(orig).__name__}: " + "\n".join(keep)

"""Several sessions on one lab database: notebooks that notice drift, one writer at a time.

A learner may run notebook 3 and notebook 4 at once, or the ``alembic`` command line while
a notebook is open. Each notebook's ``start()`` resets the shared database, so the other
notebook's next step would fail deep inside pandas or Alembic. Three things keep that short:

- **Drift.** ``start()`` makes this process *watch* its database: it remembers the revision
  and the identity (oid) of the ``users`` table after each step it takes itself. Every
  transaction of the lab's engine checks them first; so does any SQL error. When another
  session moved the database, the learner gets a two-line ``LabError`` saying where the
  database is now and what to do.
- **One writer at a time.** ``goto`` and every online migration take a transaction-level
  advisory lock first, so a reset and a migration never interleave. A watching notebook's
  transactions hold the same lock in shared mode, so a reset never lands between a drift
  check and the reads after it.
- **No endless waits.** Migrations and resets set ``lock_timeout``; when it fires, the
  message names the session holding the lock (see ``diagnose.migration_problem``).
"""

from __future__ import annotations

import contextlib
import contextvars
import time

import sqlalchemy as sa

from . import settings
from .errors import LabError

WRITER_LOCK = 1145394767  # pg_advisory_xact_lock key shared by goto and migrations ("DEVO")
WRITER_WAIT = "30s"  # a reset or migration of another session normally ends within seconds
PER_NOTEBOOK = settings.PER_NOTEBOOK

_expected: dict[str, tuple[str | None, int | None]] = {}
_drifted: set[str] = set()  # databases another session moved under this process: only start() clears it
_quiet: contextvars.ContextVar[bool] = contextvars.ContextVar("lab_sessions_quiet", default=False)


def take_writer_lock(conn: sa.Connection) -> None:
    """Wait for other resets and migrations of this database, then set this transaction's lock_timeout."""
    conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{WRITER_WAIT}'")
    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({WRITER_LOCK})")
    conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{settings.lock_timeout()}'")


def wants_own_database(own_database: bool | None) -> bool:
    """Return whether a notebook should work in a database of its own (argument, else LAB_PER_NOTEBOOK)."""
    if own_database is not None:
        return own_database
    return settings.per_notebook()


# --------------------------------------------------------------------------- drift

def _key(url: sa.URL) -> str:
    return url.render_as_string(hide_password=False)


def _state(cursor) -> tuple[str | None, int | None]:
    # Read pg_class under this statement's snapshot: to_regclass() consults a cache that may
    # still hold a table another session dropped a moment ago.
    cursor.execute(
        "SELECT (SELECT c.oid FROM pg_class c WHERE c.relname = 'alembic_version' "
        "          AND c.relnamespace = current_schema()::regnamespace), "
        "       (SELECT c.oid FROM pg_class c WHERE c.relname = 'users' "
        "          AND c.relnamespace = current_schema()::regnamespace)")
    version_table, users = cursor.fetchone()
    revision = None
    if version_table is not None:
        cursor.execute("SELECT min(version_num) FROM alembic_version")
        revision = cursor.fetchone()[0]
    return revision, users


def state(conn: sa.Connection) -> tuple[str | None, int | None]:
    """Return (revision, oid of users) as this connection sees them."""
    return _state(conn.connection.dbapi_connection.cursor())


@contextlib.contextmanager
def moving() -> None:
    """Within the block this process moves the database on purpose: no drift checks."""
    token = _quiet.set(True)
    try:
        yield
    finally:
        _quiet.reset(token)


def watch(eng: sa.Engine, found: tuple[str | None, int | None]) -> None:
    """Start watching the database behind ``eng``, from the state this process just left it in."""
    _expected[_key(eng.url)] = found
    _drifted.discard(_key(eng.url))


def remember(eng: sa.Engine, found: tuple[str | None, int | None]) -> None:
    """After this process moved a watched database (goto, a committed migration), keep its new state.

    ``found`` must be read inside the moving transaction, under the writers' lock: read
    after the commit, it could already be another session's. Once this process was told
    that another session moved the database, it keeps saying so: a migration refused for
    drift ends here too, and must not adopt the other session's state (a notebook that
    went on would then write its rows into the other notebook's table).
    """
    if _key(eng.url) in _expected and _key(eng.url) not in _drifted:
        _expected[_key(eng.url)] = found


def _probe(eng: sa.Engine) -> tuple[str | None, int | None]:
    with moving():
        raw = eng.raw_connection()
        try:
            found = _state(raw.cursor())
            raw.rollback()
            return found
        finally:
            raw.close()


def moved_error(database: str | None, expected, found) -> LabError:
    """Return the two-line message for a database another session moved under this notebook."""
    (was, _), (now, _) = expected, found
    where = f"now at {now}" if now else "now empty (no alembic_version)"
    if now == was:
        where += ", rebuilt with a new users table"
    return LabError(
        f"Another session changed the database {database!r} under this notebook: it is {where}"
        f" (this notebook left it at {was or 'base'}).\n"
        "Re-run this notebook from the top, or give each notebook its own database "
        f"({PER_NOTEBOOK}=1 or lab_helpers.start(N, own_database=True); see the README).")


def _check_cursor(url: sa.URL, cursor) -> None:
    expected = _expected.get(_key(url))
    if expected is None:
        return
    found = _state(cursor)
    if found != expected:
        _drifted.add(_key(url))
        raise moved_error(url.database, expected, found)


def _share_writer_lock(cursor) -> None:
    """Hold the writers' lock in shared mode for this transaction, waiting up to WRITER_WAIT.

    While a notebook reads, no other session's reset can land between its drift check and
    its reads (a diagram or table half from one state, half from another).
    """
    deadline = time.monotonic() + int(WRITER_WAIT.rstrip("s"))
    while True:
        cursor.execute(f"SELECT pg_try_advisory_xact_lock_shared({WRITER_LOCK})")
        if cursor.fetchone()[0]:
            return
        if time.monotonic() > deadline:
            raise LabError(f"Another session has been resetting or migrating this database for over\n"
                           f"{WRITER_WAIT}. Let it finish (or restart that kernel), then run this again.")
        time.sleep(0.05)


def install(eng: sa.Engine) -> None:
    """Hook the drift check into an engine's transactions and SQL errors (a no-op until watched)."""

    def on_begin(conn):
        if _key(eng.url) not in _expected or _quiet.get():
            return
        cursor = conn.connection.dbapi_connection.cursor()
        _share_writer_lock(cursor)
        _check_cursor(eng.url, cursor)

    def on_error(context):
        if _key(eng.url) not in _expected or _quiet.get() or context.is_disconnect:
            return None
        try:
            found = _probe(eng)
        except Exception:
            return None
        expected = _expected[_key(eng.url)]
        if found != expected:
            _drifted.add(_key(eng.url))
            raise moved_error(eng.url.database, expected, found) from None
        return None

    sa.event.listen(eng, "begin", on_begin)
    sa.event.listen(eng, "handle_error", on_error)


def check(conn: sa.Connection) -> None:
    """Raise the drift message if another session moved the database this connection uses."""
    _check_cursor(conn.engine.url, conn.connection.dbapi_connection.cursor())


def check_now(eng: sa.Engine) -> None:
    """Raise the drift message if another session moved the watched database behind ``eng`` (a no-op otherwise)."""
    if _key(eng.url) in _expected:
        with eng.connect() as conn, conn.begin():
            pass  # the begin hook does the check


def forget() -> None:
    """Stop watching every database (for tests)."""
    _expected.clear()
    _drifted.clear()


def blocking_sessions(conn: sa.Connection, statement: str | None) -> list[str]:
    """Describe the other sessions holding locks in ``conn``'s database, those on tables the statement names first."""
    sql = sa.text(
        "SELECT a.pid, coalesce(nullif(a.application_name, ''), a.usename) AS app, a.state, "
        "  extract(epoch FROM now() - coalesce(a.state_change, a.backend_start))::int AS secs, "
        "  string_agg(DISTINCT coalesce(c.relname, CASE WHEN l.locktype = 'advisory' "
        "    THEN 'the lab''s writer lock' END), ', ') AS what "
        "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "LEFT JOIN pg_class c ON c.oid = l.relation AND c.relnamespace <> 'pg_catalog'::regnamespace "
        "WHERE l.granted AND l.pid <> pg_backend_pid() AND a.datname = current_database() "
        "  AND (c.oid IS NOT NULL OR (l.locktype = 'advisory' AND l.objid = :key)) "
        "GROUP BY 1, 2, 3, 4 ORDER BY 4 DESC")
    with moving():
        rows = conn.execute(sql, {"key": WRITER_LOCK}).all()
    text = (statement or "").lower()
    rows.sort(key=lambda r: not any(t.strip() in text for t in (r.what or "").split(",")))
    return [f"session {r.pid} (application {r.app!r}, {r.state or 'active'} for {r.secs} s, "
            f"holding {r.what})" for r in rows]

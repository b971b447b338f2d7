"""``migrating(connection)``: the one way the lab moves a database (Alembic's env.py, and ``goto``).

Inside the block:

- **One writer at a time.** It waits (up to ``sessions.WRITER_WAIT``) for any other reset or
  migration of the same database, through the lab's advisory lock. For ``env.py`` on a
  connection of its own the lock is session-level (``pg_try_advisory_lock`` in a loop, committing
  between tries, so a waiter holds no snapshot, as the project template waits), held across every
  revision of the run and released at the end, because ``env.py`` commits each revision on its
  own (``transaction_per_migration=True``). With ``one_transaction=True`` (``goto``), or inside a
  caller's transaction (a rehearsal), it is the transaction-level lock.
- **A lock timeout in every revision.** ``lock_timeout`` (``LAB_LOCK_TIMEOUT``, default 5s) is
  set for the session, so it holds in each revision's transaction; a revision's own
  ``SET LOCAL`` ends with that revision. The connection's previous value is put back at the end.
- **Drift.** A notebook's database that another session moved is refused before anything runs;
  the state this run leaves behind is remembered (even after a failure part-way), so the
  notebook's next step does not call it drift.
- **Short errors.** A Ctrl-C, a lock that timed out or a missing right becomes a short
  ``LabError`` saying where the database is now; any other SQL error keeps its traceback.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import sqlalchemy as sa
from alembic.util import CommandError

from . import sessions, settings
from .diagnose import known_problem, migration_problem
from .errors import LabError


@contextlib.contextmanager
def migrating(connection: sa.Connection, *, check_drift: bool = True, watch: bool = False,
              one_transaction: bool = False) -> Iterator[None]:
    """Run the block as this process's move of the database behind ``connection``.

    By default (``env.py``) the block runs outside any transaction, holding the writers' lock
    and a session lock_timeout, so that Alembic can commit each revision on its own.
    ``one_transaction=True`` (``goto``) runs the block in one transaction that commits on the
    way out. Inside a caller's transaction (a rehearsal), the caller decides what is kept.
    ``check_drift=False`` (a reset) skips the drift check; ``watch=True`` makes this process
    watch the database from the state the block left.
    """
    timeout = settings.lock_timeout()  # a bad LAB_LOCK_TIMEOUT is refused before any lock is taken
    with sessions.moving():
        if connection.in_transaction() or one_transaction:
            with _one_transaction(connection, check_drift, watch):
                yield
            return
        with connection.begin():
            previous = connection.scalar(sa.text("SELECT current_setting('lock_timeout')"))
        try:
            _wait_for_writers(connection)
        except sa.exc.DBAPIError as exc:
            connection.rollback()
            raise migration_problem(exc, connection.engine.url) or exc from None
        try:
            _set(connection, timeout)
            if check_drift:
                sessions.check(connection)  # a notebook's database moved by someone else?
            connection.commit()  # Alembic now begins and commits each revision's transaction
            started = _state(connection)
            with _translated(connection, started):
                yield
        finally:
            connection.rollback()
            found = _state(connection)  # still under the writers' lock: this run's own result
            (sessions.watch if watch else sessions.remember)(connection.engine, found)
            with connection.begin():
                _set(connection, previous)
                connection.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": sessions.WRITER_LOCK})


@contextlib.contextmanager
def _one_transaction(connection: sa.Connection, check_drift: bool, watch: bool) -> Iterator[None]:
    """The whole block in one transaction: the caller's, or one begun here and committed."""
    owned = not connection.in_transaction()
    with _translated(connection, None), (connection.begin() if owned else contextlib.nullcontext()):
        sessions.take_writer_lock(connection)
        if owned and check_drift:
            sessions.check(connection)
        yield
        found = sessions.state(connection)  # under the writers' lock: this run's own result
    if watch:
        sessions.watch(connection.engine, found)
    elif owned:
        sessions.remember(connection.engine, found)


def _wait_for_writers(conn: sa.Connection) -> None:
    """Take the writers' session-level lock, waiting up to WRITER_WAIT with no transaction open.

    pg_try_advisory_lock in a loop, committing between tries, as the project template waits: a
    waiter holds no snapshot, so it cannot deadlock another session's CREATE INDEX CONCURRENTLY
    (a session blocked in pg_advisory_lock holds one, and the index build waits for it).
    """
    deadline = time.monotonic() + int(sessions.WRITER_WAIT.rstrip("s"))
    while not conn.scalar(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": sessions.WRITER_LOCK}):
        conn.commit()  # no transaction, no snapshot, while waiting
        if time.monotonic() > deadline:
            raise LabError(f"Another session has been resetting or migrating this database for over\n"
                           f"{sessions.WRITER_WAIT}. Let it finish (or restart that kernel), then run this again.")
        time.sleep(0.05)
    conn.commit()


def _set(conn: sa.Connection, value: str) -> None:
    """Set lock_timeout for the session: it holds in every later transaction of this connection."""
    conn.execute(sa.text("SELECT set_config('lock_timeout', :v, false)"), {"v": value})


def _state(conn: sa.Connection):
    with conn.begin():
        return sessions.state(conn)


@contextlib.contextmanager
def _translated(connection: sa.Connection, started) -> Iterator[None]:
    """Turn an interrupt or a fixable error into a LabError saying where the database is."""
    try:
        yield
    except KeyboardInterrupt:
        if started is None:  # one transaction: all of it is rolled back
            raise LabError("Interrupted: the migration was rolled back, so the database is where "
                           "it was before.") from None
        raise LabError("Interrupted: the revision being applied was rolled back."
                       + _after(connection, started, " ")) from None
    except sa.exc.DBAPIError as exc:
        known = known_problem(exc, connection.engine.url)  # by SQLSTATE: a limit, a lock, a missing right
        if known is None:
            raise
        raise LabError(str(known) + _after(connection, started, "\n")) from None
    except CommandError as exc:  # a revision refused (a guard, no pgvector): say if earlier ones stayed
        moved = _after(connection, started, "\n", only_if_moved=True)
        if not moved:
            raise
        raise LabError(str(exc) + moved) from None


def _after(connection: sa.Connection, started, sep: str, only_if_moved: bool = False) -> str:
    """Say where a failed run left the database: each revision commits on its own."""
    if started is None:  # one transaction: its rollback undoes all of it
        return ""
    connection.rollback()
    found = _state(connection)
    if found == started:
        return "" if only_if_moved else f"{sep}The database is where it was, at {found[0] or 'base'}."
    return (f"{sep}The revisions before it were committed (each revision commits on its own), "
            f"so the database is now at {found[0] or 'base'}.")

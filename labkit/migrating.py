"""``migrating(connection)``: what the lab's ``env.py`` adds around ``context.run_migrations()``.

One call, so that ``migrations/env.py`` stays Alembic's generic template plus a few marked lines.
Within the block:

- **One writer at a time.** It waits (up to ``sessions.WRITER_WAIT``) for any other reset or
  migration of the same database, through the lab's advisory lock. On a connection of its
  own the lock is session-level (``pg_advisory_lock``), held across every revision of the run
  and released at the end, because ``env.py`` commits each revision on its own
  (``transaction_per_migration=True``). Inside a caller's transaction (``goto``, a rehearsal)
  it is the transaction-level lock, which ends with the caller's transaction.
- **A lock timeout in every revision.** ``lock_timeout`` (``LAB_LOCK_TIMEOUT``, default 5s)
  is set for the session, so it holds in each revision's transaction; a revision's own
  ``SET LOCAL`` ends with that revision. The connection's previous value is put back at the end.
- **Drift.** A notebook's database moved by another session is reported before anything runs,
  and the state this run leaves is remembered, even after a failure part-way.
- **Short errors.** An interrupt, a lock that timed out or a missing right becomes a short
  ``LabError`` saying where the database is now.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import sqlalchemy as sa
from alembic.util import CommandError

from . import runtime, sessions
from .errors import LabError


def _set(conn: sa.Connection, value: str) -> None:
    """Set lock_timeout for the session: it holds in every later transaction of this connection."""
    conn.execute(sa.text("SELECT set_config('lock_timeout', :v, false)"), {"v": value})


def _state(conn: sa.Connection):
    with conn.begin():
        return sessions.state(conn)


@contextlib.contextmanager
def migrating(connection: sa.Connection) -> Iterator[None]:
    """Hold the lab's writer lock and a lock_timeout for the whole run; translate errors on the way out."""
    with sessions.moving():
        if connection.in_transaction():  # a caller's transaction: everything ends with it
            sessions.take_writer_lock(connection)
            with _translated(connection, None):
                yield
            return
        with connection.begin():
            previous = connection.scalar(sa.text("SELECT current_setting('lock_timeout')"))
            _set(connection, sessions.WRITER_WAIT)
        try:
            connection.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": sessions.WRITER_LOCK})
        except sa.exc.DBAPIError as exc:
            connection.rollback()
            with connection.begin():
                _set(connection, previous)
            raise runtime.migration_problem(exc, connection.engine.url) or exc from None
        try:
            _set(connection, sessions.lock_timeout())
            sessions.check(connection)  # a notebook's database moved by someone else?
            connection.commit()  # Alembic now begins and commits each revision's transaction
            started = _state(connection)
            with _translated(connection, started):
                yield
        finally:
            connection.rollback()
            sessions.remember(connection.engine, _state(connection))  # still under the lock
            with connection.begin():
                _set(connection, previous)
                connection.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": sessions.WRITER_LOCK})


@contextlib.contextmanager
def _translated(connection: sa.Connection, started) -> Iterator[None]:
    """Turn an interrupt or a fixable SQL error into a LabError saying where the database is."""
    try:
        yield
    except KeyboardInterrupt:
        if started is None:  # one transaction: all of it is rolled back
            raise LabError("Interrupted: the migration was rolled back, so the database is where "
                           "it was before.") from None
        raise LabError("Interrupted: the revision being applied was rolled back."
                       + _after(connection, started, " ")) from None
    except sa.exc.DBAPIError as exc:
        # A problem the learner can fix (no right to CREATE EXTENSION, a lock held by another
        # session) gets a short message; any other SQL error keeps its traceback and statement.
        known = runtime.migration_problem(exc, connection.engine.url)
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
    if started is None:  # one transaction: the caller's rollback undoes all of it
        return ""
    connection.rollback()
    found = _state(connection)
    if found == started:
        return "" if only_if_moved else f"{sep}The database is where it was, at {found[0] or 'base'}."
    return (f"{sep}The revisions before it were committed (each revision commits on its own), "
            f"so the database is now at {found[0] or 'base'}.")

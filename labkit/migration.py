"""``migrating(connection)``: the one way the lab moves a database (Alembic's env.py, and ``goto``).

Inside the block: one reset or migration at a time per database (the writers' lock), and
never an endless wait for a table lock (``lock_timeout``, whose message names the holder).
A notebook's database that another session moved is refused before anything runs; the state
this run leaves behind is remembered, so the notebook's next step does not call it drift.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import sqlalchemy as sa

from . import sessions
from .diagnose import migration_problem
from .errors import LabError


@contextlib.contextmanager
def migrating(connection: sa.Connection, *, check_drift: bool = True, watch: bool = False) -> Iterator[None]:
    """Run the block as this process's move of the database behind ``connection``, in one transaction.

    Not yet in a transaction, the block gets one that commits on the way out, so the new
    revision is this process's own doing; inside a caller's transaction (a rehearsal), the
    caller decides what is kept. ``check_drift=False`` (a reset) skips the drift check;
    ``watch=True`` makes this process watch the database from the state the block left.
    A Ctrl-C or a fixable SQL error becomes a short LabError (PostgreSQL's DDL is
    transactional, so nothing was changed); any other SQL error keeps its traceback.
    """
    owned = not connection.in_transaction()
    try:
        with sessions.moving(), (connection.begin() if owned else contextlib.nullcontext()):
            sessions.take_writer_lock(connection)
            if owned and check_drift:
                sessions.check(connection)  # a notebook's database moved by someone else?
            yield
            found = sessions.state(connection)  # under the writers' lock: this run's own result
    except KeyboardInterrupt:
        raise LabError("Interrupted: the migration was rolled back, so the database is where it "
                       "was before.") from None
    except sa.exc.DBAPIError as exc:
        known = migration_problem(exc, connection.engine.url)
        if known is None:
            raise
        raise known from None
    if watch:
        sessions.watch(connection.engine, found)
    elif owned:
        sessions.remember(connection.engine, found)

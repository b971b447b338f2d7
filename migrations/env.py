"""Alembic environment for the Database Evolution lab.

It differs from Alembic's generic template in five ways, each for the lab's users:
- the database comes from ``labkit.runtime`` (DATABASE_URL, or the embedded server),
  never from ``alembic.ini``, so no password is written into a file;
- a connection (or engine) handed in through ``config.attributes["connection"]`` is used
  as it is: the Alembic cookbook pattern, used by the notebooks and by test tools;
- a notebook can hand in its phase's model as ``config.attributes["target_metadata"]``;
  otherwise autogenerate compares with the final model;
- logging is configured only for the ``alembic`` command line, never inside a kernel;
- online, it first waits for any other reset or migration of the same database, and gives up on
  a table lock after ``lock_timeout`` with a message naming the session that holds it
  (``labkit.sessions``).
"""

from logging.config import fileConfig

import sqlalchemy as sa
from alembic import context

from labkit import autogen, runtime, sessions
from labkit.errors import LabError
from labkit.models import Base

config = context.config

if config.config_file_name is not None and config.cmd_opts is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

# Test tools (pytest-alembic) set the attribute to None when they have no model of their own.
target_metadata = config.attributes.get("target_metadata") or Base.metadata

CONFIGURE = dict(
    target_metadata=target_metadata,
    render_item=autogen.render_item,
    process_revision_directives=autogen.flag_renames,
    compare_type=True,
)


def run_migrations_offline() -> None:
    """Run migrations in 'offline' mode: write the SQL to standard output, touch no database.

    ``alembic upgrade head --sql`` lands here. Only the PostgreSQL dialect is needed,
    so no server is started.
    """
    context.configure(dialect_name="postgresql", literal_binds=True, **CONFIGURE)
    with context.begin_transaction():
        context.run_migrations()


def _run(connection: sa.Connection) -> None:
    context.configure(connection=connection, **CONFIGURE)
    # Not yet in a transaction: Alembic begins one here and commits it, so the new revision
    # is this process's own doing. Inside a caller's transaction (goto, a rehearsal), the
    # caller decides what is kept.
    owned = not connection.in_transaction()
    try:
        with sessions.moving(), context.begin_transaction():
            # One reset or migration at a time per database, and never an endless wait for a
            # table lock: lock_timeout gives up after a few seconds and names the holder.
            sessions.take_writer_lock(connection)
            if owned:
                sessions.check(connection)  # a notebook's database moved by someone else?
            context.run_migrations()
            found = sessions.state(connection)  # under the writers' lock: this run's own result
    except KeyboardInterrupt:
        # The transaction was rolled back on the way out: DDL in PostgreSQL is transactional.
        raise LabError("Interrupted: the migration was rolled back, so the database is where it "
                       "was before.") from None
    except sa.exc.DBAPIError as exc:
        # A problem the learner can fix (for example no right to CREATE EXTENSION, or a lock
        # held by another session) gets a short message; any other SQL error keeps its
        # traceback, which shows the statement.
        known = runtime.migration_problem(exc, connection.engine.url)
        if known is None:
            raise
        raise known from None
    if owned:
        sessions.remember(connection.engine, found)


def run_migrations_online() -> None:
    """Run migrations in 'online' mode: against a live connection to the lab database.

    A Connection handed in is used inside the caller's transaction; an Engine handed in
    is connected here. Otherwise the lab resolves its database and connects to it.
    """
    with runtime.connection(config.attributes.get("connection")) as connection:
        _run(connection)


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

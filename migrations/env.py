"""Alembic environment for the Database Evolution lab.

It differs from Alembic's generic template in five ways, each for the lab's users:
- the database comes from ``labkit.database`` (DATABASE_URL, or the embedded server),
  never from ``alembic.ini``, so no password is written into a file;
- a connection (or engine) handed in through ``config.attributes["connection"]`` is used
  as it is: the Alembic cookbook pattern, used by the notebooks and by test tools;
- a notebook can hand in its phase's model as ``config.attributes["target_metadata"]``;
  otherwise autogenerate compares with the final model;
- logging is configured only for the ``alembic`` command line, never inside a kernel;
- online, the migrations run inside ``migrating(connection)`` (``labkit.migration``): it first
  waits for any other reset or migration of the same database, and gives up on a table lock
  after ``lock_timeout`` with a message naming the session that holds it.
"""

from logging.config import fileConfig

from alembic import context

from labkit import autogen
from labkit.database import connection as lab_connection
from labkit.migration import migrating
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


def run_migrations_online() -> None:
    """Run migrations in 'online' mode: against a live connection to the lab database.

    A Connection handed in is used inside the caller's transaction; an Engine handed in
    is connected here. Otherwise the lab resolves its database and connects to it.
    """
    with lab_connection(config.attributes.get("connection")) as connection, migrating(connection):
        context.configure(connection=connection, **CONFIGURE)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

"""The template's env.py (project-template/migrations/env.py) plus the lines marked ``# [lab]``.

Notebook 1 explains the lab's lines; notebook 5 explains the template's. The template's own
helpers for the connection, the migration lock, the timeouts and the failure report are left
out: the lab's ``migrating()`` does their work, for the lab's one writers' lock.
"""
from logging.config import fileConfig

from alembic import context
from pgvector.sqlalchemy import BIT, HALFVEC, SPARSEVEC, Vector  # before reflection: autogenerate knows vector

from labkit import autogen, database  # [lab]
from labkit.migration import migrating  # [lab]
from labkit.models import Base  # [lab] the lab's model, in place of your models.py

# this is the Alembic Config object, which provides
# access to the values within the .ini file in use.
config = context.config

# Interpret the config file for Python logging.
# This line sets up loggers basically.
if config.config_file_name is not None and config.cmd_opts is not None:  # the command line only
    fileConfig(config.config_file_name, disable_existing_loggers=False)  # keep others' loggers

# add your model's MetaData object here
# for 'autogenerate' support
target_metadata = config.attributes.get("target_metadata") or Base.metadata  # [lab] a notebook's model

# other values from the config, defined by the needs of env.py,
# can be acquired:
EXCLUDE_TABLES = set(config.get_main_option("exclude_tables", "").split())


def include_name(name, type_, parent_names) -> bool:
    """Autogenerate compares everything but the tables alembic.ini's exclude_tables lists."""
    return not (type_ == "table" and name in EXCLUDE_TABLES)


def render_item(type_, obj, autogen_context):
    """Write pgvector's column types as VECTOR(n), BIT(n) etc., with their import, into a new revision."""
    if type_ == "type" and isinstance(obj, (Vector, HALFVEC, SPARSEVEC, BIT)):
        name = type(obj).__name__
        autogen_context.imports.add(f"from pgvector.sqlalchemy import {name}")
        return f"{name}({obj.length if isinstance(obj, BIT) else obj.dim})"
    return False  # anything else: Alembic's own rendering


def run_migrations_offline() -> None:
    """Run migrations in 'offline' mode.

    This configures the context with just a dialect name: no URL,
    no Engine, no database and no environment variable needed.

    Calls to context.execute() here emit the given string to the
    script output.

    """
    context.configure(
        dialect_name="postgresql",
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        transaction_per_migration=True,
    )

    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run migrations in 'online' mode.

    In this scenario we need an Engine and associate a connection
    with the context: the Engine or Connection handed in through
    config.attributes["connection"] (pytest-alembic's, your code's),
    else a new Engine.

    """
    connectable = config.attributes.get("connection")

    with database.connection(connectable) as connection, migrating(connection):  # [lab] lock, lock_timeout, drift
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            transaction_per_migration=True,
            include_name=include_name,
            compare_server_default=True,
            render_item=render_item,
            process_revision_directives=autogen.flag_renames,  # [lab] drop + add of one type: a rename?
        )

        with context.begin_transaction():  # [lab] migrating() says where a failure left the database
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

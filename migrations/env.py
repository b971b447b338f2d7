"""Alembic's generic env.py (from ``alembic init``) plus the lines marked ``# [lab]``; notebook 1 explains each."""
from logging.config import fileConfig

from alembic import context

from labkit import autogen, database  # [lab]
from labkit.migration import migrating  # [lab]
from labkit.models import Base  # [lab]

# this is the Alembic Config object, which provides
# access to the values within the .ini file in use.
config = context.config

# Interpret the config file for Python logging.
# This line sets up loggers basically.
if config.config_file_name is not None and config.cmd_opts is not None:  # [lab] command line only
    fileConfig(config.config_file_name, disable_existing_loggers=False)  # [lab] keep other loggers

# add your model's MetaData object here
# for 'autogenerate' support
# from myapp import mymodel
# target_metadata = mymodel.Base.metadata
target_metadata = config.attributes.get("target_metadata") or Base.metadata  # [lab]

AUTOGENERATE = dict(render_item=autogen.render_item,  # [lab] pgvector types, with their import
                    process_revision_directives=autogen.flag_renames)  # [lab] drop+add = rename?

# other values from the config, defined by the needs of env.py,
# can be acquired:
# my_important_option = config.get_main_option("my_important_option")
# ... etc.


def run_migrations_offline() -> None:
    """Run migrations in 'offline' mode.

    This configures the context with just a URL
    and not an Engine, though an Engine is acceptable
    here as well.  By skipping the Engine creation
    we don't even need a DBAPI to be available.

    Calls to context.execute() here emit the given string to the
    script output.

    """
    context.configure(
        dialect_name="postgresql",  # [lab] no URL: the SQL needs only the dialect
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        transaction_per_migration=True,  # [lab] as online: BEGIN/COMMIT around each revision
        **AUTOGENERATE,  # [lab]
    )

    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run migrations in 'online' mode.

    In this scenario we need to create an Engine
    and associate a connection with the context.

    """
    connectable = config.attributes.get("connection")  # [lab] handed in (Alembic's cookbook)

    with database.connection(connectable) as connection, migrating(connection):  # [lab]
        context.configure(
            transaction_per_migration=True,  # [lab] each revision commits; its locks end with it
            **AUTOGENERATE,  # [lab]
            connection=connection, target_metadata=target_metadata
        )

        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

"""Alembic's generic env.py (from ``alembic init``), made ready for a team and for production.

What it adds to Alembic's template (the project's README.md explains each):

- the URL from the environment (MY_PROJECT_DATABASE_URL), never from alembic.ini, with a hosting
  dashboard's ``postgres://`` rewritten for psycopg2;
- an Engine, a Connection, or nothing handed in through ``config.attributes["connection"]``
  (pytest-alembic hands an Engine; Alembic's cookbook hands a Connection: hand one on which
  nothing has run yet, or ``commit()`` first. SQLAlchemy begins a transaction at the first
  statement, and in your transaction the whole run commits only when you commit,
  ``autocommit_block()`` fails and the timeouts last until your transaction ends);
- one commit per revision (``transaction_per_migration=True``), with ``lock_timeout`` and
  ``statement_timeout`` set in each revision's transaction (``SET LOCAL``), in ``--sql`` output too;
- one migration at a time per database: a session-level advisory lock, held across the whole
  run and released at the end, waited for without holding a snapshot (every online command
  takes it, ``alembic current`` included). Over a direct connection only: a URL through a
  transaction-pooling PgBouncer is not supported, since its server sessions are shared;
- autogenerate settings: ``include_name``, ``compare_server_default``, pgvector's types.
"""
import contextlib
import os
import sys
import time
from logging.config import fileConfig

from alembic import context
from alembic.util import CommandError
from pgvector.sqlalchemy import BIT, HALFVEC, SPARSEVEC, Vector  # before reflection: autogenerate knows vector
from sqlalchemy import Connection, create_engine, event, pool, text

from models import Base

# this is the Alembic Config object, which provides
# access to the values within the .ini file in use.
config = context.config

# Interpret the config file for Python logging.
# This line sets up loggers basically.
if config.config_file_name is not None and config.cmd_opts is not None:  # the command line only
    fileConfig(config.config_file_name, disable_existing_loggers=False)  # keep others' loggers

# add your model's MetaData object here
# for 'autogenerate' support
target_metadata = Base.metadata

# other values from the config, defined by the needs of env.py,
# can be acquired:
URL_VARIABLE = config.get_main_option("url_variable", "MY_PROJECT_DATABASE_URL")
TIMEOUTS = {name: config.get_main_option(name, "") for name in ("lock_timeout", "statement_timeout")}
LOCK_KEY = int(config.get_main_option("migration_lock_key", "0"))  # 0: no migration lock
LOCK_WAIT = float(config.get_main_option("migration_lock_wait", "600"))  # seconds
EXCLUDE_TABLES = set(config.get_main_option("exclude_tables", "").split())


def database_url() -> str:
    """Return the URL in URL_VARIABLE, a dashboard's postgres:// rewritten for psycopg2."""
    url = os.environ.get(URL_VARIABLE, "").strip()
    if not url:
        sys.exit(f"{URL_VARIABLE} is not set: export it first (see README.md).")
    if url.startswith(("postgres://", "postgresql://")):  # SQLAlchemy: no such dialect; psycopg 3
        url = "postgresql+psycopg2://" + url.split("://", 1)[1]
    return url


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


@contextlib.contextmanager
def connected(connectable):
    """Yield a Connection: the one handed in (left open), or a new one to the handed Engine or URL."""
    if isinstance(connectable, Connection):
        yield connectable
        return
    engine = connectable or create_engine(database_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        yield connection


@contextlib.contextmanager
def migration_lock(connection: Connection):
    """Hold the session-level advisory lock LOCK_KEY for the whole run: one migration at a time.

    It waits with pg_try_advisory_lock, committing between tries, so a waiting replica holds
    no snapshot (a waiting pg_advisory_lock would, and deadlock a CREATE INDEX CONCURRENTLY).
    Every later transaction of the run first checks it is on the session that holds the lock. That
    is a hint, not a guard: a quiet PgBouncer hands back the same session every time (it reuses the
    last one by default), so a clean run through a pooled URL proves nothing, and the pooler lends
    that session, lock and all, to other clients (a second migrator landing on it gets the lock
    too). A pooled URL is not supported. Inside a transaction the caller began, it takes the
    transaction-level lock instead.
    """
    if not LOCK_KEY:
        yield
        return
    if connection.in_transaction():  # the caller's transaction: the lock ends with it
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})
        yield
        return
    deadline, told = time.monotonic() + LOCK_WAIT, False
    try:
        while True:
            locked, session = connection.execute(text("SELECT pg_try_advisory_lock(:k), pg_backend_pid()"),
                                                 {"k": LOCK_KEY}).one()
            connection.commit()  # no transaction, no snapshot, while waiting
            if locked:
                break
            if time.monotonic() > deadline:
                sys.exit(f"Another session held the migration lock for over {LOCK_WAIT:.0f} s (a migration, or "
                         f"a lock a pooled run left). Nothing was changed.")
            if not told:
                print("Waiting for another migration of this database to finish ...", file=sys.stderr)
                told = True
            time.sleep(0.5)
    except KeyboardInterrupt:  # a lock taken as Ctrl+C landed ends with the session, which closes
        sys.exit("Stopped while waiting for the migration lock. Nothing was changed.")

    moved = False  # set when a transaction lands on another session: the lock is not ours to release

    def on_the_locked_session(conn: Connection) -> None:  # a transaction-pooling PgBouncer moves us
        nonlocal moved
        if not moved and conn.scalar(text("SELECT pg_backend_pid()")) != session:
            moved = True  # once: the failure report's own queries may land anywhere
            raise CommandError(f"This run's transactions land on different server sessions: the URL is a "
                               f"pooler's (PgBouncer in transaction mode), which is not supported: the migration "
                               f"lock cannot hold there. Migrate over a direct connection. The lock this run took "
                               f"stays on server session {session}, which the pooler lends to other clients, and "
                               f"every migration waits for it until the pooler closes that session "
                               f"(server_idle_timeout or server_lifetime: ten minutes to an hour by default). "
                               f"RECONNECT on PgBouncer's admin console closes it as soon as it is released, "
                               f"aborting nothing; ending it with pg_terminate_backend would abort the client the "
                               f"pooler hands it to next.")

    event.listen(connection, "begin", on_the_locked_session)
    try:
        on_the_locked_session(connection)  # before any revision runs
        connection.commit()
        yield
    finally:
        event.remove(connection, "begin", on_the_locked_session)
        if not (moved or connection.invalidated):  # Ctrl+C in a statement drops the session, and its lock
            connection.rollback()  # a failed revision leaves its transaction aborted
            unlocked = connection.scalar(text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK_KEY})
            connection.commit()
            if not unlocked:  # another server session: a transaction-pooling PgBouncer between us
                raise CommandError("The migration lock was not ours to release: is the URL a pooler's "
                                   "(PgBouncer in transaction mode)? Migrate over a direct connection.")


@contextlib.contextmanager
def revision_timeouts(connection: Connection):
    """SET LOCAL alembic.ini's lock_timeout and statement_timeout at the start of each transaction.

    With transaction_per_migration=True each revision runs in a transaction of its own, so both
    hold in every revision and end with it; a revision's own SET LOCAL wins for that revision.
    An autocommit_block() runs with the server's settings: SET LOCAL does nothing there (no
    transaction); a revision sets ``SET statement_timeout`` in it, and RESETs it after.
    """
    settings = {name: value for name, value in TIMEOUTS.items() if value}

    def set_local(conn: Connection) -> None:
        if conn.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
            for name, value in settings.items():
                conn.execute(text("SELECT set_config(:n, :v, true)"), {"n": name, "v": value})

    if connection.in_transaction():  # the caller's transaction: set them once, in it
        set_local(connection)
    event.listen(connection, "begin", set_local)
    try:
        yield
    finally:
        event.remove(connection, "begin", set_local)


@contextlib.contextmanager
def saying_where_it_stopped(connection: Connection):
    """On a failure or Ctrl+C, add where the database is now: the revisions before it stay committed."""
    if connection.in_transaction():  # the caller's transaction: all of it commits, or none
        yield
        return
    migration = context.get_context()
    started = migration.get_current_heads()
    try:
        yield
    except (Exception, KeyboardInterrupt) as exc:  # Ctrl+C is not an Exception
        if connection.invalidated:  # Ctrl+C during a statement, or a lost server: no query now
            interrupt = exc  # in an autocommit_block(), SQLAlchemy's PendingRollbackError follows Ctrl+C
            while interrupt is not None and not isinstance(interrupt, KeyboardInterrupt):
                interrupt = interrupt.__context__
            exc = interrupt or exc
            why = ("Ctrl+C took effect as a statement returned (psycopg2 waits for it, so a CREATE INDEX "
                   "CONCURRENTLY it was running has finished), and the session was dropped." if interrupt
                   else "The connection was lost.")
            exc.add_note(f"{why} That revision's transaction is rolled back, unless the statement was its "
                         "COMMIT; what it ran before and in an autocommit_block() is committed, and the "
                         "revisions before it stay committed. Run alembic current to see where the database "
                         "is: a new run starts that revision again from its top, over what it committed.")
            raise exc from None
        connection.rollback()
        now = migration.get_current_heads()
        connection.rollback()
        where = ", ".join(now) or "base"
        if now == started:
            note = f"No revision of this run was committed: the database is still at {where}."
        else:
            note = (f"Each revision commits on its own: the database is now at {where} "
                    f"(this run started at {', '.join(started) or 'base'}).")
        note += (" If the failing revision has an autocommit_block(), what it ran before and in"
                 " the block is committed; a CREATE INDEX CONCURRENTLY that failed while building leaves an"
                 " INVALID index. Before running again, fix what made it fail, and drop (DROP INDEX"
                 " CONCURRENTLY) that index if SELECT indisvalid FROM pg_index WHERE indexrelid ="
                 " to_regclass('its name') says false and pg_stat_progress_create_index shows no build.")
        if isinstance(exc, CommandError):  # the command line prints only its message
            if now == started:  # a refusal before any change (a guard, alembic check): it says so
                raise
            raise CommandError(f"{exc}\n{note}") from None
        exc.add_note(note)  # printed at the end of the traceback
        raise


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

    # the same timeouts as online, in each revision's transaction of the printed SQL (after each BEGIN)
    impl = context.get_context().impl
    emit_begin = impl.emit_begin

    def begin_with_timeouts() -> None:
        emit_begin()
        for name, value in TIMEOUTS.items():
            if value:
                impl.static_output(f"SET LOCAL {name} = '{value}';")

    impl.emit_begin = begin_with_timeouts

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

    with connected(connectable) as connection, migration_lock(connection), revision_timeouts(connection):
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            transaction_per_migration=True,
            include_name=include_name,
            compare_server_default=True,
            render_item=render_item,
        )

        with context.begin_transaction(), saying_where_it_stopped(connection):
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

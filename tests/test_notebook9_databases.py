"""Notebook 9's project databases: made anew, empty, and only ever dropped when the lab made them."""

import threading
import time

import pytest
import sqlalchemy as sa

from labkit import database
from labkit.errors import LabError
from labkit.notebook import history


def test_project_database_is_new_and_empty_on_every_call(student_db):
    """A re-run of the notebook must start from an empty database, not the last run's tables."""
    url = history.project_database("nb9_t")
    eng = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with eng.begin() as conn:
        conn.execute(sa.text("CREATE TABLE leftover (id int)"))
    url = history.project_database("nb9_t")
    with sa.create_engine(url, poolclass=sa.pool.NullPool).connect() as conn:
        assert conn.scalar(sa.text("SELECT count(*) FROM pg_tables WHERE tablename = 'leftover'")) == 0
    assert history.drop_project_database("nb9_t") is True
    assert history.drop_project_database("nb9_t") is False


def test_a_drop_may_wait_past_the_sessions_statement_timeout_which_is_then_back(student_db):
    """DROP DATABASE waits for a checkpoint of the whole server: in the room of 30 that outlasted the
    learners' 2-minute statement_timeout. Here a lock on the database, held 1.5 s by a COMMENT in an
    open transaction, stands in for the slow checkpoint, against a statement_timeout of 500 ms."""
    history.project_database("nb9_t")
    url = database.resolve_url()
    holder = sa.create_engine(url, poolclass=sa.pool.NullPool,
                              connect_args={"options": "-c statement_timeout=0"}).connect()
    with holder.begin():
        holder.execute(sa.text(f'ALTER DATABASE "{url.database}" SET statement_timeout = \'500ms\''))
    database.engine().dispose()  # the lab's sessions start anew, with the 500 ms default
    release = threading.Timer(1.5, holder.commit)
    try:
        holder.execute(sa.text(f'COMMENT ON DATABASE "{url.database}_nb9_t" IS \'{history.DATABASE_MARK}\''))
        release.start()
        started = time.perf_counter()
        assert history.drop_project_database("nb9_t") is True
        assert time.perf_counter() - started > 1.0  # it waited for the lock, past 500 ms
        with database.engine().connect() as conn:
            assert conn.scalar(sa.text("SHOW statement_timeout")) == "500ms"
    finally:
        release.join()
        with holder.begin():
            holder.execute(sa.text(f'ALTER DATABASE "{url.database}" RESET statement_timeout'))
        holder.close()
        database.engine().dispose()


def test_a_database_the_lab_did_not_make_is_never_dropped(student_db):
    """A learner's own database that happens to have the name is refused, with the fix, and kept."""
    name = f"{database.resolve_url().database}_nb9_mine"
    with database.engine().connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        try:
            with pytest.raises(LabError, match="did not make"):
                history.project_database("nb9_mine")
            assert conn.scalar(sa.text("SELECT count(*) FROM pg_database WHERE datname = :n"), {"n": name}) == 1
        finally:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))


def test_a_suffix_that_is_not_a_plain_name_is_refused():
    with pytest.raises(LabError, match="plain database suffix"):
        history.project_database("x; DROP DATABASE lab")


def test_pg_dump_is_new_enough_for_the_lab_server_and_dumps_a_project_database(student_db):
    """Notebook 9's squash proof runs pg_dump --schema-only: an older pg_dump than the server refuses it."""
    import re
    import subprocess

    with database.engine().connect() as conn:
        server_major = conn.scalar(sa.text("SELECT current_setting('server_version_num')::int / 10000"))
    version = subprocess.run([history.pg_dump(), "--version"], capture_output=True, text=True, check=True).stdout
    assert int(re.search(r"(\d+)\.\d+", version).group(1)) >= server_major
    url = sa.make_url(history.project_database("nb9_t"))
    try:
        with sa.create_engine(url, poolclass=sa.pool.NullPool).begin() as conn:
            conn.execute(sa.text("CREATE TABLE dumped (id int)"))
        libpq = sa.URL.create("postgresql", url.username, None, url.host, url.port, url.database, url.query)
        dump = subprocess.run([history.pg_dump(), "--schema-only", libpq.render_as_string()], capture_output=True,
                              text=True, env={"PGPASSWORD": url.password or "", "PATH": ""}, check=True)
        assert "CREATE TABLE public.dumped" in dump.stdout
    finally:
        history.drop_project_database("nb9_t")

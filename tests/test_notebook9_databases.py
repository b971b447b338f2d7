"""Notebook 9's project databases: made anew, empty, and only ever dropped when the lab made them."""

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

"""pytest-alembic's database: MY_PROJECT_TEST_DATABASE_URL, never the one you work in."""
import os
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.config import Config

# The working database's variable is the one env.py reads: alembic.ini's url_variable.
INI = Config(Path(__file__).with_name("alembic.ini"))
WORKING = INI.get_main_option("url_variable", "MY_PROJECT_DATABASE_URL")
KEEP = set(INI.get_main_option("exclude_tables", "").split())  # not your model's: never dropped
TESTING = "MY_PROJECT_TEST_DATABASE_URL"

# Where a connection lands: which server (when it started, its port), which database and schema.
WHERE = sa.text("SELECT pg_postmaster_start_time(), current_setting('port'), "
                "current_database(), current_schema()")


def url_from(variable: str) -> str | None:
    """Return the URL in ``variable``, a dashboard's postgres:// rewritten for psycopg2 (as env.py does)."""
    url = os.environ.get(variable, "").strip()
    if url.startswith(("postgres://", "postgresql://")):
        url = "postgresql+psycopg2://" + url.split("://", 1)[1]
    return url or None


def where(variable: str, url: str) -> tuple:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return tuple(conn.execute(WHERE).one())
    except sa.exc.OperationalError as exc:
        pytest.exit(f"Cannot reach the database of {variable}, so these tests cannot make sure\n"
                    f"{TESTING} is another database:\n{str(exc.orig).strip()}", returncode=2)
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def test_database_url() -> str:
    """MY_PROJECT_TEST_DATABASE_URL, checked once per run to land elsewhere than the working database.

    Another schema of the working database passes the check (notebook 5's lab works that way),
    but extensions and roles belong to the whole database: give the tests a database of their own.
    """
    test_url, working_url = url_from(TESTING), url_from(WORKING)
    if not test_url:
        pytest.exit(f"{TESTING} is not set. These tests drop every table on the way down,\n"
                    "so they need a test database of their own.", returncode=2)
    if not working_url:
        pytest.exit(f"{WORKING} (alembic.ini's url_variable) is not set, so these tests cannot make\n"
                    f"sure {TESTING} is another database: export both.", returncode=2)
    if where(TESTING, test_url) == where(WORKING, working_url):
        pytest.exit(f"{TESTING} names the database of {WORKING}:\n"
                    "refusing to run tests that would empty your working database.", returncode=2)
    return test_url


@pytest.fixture
def alembic_engine(test_database_url):
    """The test database, emptied of its views and tables (alembic_version too): each test starts from nothing."""
    engine = sa.create_engine(test_database_url)
    with engine.begin() as conn:
        inspector = sa.inspect(conn)
        quote = conn.dialect.identifier_preparer.quote
        for view in inspector.get_view_names():  # a view on a table would stop the table's DROP
            conn.execute(sa.text(f"DROP VIEW IF EXISTS {quote(view)} CASCADE"))
        for view in inspector.get_materialized_view_names():
            conn.execute(sa.text(f"DROP MATERIALIZED VIEW IF EXISTS {quote(view)} CASCADE"))
        tables = sa.MetaData()
        tables.reflect(conn)  # its schema's tables, what a crashed run left too
        tables.drop_all(conn, [t for t in tables.sorted_tables if t.schema is None and t.name not in KEEP])
    yield engine
    engine.dispose()

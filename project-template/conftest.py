"""pytest-alembic's database: MY_PROJECT_TEST_DATABASE_URL, never the one you work in."""
import os
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.config import Config

# The working database's variable is the one env.py reads: alembic.ini's url_variable.
WORKING = Config(Path(__file__).with_name("alembic.ini")).get_main_option("url_variable", "MY_PROJECT_DATABASE_URL")
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


def where(url: str) -> tuple:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return tuple(conn.execute(WHERE).one())
    finally:
        engine.dispose()


@pytest.fixture
def alembic_engine():
    """The database pytest-alembic migrates up and down, and empties on the way."""
    test_url, working_url = url_from(TESTING), url_from(WORKING)
    if not test_url:
        pytest.exit(f"{TESTING} is not set. These tests drop every table on the way down,\n"
                    "so they need a test database of their own.", returncode=2)
    if not working_url:
        pytest.exit(f"{WORKING} (alembic.ini's url_variable) is not set, so these tests cannot make\n"
                    f"sure {TESTING} is another database: export both.", returncode=2)
    if where(test_url) == where(working_url):
        pytest.exit(f"{TESTING} names the database of {WORKING}:\n"
                    "refusing to run tests that would empty your working database.", returncode=2)
    engine = sa.create_engine(test_url)
    yield engine
    engine.dispose()

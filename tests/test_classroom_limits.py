"""Per-learner limits on the classroom server (issue 19): one learner cannot lock the room out.

A real classroom server with learners alice and bob, made by ``classroom setup`` with a small
connection limit. Alice opens connections in a loop, as a learner's runaway cell does, and
keeps them; bob must still connect and run notebook 1. The other limits are checked the same
way: each is in effect for a learner's session, and hitting it gives the lab's short message.
No OS users are made here, so this runs for any user.
"""

import json
import os
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

import psycopg2
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

import lab_helpers
from labkit import database, diagnose
from labkit.errors import LabError

from support.classroom import classroom
from support.helpers import REPO, lab, text_of

LIMIT = 4


@pytest.fixture(scope="module")
def room():
    """A running classroom server, alice and bob set up with a connection limit of 4."""
    with classroom("de19l", ["alice", "bob"], "--connection-limit", str(LIMIT)) as env:
        yield env


def secrets_of(room) -> dict:
    return json.loads((Path(room["LAB_CLASSROOM_DIR"]) / "secrets.json").read_text())


def url_of(room, name: str) -> str:
    s = secrets_of(room)
    return f"postgresql://{name}:{quote(s['learners'][name], safe='')}@127.0.0.1:{s['port']}/lab_{name}"


def sa_url(room, name: str) -> sa.URL:
    return sa.make_url(url_of(room, name)).set(drivername="postgresql+psycopg2")


def message(room, name: str, exc: Exception) -> str:
    """Return the lab's own message for a driver error a learner met."""
    return str(diagnose.explain(exc, sa_url(room, name)))


def admin_count(room, name: str) -> int:
    s = secrets_of(room)
    with psycopg2.connect(host="127.0.0.1", port=s["port"], user="postgres", password=s["admin_password"],
                          dbname="postgres") as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_stat_activity WHERE usename = %s", (name,))
        return cur.fetchone()[0]


@pytest.mark.slow
def test_a_learner_holding_every_connection_leaves_the_others_able_to_work(room, tmp_path):
    """Alice's loop gets exactly the configured limit, is told why in a few lines, and bob runs notebook 1."""
    held, refusal = [], None
    try:
        for _ in range(100):  # a runaway loop: a new connection each time, none closed
            try:
                held.append(psycopg2.connect(url_of(room, "alice")))
            except psycopg2.OperationalError as exc:
                refusal = exc
                break
        assert len(held) == LIMIT
        assert admin_count(room, "alice") == LIMIT
        text = message(room, "alice", refusal)
        assert "CONNECTION LIMIT" in text, text
        assert len(text.splitlines()) <= 3, text
        assert secrets_of(room)["learners"]["alice"] not in text
        ran = run_notebook(room, "bob", REPO / "notebooks" / "01_create_users.ipynb", tmp_path)
        assert ran.returncode == 0, text_of(ran)[-3000:]
    finally:
        for conn in held:
            conn.close()


def run_notebook(room, name: str, path: Path, workspace: Path) -> subprocess.CompletedProcess:
    """Execute a notebook in a fresh kernel with the environment the hub gives learner ``name``."""
    env = dict(os.environ, DATABASE_URL=url_of(room, name), LAB_STUDENT=name, LAB_WORKSPACE=str(workspace))
    env.pop("LAB_CLASSROOM_DIR", None)
    code = ("import sys, nbformat, nbclient; nb = nbformat.read(sys.argv[1], 4); "
            "nbclient.NotebookClient(nb, timeout=600, kernel_name='python3', "
            "resources={'metadata': {'path': sys.argv[2]}}).execute()")
    return subprocess.run([os.sys.executable, "-c", code, str(path), str(path.parent)], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=900)


def test_each_learner_session_carries_the_roles_settings(room):
    """statement_timeout, idle_in_transaction_session_timeout and temp_file_limit are the setup's defaults."""
    with psycopg2.connect(url_of(room, "bob")) as conn, conn.cursor() as cur:
        got = []
        for name in ("statement_timeout", "idle_in_transaction_session_timeout", "temp_file_limit"):
            cur.execute(f"SHOW {name}")
            got.append(cur.fetchone()[0])
    assert got == ["2min", "10min", "256MB"]


def test_a_statement_that_runs_too_long_is_cancelled_with_the_labs_message(room):
    """A learner's endless query through lab_helpers.query is cancelled by statement_timeout (set shorter here)."""
    eng = database.engine(sa_url(room, "alice"))  # the lab's engine, as lab_helpers.engine() gives it
    try:
        with eng.connect() as conn:
            conn.exec_driver_sql("SET statement_timeout = '1s'")
            with pytest.raises(LabError) as caught:
                lab_helpers.query("SELECT pg_sleep(30)", conn)
    finally:
        eng.dispose()
    text = str(caught.value)
    assert "statement_timeout" in text, text
    assert len(text.splitlines()) <= 3, text


def test_a_transaction_left_open_is_ended_with_the_labs_message(room):
    """A transaction left idle past idle_in_transaction_session_timeout loses its connection; the lab says so."""
    eng = database.engine(sa_url(room, "alice"))
    try:
        with eng.connect() as conn:
            conn.exec_driver_sql("SET idle_in_transaction_session_timeout = '1s'")
            conn.commit()
            lab_helpers.query("SELECT 1", conn)  # begins a transaction, then leaves it open
            time.sleep(2.5)
            with pytest.raises(LabError) as caught:
                lab_helpers.query("SELECT 2", conn)
    finally:
        eng.dispose()
    text = str(caught.value)
    assert "idle_in_transaction_session_timeout" in text, text
    assert len(text.splitlines()) <= 3, text


def test_limits_are_kept_on_a_rerun_and_temp_file_limit_holds(room):
    """A re-run with a new --temp-file-limit applies it; a later re-run without flags keeps it.

    temp_file_limit needs a superuser to set, so a learner cannot raise it; a sort that spills
    more than it allows is cancelled with the lab's message.
    """
    env = room
    tight = lab("classroom", "setup", "--users", "alice", "--temp-file-limit", "1MB", **env)
    assert tight.returncode == 0, text_of(tight)
    again = lab("classroom", "setup", "--users", "bob", **env)
    assert again.returncode == 0, text_of(again)
    assert "temp_file_limit 1MB" in again.stdout, text_of(again)
    try:
        eng = database.engine(sa_url(room, "alice"))
        try:
            with eng.connect() as conn:
                assert conn.exec_driver_sql("SHOW temp_file_limit").scalar() == "1MB"
                assert conn.exec_driver_sql("SHOW statement_timeout").scalar() == "2min"
                with pytest.raises(DBAPIError) as raised:
                    conn.exec_driver_sql("SET temp_file_limit = '1GB'")
                assert "permission denied" in str(raised.value.orig)
                conn.rollback()
                conn.exec_driver_sql("SET work_mem = '64kB'")
                with pytest.raises(LabError) as caught:
                    lab_helpers.query("SELECT count(*) FROM (SELECT g FROM generate_series(1, 2000000) g "
                                      "ORDER BY g DESC) s", conn)
        finally:
            eng.dispose()
        text = str(caught.value)
        assert "temp_file_limit" in text, text
        assert len(text.splitlines()) <= 3, text
    finally:
        lab("classroom", "setup", "--users", "alice", "--temp-file-limit", "256MB", **env)


def test_a_limit_postgresql_would_refuse_changes_nothing(room):
    """A typo in a flag is refused in a few lines before any role is touched."""
    done = lab("classroom", "setup", "--users", "alice", "--statement-timeout", "forever", **room)
    assert done.returncode == 2, text_of(done)
    assert "statement_timeout" in done.stderr, text_of(done)
    assert len(text_of(done).strip().splitlines()) <= 3, text_of(done)
    assert "Traceback" not in text_of(done)
    with psycopg2.connect(url_of(room, "alice")) as conn, conn.cursor() as cur:
        cur.execute("SHOW statement_timeout")
        assert cur.fetchone()[0] == "2min"

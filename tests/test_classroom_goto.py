"""``classroom goto LEARNER N``: the instructor brings one stuck learner back, and no one else.

A real classroom server with two learners at the end of phase 4. Alice's notebook is a real
kernel (nbclient) that started notebook 4 with her hub environment. While a session of hers
holds a lock, the command refuses and changes nothing; then it brings her to phase 1, as her
own ``goto 1`` would (her role owns what it made), logs who and when, leaves bob's database as
it was, and her kernel's next step gets the lab's short drift message, no traceback. The same
code behind the progress page's button is tested through the real hub in
tests/e2e/test_classroom_goto_page.py.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from test_classroom_progress import as_learner, learner_connection, url_of

from labkit.phases import REVISIONS

from support.classroom import classroom
from support.helpers import assert_short_and_secret_free, lab, text_of

pytestmark = pytest.mark.slow  # a classroom server, two learners at phase 4, a kernel

STATE = """SELECT (SELECT version_num FROM alembic_version), 'users'::regclass::oid,
                  (SELECT tableowner FROM pg_tables WHERE tablename = 'users'), (SELECT count(*) FROM users)"""


def state(env, name: str):
    with contextlib.closing(learner_connection(env, name)) as conn, conn.cursor() as cur:
        cur.execute(STATE)
        return cur.fetchone()


@pytest.fixture(scope="module")
def room():
    with classroom("de25g", ["alice", "bob"]) as env:
        for name in ("alice", "bob"):
            moved = as_learner(env, name, "goto", "4")
            assert moved.returncode == 0, text_of(moved)
        yield env


def test_the_instructor_brings_one_learner_back_and_her_notebook_says_so(room, monkeypatch):
    env = room
    bob_before = state(env, "bob")
    monkeypatch.setenv("PATH", os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]))
    for key, value in (("DATABASE_URL", url_of(env, "alice")), ("LAB_STUDENT", "alice")):
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("LAB_CLASSROOM_DIR", raising=False)
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import lab_helpers\nph = lab_helpers.start(5)"),  # the end of phase 4
        nbformat.v4.new_code_cell("with lab_helpers.engine().connect() as conn:\n"
                                  "    print(conn.exec_driver_sql('SELECT count(*) FROM users').scalar())"),
    ])
    kernel = NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=True)
    with kernel.setup_kernel():
        kernel.execute_cell(nb.cells[0], 0)
        assert not [o for o in nb.cells[0].outputs if o.output_type == "error"], nb.cells[0].outputs
        alice_before = state(env, "alice")
        assert alice_before[0] == REVISIONS[4]

        # A session of alice's holds a lock on users: the instructor is refused, and told why.
        holder = learner_connection(env, "alice", autocommit=False)
        try:
            holder.cursor().execute("LOCK TABLE users IN ACCESS SHARE MODE")
            refused = lab("classroom", "goto", "alice", "1", **env)
            assert refused.returncode == 2, text_of(refused)
            message = assert_short_and_secret_free(refused)
            assert "alice's kernel holds a lock on their database right now: AccessShare on users" in message
            assert "Nothing was changed." in message
        finally:
            holder.close()
        assert state(env, "alice") == alice_before

        unknown = lab("classroom", "goto", "zoe", "1", **env)
        assert unknown.returncode == 2
        assert "There is no learner 'zoe' in this room" in assert_short_and_secret_free(unknown)

        done = lab("classroom", "goto", "alice", "1", **env)
        assert done.returncode == 0, text_of(done)
        assert "'lab_alice' is at the end of phase 1 (0001_create_users), with sample data." in done.stdout
        revision, users_oid, owner, rows = state(env, "alice")
        assert (revision, owner) == (REVISIONS[1], "alice")  # made by her own role, as her goto would
        assert users_oid != alice_before[1]
        assert rows > 0
        assert state(env, "bob") == bob_before  # the other learner untouched

        log = (Path(env["LAB_CLASSROOM_DIR"]) / "interventions.log").read_text().splitlines()
        assert len(log) == 1
        assert " brought alice to phase 1: database 'lab_alice' is at the end of phase 1" in log[0]
        assert "(command line)" in log[0]

        # Her notebook's next step: the lab's drift message, in its two lines, no traceback.
        kernel.execute_cell(nb.cells[1], 1)
        errors = [o for o in nb.cells[1].outputs if o.output_type == "error"]
        assert len(errors) == 1, nb.cells[1].outputs
        shown = "\n".join(errors[0].traceback)
        assert errors[0].ename == "LabError"
        assert shown.startswith("LabError: Another session changed the database 'lab_alice' under this notebook: "
                                f"it is now at {REVISIONS[1]} (this notebook left it at {REVISIONS[4]})."), shown
        assert "Traceback" not in shown
        assert len(shown.splitlines()) <= 3, shown

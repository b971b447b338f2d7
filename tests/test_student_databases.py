"""Per-student databases (LAB_STUDENT): each learner a database of their own, bad names refused."""

import os
import re
import subprocess
import sys
import uuid

import pytest
import sqlalchemy as sa

from labkit import database, phases
from labkit.errors import LabError

from support.helpers import REPO, admin, alembic, drop_database, lab, server_url, text_of
from support.lab_state import alembic_current, assert_at_phase, databases, snapshot

RUN = uuid.uuid4().hex[:8]  # student names unique to this test run
SECRET = "pw_" + RUN + "_Zq9"
HOSTILE = 'x"; drop database postgres; --'


@pytest.fixture
def made():
    """Collect student database names; drop them afterwards."""
    names: list[str] = []
    yield names
    for name in names:
        assert re.fullmatch(r"lab_[a-z][a-z0-9_]{0,30}", name)
        drop_database(name)



def test_two_students_at_different_phases_leave_the_default_database_alone(monkeypatch, made):
    """alice at phase 2 and bob at phase 4, run at the same time, each in a database of their own."""
    monkeypatch.delenv("LAB_STUDENT", raising=False)
    default_url = database.resolve_url()
    before = snapshot(default_url)
    alice, bob = f"alice_{RUN}", f"bob_{RUN}"
    made += [f"lab_{alice}", f"lab_{bob}"]
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    procs = [subprocess.Popen([sys.executable, "-m", "lab_helpers", "goto", phase], cwd=REPO,
                              env=dict(env, LAB_STUDENT=name), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
             for name, phase in ((alice, "2"), (bob, "4"))]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    assert alembic_current(LAB_STUDENT=alice) == phases.REVISIONS[2]
    assert alembic_current(LAB_STUDENT=bob) == phases.REVISIONS[4]
    assert_at_phase(default_url.set(database=f"lab_{alice}"), 2)
    assert_at_phase(default_url.set(database=f"lab_{bob}"), 4)
    assert snapshot(default_url) == before


def test_a_hostile_student_name_is_refused_in_a_few_lines():
    """A name that tries SQL injection must be refused before any SQL runs."""
    before = databases()
    for cli, args in ((lab, ["goto", "1"]), (alembic, ["current"])):
        out = cli(*args, LAB_STUDENT=HOSTILE)
        text = text_of(out)
        assert out.returncode != 0, text
        assert "LAB_STUDENT" in text, text
        assert "Traceback" not in text, text
        assert len(text.strip().splitlines()) <= 4, text
    assert databases() == before


@pytest.mark.parametrize("name", [HOSTILE, "Alice", "1abc", "bob-smith", "a b", "ünï", "a" * 32,
                                  "x;drop", "alice\nbob", "alice;"])
def test_student_names_outside_the_pattern_are_refused(monkeypatch, name):
    """Only [a-z][a-z0-9_]{0,30} is accepted; the check runs before any connection."""
    monkeypatch.setenv("LAB_STUDENT", name)
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")  # never reached
    with pytest.raises(LabError, match="LAB_STUDENT"):
        database.resolve_url()


@pytest.mark.parametrize("name", ["a", "team_2", "a" * 31])
def test_student_names_inside_the_pattern_are_accepted(monkeypatch, name):
    monkeypatch.setenv("LAB_STUDENT", name)
    assert database.student_name() == name


def test_a_student_without_createdb_gets_a_clear_error(made):
    """On a shared server a user without CREATEDB must be told so, and nothing is created."""
    role, student = f"nocreatedb_{RUN}", f"carol_{RUN}"
    made.append(f"lab_{student}")
    with admin() as conn:
        conn.execute(sa.text(f"CREATE ROLE {role} LOGIN NOCREATEDB PASSWORD '{SECRET}'"))
    try:
        url = server_url().set(username=role, password=SECRET).render_as_string(hide_password=False)
        out = lab("goto", "1", DATABASE_URL=url, LAB_STUDENT=student)
        text = text_of(out)
        assert out.returncode != 0, text
        assert "CREATEDB" in text, text
        assert f"lab_{student}" in text, text
        assert SECRET not in text, text
        assert "Traceback" not in text, text
        assert f"lab_{student}" not in databases()
    finally:
        with admin() as conn:
            conn.execute(sa.text(f"DROP ROLE IF EXISTS {role}"))

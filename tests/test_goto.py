"""goto and reset: every phase reached from any other, idempotent, and the same as the alembic CLI sees."""

import sqlalchemy as sa

from labkit import database, phases

from support.helpers import lab
from support.lab_state import alembic_current, assert_at_phase, snapshot


def test_goto_every_phase_and_back(student_db):
    """goto N must land on revision N with phase N's sample data, upwards and downwards."""
    for phase in [1, 2, 3, 4, 3, 2, 1, 0, 4, 0]:
        out = lab("goto", str(phase))
        assert out.returncode == 0, out.stderr
        assert_at_phase(student_db, phase)


def test_goto_3_leaves_alembic_current_at_the_third_revision(student_db):
    """The issue's acceptance line: the alembic command line agrees with goto."""
    assert lab("goto", "3").returncode == 0
    assert alembic_current() == phases.REVISIONS[3]


def test_goto_is_idempotent(student_db):
    """Running goto twice must not double the sample data or move the revision."""
    for phase in (2, 4):
        phases.goto(phase)
        first = snapshot(student_db)
        phases.goto(phase)
        assert snapshot(student_db) == first
        assert_at_phase(student_db, phase)


def test_reset_is_goto_0_and_drops_scratch_tables(student_db):
    """reset must leave exactly what goto 0 leaves, scratch_* experiments included."""
    phases.goto(0)
    empty = snapshot(student_db)
    phases.goto(4)
    with database.engine(student_db).begin() as conn:
        conn.execute(sa.text("CREATE TABLE scratch_drop_add (id int)"))
        conn.execute(sa.text("CREATE TABLE scratch_users_copy AS SELECT * FROM users"))
    out = lab("reset")
    assert out.returncode == 0, out.stderr
    assert snapshot(student_db) == empty
    assert not [t for t in empty["tables"] if t.startswith("scratch_")]
    assert lab("reset").returncode == 0
    assert snapshot(student_db) == empty

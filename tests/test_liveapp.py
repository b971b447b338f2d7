"""The live-application harness (labkit.notebook.liveapp), against the real PostgreSQL.

Recipes in notebooks 3 and 7 claim "no write lost, none failed" while old and new code run
beside each step. That claim is only as good as the counting: these tests check that every
statement is counted once (attempted = committed + failed, and the committed INSERTs are
exactly the rows in the table), that a rejected write is counted with its error class and
phase, that a deploy and a retire switch versions, and that the verdict names rejections.
"""

import pytest
import sqlalchemy as sa

from labkit.notebook import liveapp, project

OLD = liveapp.version("old", "INSERT INTO items (id, score) VALUES (:n, :n % 10)",
                      "SELECT score FROM items WHERE id = :id")
NEW = liveapp.version("new", "INSERT INTO items (id, score, level) VALUES (:n, 1, 'x')",
                      "UPDATE items SET level = 'y' WHERE id = :id")


@pytest.fixture
def engine(student_db):
    """An engine on a fresh schema live_app holding items(id, score) with 100 rows."""
    eng = sa.create_engine(project.project_database_url("live_app"))
    with eng.begin() as conn:
        conn.execute(sa.text("CREATE TABLE items (id integer PRIMARY KEY, score integer)"))
        conn.execute(sa.text("INSERT INTO items SELECT g, g FROM generate_series(1, 100) g"))
    yield eng
    eng.dispose()


def test_every_write_is_counted_and_a_rejected_one_has_its_error_class(engine):
    """Old INSERTs commit until a check needs the new column, then fail with CheckViolation."""
    with liveapp.running(engine, OLD, ids=(1, 100), first=1000) as live:
        live.phase("before")
        live.settle()
        with engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE items ADD COLUMN level text"))
        live.phase("level added")
        live.settle()
        live.phase("adding the check")  # a phase is set before its step: a statement counts where it began
        with engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE items ADD CONSTRAINT level_set CHECK (level IS NOT NULL) NOT VALID"))
        live.phase("check on")
        live.settle()
    tally = live.tally().set_index(["phase", "app", "statement"])
    assert (tally["attempted"] == tally["committed"] + tally["failed"]).all()
    assert tally.loc[("before", "old", "INSERT"), "failed"] == 0
    assert tally.loc[("level added", "old", "INSERT"), "failed"] == 0
    check_on = tally.loc[("check on", "old", "INSERT")]
    assert check_on["failed"] >= 3
    assert check_on["committed"] == 0
    assert check_on["errors"] == "CheckViolation"
    assert tally.loc[("check on", "old", "SELECT"), "failed"] == 0
    with engine.connect() as conn:
        inserted = conn.scalar(sa.text("SELECT count(*) FROM items WHERE id >= 1000"))
    assert inserted == tally.xs("INSERT", level="statement")["committed"].sum()  # none lost, none twice
    assert live.rejected("old") == check_on["failed"]
    assert "check on     old  INSERT  rejected (CheckViolation)" in live.verdict()
    assert "level added  old  INSERT  all committed" in live.verdict()


def test_deploy_and_retire_switch_the_running_code(engine):
    """After deploy(NEW) and retire("old"), only the new code writes, and none of it is rejected."""
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE items ADD COLUMN level text"))
    with liveapp.running(engine, OLD, ids=(1, 100), first=1000) as live:
        live.phase("old only")
        live.settle(2)
        live.deploy(NEW)
        live.retire("old")
        live.phase("new only")
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE items SET level = 'z' WHERE level IS NULL"))
            conn.execute(sa.text("ALTER TABLE items ADD CONSTRAINT level_set CHECK (level IS NOT NULL) NOT VALID"))
        live.settle(3)
    tally = live.tally()
    assert set(tally[tally.phase == "new only"].app) == {"new"}
    assert set(tally[tally.phase == "new only"].statement) == {"INSERT", "UPDATE"}
    assert live.rejected() == 0
    assert tally.attempted.sum() == tally.committed.sum()
    assert not live.threads  # everything stopped when the block ended

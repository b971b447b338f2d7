"""The lab reads Alembic through its public API, and labels only its own advisory lock as its writer lock."""

import sqlalchemy as sa

from labkit import database, phases, sessions
from labkit.classroom import progress
from labkit.notebook import rehearsal


def test_two_heads_in_alembic_version_are_both_reported(student_db):
    """``SELECT version_num`` picked one row at random; Alembic's get_current_heads() reports both."""
    phases.goto(1)
    with database.engine().begin() as conn:
        conn.exec_driver_sql("INSERT INTO alembic_version VALUES ('zz_other_head')")
    with database.engine().connect() as conn:
        assert phases.current_revision(conn) == f"{phases.REVISIONS[1]}, zz_other_head"
    phases.goto(0)
    with database.engine().connect() as conn:
        assert phases.current_revision(conn) is None


def test_offline_sql_goes_to_alembic_s_output_buffer_not_stdout(student_db, tmp_path, capsys):
    """offline_sql hands Alembic an output_buffer: nothing lands on this process's stdout."""
    out = tmp_path / "up.sql"
    sql = rehearsal.offline_sql(phases.config(), f"base:{phases.REVISIONS[1]}", out)
    assert "CREATE TABLE users" in sql
    assert out.read_text().strip() == sql
    assert "CREATE TABLE" not in capsys.readouterr().out


def test_the_progress_page_names_the_writer_lock_by_its_key(student_db):
    """Another advisory lock (a learner's project, the template's env.py) is not the lab's writer lock."""
    eng = database.engine()
    holder = eng.connect()
    raw = eng.raw_connection()
    try:
        holder.exec_driver_sql(f"SELECT pg_advisory_lock({sessions.WRITER_LOCK}), pg_advisory_lock(42), "
                               "pg_advisory_lock(8589934594)")
        pid = holder.scalar(sa.text("SELECT pg_backend_pid()"))
        cur = raw.cursor()
        cur.execute(progress.LOCKS, (sessions.WRITER_LOCK, [pid]))
        labels = sorted(row[3] for row in cur.fetchall())
    finally:
        raw.close()
        holder.close()
    assert labels == ["advisory lock 42", "advisory lock 8589934594", "the lab's writer lock"]

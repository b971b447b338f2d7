"""What env.py's ``migrating(connection)`` promises for a whole ``upgrade`` run (issue 17).

Each revision commits on its own (``transaction_per_migration=True``), so a ``SET LOCAL`` in
a revision ends with that revision, and the lab's own lock_timeout and writer lock must hold
in every later revision of the same run. These tests read that from inside the revisions.
"""

import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from labkit import database, phases, sessions, settings

from support.helpers import REPO

RECORD = (
    "INSERT INTO seen SELECT '{rev}', current_setting('lock_timeout'), s.source, "
    "EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.pid = pg_backend_pid() "
    f"AND l.objid = {sessions.WRITER_LOCK} AND l.granted) "
    "FROM pg_settings s WHERE s.name = 'lock_timeout'")

SETS_ITS_OWN = f'''
from alembic import op

revision = "0005_short_timeout"
down_revision = "0004_settings_and_embedding"
branch_labels = depends_on = None


def upgrade():
    op.execute("SET LOCAL lock_timeout = '2s'")  # notebook 3's advice: ends with this revision
    op.execute("CREATE TABLE seen (revision text, lock_timeout text, source text, writer_lock bool)")
    op.execute({RECORD.format(rev="0005")!r})


def downgrade():
    op.execute("DROP TABLE seen")
'''

READS_IT = f'''
from alembic import op

revision = "0006_later"
down_revision = "0005_short_timeout"
branch_labels = depends_on = None


def upgrade():
    op.execute({RECORD.format(rev="0006")!r})


def downgrade():
    pass
'''


def six_revisions(tmp_path: Path):
    """The four reference revisions plus two that record what they see, in a copy of migrations/."""
    dest = tmp_path / "migrations"
    shutil.copytree(REPO / "migrations", dest, ignore=shutil.ignore_patterns("__pycache__"))
    (dest / "versions" / "0005_short_timeout.py").write_text(SETS_ITS_OWN)
    (dest / "versions" / "0006_later.py").write_text(READS_IT)
    config = phases.config()
    config.set_main_option("script_location", str(dest))
    return config


def seen() -> list[tuple]:
    with database.engine().connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text("SELECT * FROM seen ORDER BY revision"))]


def test_a_later_revision_of_one_run_still_has_the_labs_lock_timeout(student_db, tmp_path):
    """upgrade base->head in one run: revision 0005 sets its own 2s, 0006 sees the lab's again.

    Before issue 17, 0005's lesson ended with RESET lock_timeout, which left every later
    revision of the run with the server default 0 (wait forever).
    """
    command.upgrade(six_revisions(tmp_path), "head")
    lab = settings.lock_timeout()
    assert seen() == [("0005", "2s", "session", True), ("0006", lab, "session", True)]
    assert lab != "0"


def test_the_run_ends_with_its_lock_and_setting_given_back(student_db, tmp_path):
    """A connection handed in gets its own lock_timeout back, and no advisory lock stays held."""
    config = six_revisions(tmp_path)
    with database.engine().connect() as conn:
        conn.exec_driver_sql("SET lock_timeout = '7s'")
        conn.commit()
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
        assert conn.scalar(sa.text("SELECT current_setting('lock_timeout')")) == "7s"
        held = conn.scalar(sa.text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"))
    assert held == 0
    assert [r[0] for r in seen()] == ["0005", "0006"]


BOOM = '''
from alembic import op

revision = "0005_boom"
down_revision = "0004_settings_and_embedding"
branch_labels = depends_on = None


def upgrade():
    raise RuntimeError("boom")


def downgrade():
    pass
'''


def test_a_watching_notebook_is_not_told_it_drifted_after_its_own_failed_run(student_db, tmp_path):
    """0001-0004 commit, 0005 fails: the notebook's own run moved the database, not another session."""
    config = six_revisions(tmp_path)
    versions = Path(config.get_main_option("script_location")) / "versions"
    for name in ("0005_short_timeout.py", "0006_later.py"):
        (versions / name).unlink()
    (versions / "0005_boom.py").write_text(BOOM)
    eng = database.engine()
    with eng.connect() as conn:
        sessions.watch(eng, sessions.state(conn))
    try:
        with pytest.raises(RuntimeError, match="boom"):
            command.upgrade(config, "head")
        sessions.check_now(eng)  # raises the drift message if the failed run was not remembered
        with eng.connect() as conn:
            assert phases.current_revision(conn) == "0004_settings_and_embedding"
    finally:
        sessions.forget()

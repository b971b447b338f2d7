"""The notebook helpers survive what learners do: run a cell twice, or out of order."""

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from labkit import database, paths, phases
from labkit.errors import LabError
from labkit.models import NAMING_CONVENTION
from labkit.notebook import workspace


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    full_name: Mapped[str] = mapped_column(sa.String(100))
    email: Mapped[str | None] = mapped_column(sa.String(255))
    bio: Mapped[str | None] = mapped_column(sa.Text)


REV = phases.REVISIONS[3]


def test_autogenerate_twice_before_the_upgrade_keeps_one_clean_history(student_db):
    """A second autogenerate with the same rev_id must not chain the file onto itself (a cycle)."""
    ph = workspace.start(3, Base.metadata)
    ph.autogenerate("rename", rev_id=REV)
    ph.autogenerate("rename", rev_id=REV)
    script = ScriptDirectory.from_config(ph.cfg)
    assert script.get_heads() == [REV]
    assert script.get_revision(REV).down_revision == phases.REVISIONS[2]
    assert len(list(ph.version_dir.glob("*.py"))) == 3


def test_autogenerate_after_the_upgrade_says_to_start_over(student_db):
    """Once the database is past the revision there is nothing to compare: a short message, not Alembic's."""
    ph = workspace.start(3, Base.metadata)
    ph.autogenerate("rename", rev_id=REV)
    ph.edit(REV, "nullable=False))\n    op.drop_column('users', 'name')",
            "nullable=True))\n    op.drop_column('users', 'name')")
    command.upgrade(ph.cfg, "head")
    with pytest.raises(LabError, match="start this notebook over"):
        ph.autogenerate("rename", rev_id=REV)


def test_edit_twice_changes_nothing_and_a_wrong_edit_is_short(student_db, capsys):
    """Re-running an edit cell is a no-op; an edit whose text is not there says so in two lines."""
    ph = workspace.start(3, Base.metadata)
    ph.autogenerate("rename", rev_id=REV)
    ph.drop_rename_hint(REV)
    old, new = "op.drop_column('users', 'name')", "op.drop_column('users', 'name')  # reviewed"
    ph.edit(REV, old, new)
    once = ph.script(REV).read_text()
    ph.edit(REV, old, new)
    assert ph.script(REV).read_text() == once
    assert "Already edited" in capsys.readouterr().out
    assert "RENAME?" not in once
    with pytest.raises(LabError) as info:
        ph.edit(REV, "op.no_such_call()", "x")
    assert len(str(info.value).splitlines()) == 2


def test_the_workspace_is_a_visible_git_ignored_folder_outside_the_data_folder(student_db):
    """Learners must open the revision they are told to edit: JupyterLab's browser hides dot-folders."""
    import subprocess


    ph = workspace.start(3, Base.metadata)
    relative = ph.version_dir.relative_to(paths.REPO)
    assert not any(part.startswith(".") for part in relative.parts), relative
    assert not ph.version_dir.is_relative_to(paths.data_root())
    ignored = subprocess.run(["git", "check-ignore", "-q", str(ph.version_dir / f"{REV}.py")],
                             cwd=paths.REPO)
    assert ignored.returncode == 0, f"{relative} is not ignored by git"


def test_append_twice_adds_once_and_diff_shows_the_edit(student_db):
    """The guard appended to a revision (notebooks 2 and 4) must survive a cell run twice."""
    ph = workspace.start(3, Base.metadata)
    ph.autogenerate("rename", rev_id=REV)
    ph.append(REV, "\n\ndef helper():\n    return 42\n")
    ph.append(REV, "\n\ndef helper():\n    return 42\n")
    text = ph.script(REV).read_text()
    assert text.count("def helper") == 1
    diff = ph.diff(REV)
    assert diff.startswith("--- as generated\n+++ edited\n")
    assert "+def helper():" in diff
    assert "-" not in diff.split("@@", 2)[2].replace("-> ", "")


class Phase2(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class User2(Phase2):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    email: Mapped[str | None] = mapped_column(sa.String(255))
    bio: Mapped[str | None] = mapped_column(sa.Text)


def test_the_guard_copied_from_the_reference_revision_refuses_a_lossy_downgrade(student_db):
    """Notebook 2's cell: copy refuse_data_loss from ph.reference() into the learner's 0002; it must then work.

    The steps are notebook 2's own (autogenerate, two edits, the append); a downgrade with an
    email in place is refused and the database stays at 0002 with the email kept.
    """
    from alembic.util import CommandError

    rev = phases.REVISIONS[2]
    ph = workspace.start(2, Phase2.metadata)
    ph.autogenerate("add email and bio", rev_id=rev)
    reference = ph.reference(rev).read_text()
    ph.edit(rev, "from alembic import op\n",
            "from alembic import context, op\nfrom alembic.util import CommandError\n")
    ph.edit(rev, '"""Downgrade schema."""\n', '"""Downgrade schema."""\n'
            '    refuse_data_loss("users.email, users.bio", "email IS NOT NULL OR bio IS NOT NULL")\n')
    ph.append(rev, reference[reference.index("\n\ndef refuse_data_loss"):])
    command.upgrade(ph.cfg, "head")
    with database.engine().begin() as conn:
        conn.exec_driver_sql("UPDATE users SET email = 'kept@example.com' WHERE id = 1")
    with pytest.raises(CommandError, match=r"users\.email, users\.bio"):
        command.downgrade(ph.cfg, "-1")
    with database.engine().connect() as conn:
        assert phases.current_revision(conn) == rev
        assert conn.scalar(sa.text("SELECT email FROM users WHERE id = 1")) == "kept@example.com"


# Notebook 4's EXPLAIN shape: an InitPlan (PostgreSQL 18 prints "(InitPlan 1).col1" where 15
# printed "$0") and a disabled Seq Scan (18 adds "Disabled: true").
EXPLAIN = ("EXPLAIN (COSTS OFF) SELECT * FROM t ORDER BY abs(x - (SELECT x FROM t WHERE id = 2)) LIMIT 1")


@pytest.fixture(scope="module")
def postgresql_15():
    """Debian's PostgreSQL 15 (apt-get install postgresql-15), a cluster of this module's own."""
    from support import servers
    from support.prerequisites import skip_or_fail

    if servers.debian_bin(15) is None:
        skip_or_fail("Debian's PostgreSQL 15 is not installed (apt-get install postgresql-15)")
    server = servers.start_server(bin_dir=servers.debian_bin(15))
    yield server
    server.stop()


def _plan(url: sa.URL) -> str:
    eng = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with eng.connect() as conn:
            conn.exec_driver_sql("CREATE TEMP TABLE t (id int PRIMARY KEY, x int)")
            conn.exec_driver_sql("SET enable_seqscan = off")
            return "\n".join(conn.exec_driver_sql(EXPLAIN).scalars())
    finally:
        eng.dispose()


def test_sanitize_makes_explain_from_postgresql_15_and_18_compare_equal(postgresql_15):
    """Notebook 4's plans, printed by the two servers themselves, compare equal after notebooks/sanitize.cfg."""
    import configparser
    import re

    parser = configparser.ConfigParser(interpolation=None)
    parser.read(paths.REPO / "notebooks" / "sanitize.cfg")

    def sanitize(text):
        for section in parser.sections():
            text = re.sub(parser[section]["regex"], parser[section]["replace"], text)
        return text

    pg15, pg18 = _plan(postgresql_15.sa_url()), _plan(database.embedded_url())
    assert "$0" in pg15
    assert "Disabled: true" in pg18  # the embedded server is PostgreSQL 18
    assert sanitize(pg15 + "\n") == sanitize(pg18 + "\n")  # as printed: line by line

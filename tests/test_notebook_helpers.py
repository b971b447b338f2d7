"""The notebook helpers survive what learners do: run a cell twice, or out of order."""

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from labkit import paths, phases
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


def test_a_reference_revision_copied_into_a_workspace_is_the_lab_s_own(student_db):
    """Notebooks copy the inline guard from the reference revision: that file must be where ph says."""
    ph = workspace.start(2)
    assert ph.reference(phases.REVISIONS[2]).read_text().count("def refuse_data_loss") == 1


# The same EXPLAIN (COSTS OFF, enable_seqscan off) on PostgreSQL 15.18 (Debian) and on the
# embedded 18.4, as each printed it.
EXPLAIN_PG15 = """Limit
  InitPlan 1 (returns $0)
    ->  Index Scan using t_pkey on t t_1
          Index Cond: (id = 2)
  ->  Sort
        Sort Key: (abs((t.x - $0)))
        ->  Seq Scan on t"""
EXPLAIN_PG18 = """Limit
  InitPlan 1
    ->  Index Scan using t_pkey on t t_1
          Index Cond: (id = 2)
  ->  Sort
        Sort Key: (abs((t.x - (InitPlan 1).col1)))
        ->  Seq Scan on t
              Disabled: true"""


def test_sanitize_makes_explain_from_postgresql_15_and_18_compare_equal():
    """Notebook 4's plans must not fail nbval on the PostgreSQL 13-16 servers the README allows."""
    import configparser
    import re


    parser = configparser.ConfigParser(interpolation=None)
    parser.read(paths.REPO / "notebooks" / "sanitize.cfg")

    def sanitize(text):
        for section in parser.sections():
            text = re.sub(parser[section]["regex"], parser[section]["replace"], text)
        return text

    assert EXPLAIN_PG15 != EXPLAIN_PG18
    assert sanitize(EXPLAIN_PG15 + "\n") == sanitize(EXPLAIN_PG18 + "\n")  # as printed: line by line

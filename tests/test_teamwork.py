"""Notebook 6, working as a team (issue 18): its claims about Alembic and PostgreSQL, held by tests.

Each test builds a small project the way the notebook does, with the ``env.py`` the notebook
writes out (read from the notebook itself), and runs the real ``alembic`` command line against
a schema of the lab database. nbval compares the notebook's own outputs; these tests guard the
claims behind them when Alembic, PostgreSQL or the notebook's ``env.py`` change.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from lab_helpers import project_database_url

from support.helpers import REPO

NOTEBOOK = REPO / "notebooks" / "06_working_as_a_team.ipynb"
LOCK_LINE = '        connection.execute(sa.text("SELECT pg_advisory_xact_lock(72817)"))\n'

MODELS = '''from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass
'''

REVISION = '''"""{doc}"""
from alembic import op
import sqlalchemy as sa

revision = {rev!r}
down_revision = {down!r}
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute({up!r})


def downgrade() -> None:
    op.execute({down_sql!r})
'''


def notebook_env_py() -> str:
    """Return the env.py that notebook 6 writes out with %%writefile."""
    for cell in nbformat.read(NOTEBOOK, as_version=4).cells:
        if cell.cell_type == "code" and cell.source.startswith("%%writefile migrations/env.py"):
            return cell.source.split("\n", 1)[1] + "\n"
    raise AssertionError("notebook 6 no longer writes migrations/env.py")


def write_revision(folder: Path, rev: str, down: str | None, doc: str, up: str, down_sql: str) -> None:
    (folder / "migrations" / "versions" / f"{rev}.py").write_text(
        REVISION.format(doc=doc, rev=rev, down=down, up=up, down_sql=down_sql))


@pytest.fixture
def team(tmp_path, monkeypatch):
    """A project as notebook 6 makes it: alembic init, the notebook's env.py, a schema of its own."""
    url = project_database_url("test_teamwork")
    monkeypatch.setenv("TEAM_DATABASE_URL", url)
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    command.init(Config(str(tmp_path / "alembic.ini")), str(tmp_path / "migrations"))
    (tmp_path / "migrations" / "env.py").write_text(notebook_env_py())
    (tmp_path / "models.py").write_text(MODELS)
    write_revision(tmp_path, "0001", None, "create users",
                   "CREATE TABLE users (id serial PRIMARY KEY, name text)", "DROP TABLE users")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    yield tmp_path, engine
    engine.dispose()


def alembic(folder: Path, *args: str) -> subprocess.CompletedProcess:
    """Run the alembic command line in the project's folder, as the notebook's ! lines do."""
    return subprocess.run([sys.executable, "-m", "alembic", *args], cwd=folder, capture_output=True,
                          text=True, timeout=120)


def version(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        if conn.scalar(sa.text("SELECT to_regclass('alembic_version')")) is None:
            return []
        return sorted(conn.scalars(sa.text("SELECT version_num FROM alembic_version")))


def add_two_branches(folder: Path) -> None:
    """Alice's and Bob's revisions, both after 0001: the history now has two heads."""
    write_revision(folder, "a1", "0001", "add email", "ALTER TABLE users ADD COLUMN email text",
                   "ALTER TABLE users DROP COLUMN email")
    write_revision(folder, "b1", "0001", "add teams", "CREATE TABLE teams (id serial PRIMARY KEY)",
                   "DROP TABLE teams")


def test_two_heads_stop_upgrade_head_and_the_merge_revision_joins_them(team):
    """The notebook's section 3: upgrade head refuses two heads; alembic merge names both as parents."""
    folder, engine = team
    add_two_branches(folder)
    assert alembic(folder, "upgrade", "a1").returncode == 0  # Alice's branch deployed first
    refused = alembic(folder, "upgrade", "head")
    assert refused.returncode != 0, refused.stderr
    assert "Multiple head revisions" in refused.stderr, refused.stderr
    assert version(engine) == ["a1"]

    assert alembic(folder, "merge", "heads", "-m", "merge", "--rev-id", "m1").returncode == 0
    script = ScriptDirectory(str(folder / "migrations"))
    assert script.get_heads() == ["m1"]
    assert sorted(script.get_revision("m1").down_revision) == ["a1", "b1"]

    upgraded = alembic(folder, "upgrade", "head")
    assert upgraded.returncode == 0, upgraded.stderr
    assert "Running upgrade 0001 -> b1" in upgraded.stderr  # the branch the database had not run
    assert version(engine) == ["m1"]


LEGACY = """
    CREATE TABLE customers (id serial PRIMARY KEY, name varchar(100) NOT NULL);
    INSERT INTO customers (name) SELECT 'Customer ' || i FROM generate_series(1, 500) i;
"""
CHECKSUM = "SELECT count(*) || ' ' || md5(string_agg(c::text, '|' ORDER BY id)) FROM customers c"
SHOP_MODELS = '''from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
'''


def test_a_baseline_applied_instead_of_stamped_fails_whole_and_stamp_keeps_every_row(team):
    """The notebook's section 5: upgrade on the existing tables rolls back whole; stamp changes no row."""
    folder, engine = team
    (folder / "models.py").write_text(SHOP_MODELS)
    write_revision(folder, "0001", None, "baseline",
                   "CREATE TABLE customers (id serial PRIMARY KEY, name varchar(100) NOT NULL)",
                   "DROP TABLE customers")
    with engine.begin() as conn:
        conn.exec_driver_sql(LEGACY)
        before = conn.scalar(sa.text(CHECKSUM))

    applied = alembic(folder, "upgrade", "head")
    assert applied.returncode != 0, applied.stderr
    assert "DuplicateTable" in applied.stderr, applied.stderr
    assert version(engine) == []  # not even alembic_version survived the rollback
    with engine.connect() as conn:
        assert conn.scalar(sa.text(CHECKSUM)) == before

    assert alembic(folder, "stamp", "head").returncode == 0
    assert version(engine) == ["0001"]
    checked = alembic(folder, "check")
    assert checked.returncode == 0, checked.stderr
    with engine.connect() as conn:
        assert conn.scalar(sa.text(CHECKSUM)) == before


def race(folder: Path, engine: sa.Engine) -> list[tuple[int, str]]:
    """Start two `alembic upgrade head` while this test holds `users`; return (exit, output), sorted."""
    env = dict(os.environ, PGAPPNAME="test-replica")
    waiting = sa.text("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'test-replica' "
                      "AND wait_event_type = 'Lock'")
    with engine.begin() as conn:
        conn.execute(sa.text("LOCK TABLE users IN ACCESS EXCLUSIVE MODE"))
        replicas = [subprocess.Popen([sys.executable, "-m", "alembic", "upgrade", "head"], cwd=folder, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                    for _ in range(2)]
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not any(r.poll() is not None for r in replicas):
            with engine.connect() as watcher:
                if watcher.scalar(waiting) == 2:
                    break
            time.sleep(0.1)
    return sorted((r.wait(timeout=120), r.stdout.read()) for r in replicas)


@pytest.mark.slow  # seven alembic processes, four of them racing
def test_two_concurrent_upgrades_collide_without_the_lock_and_queue_with_it(team):
    """The notebook's section 6: without the advisory lock one replica fails; with it, both succeed."""
    folder, engine = team
    add_two_branches(folder)
    write_revision(folder, "m1", ("a1", "b1"), "merge", "SELECT 1", "SELECT 1")
    assert alembic(folder, "upgrade", "0001").returncode == 0

    (ok, _), (failed, log) = race(folder, engine)
    assert (ok, failed) == (0, 1), log
    assert "psycopg2.errors" in log, log
    assert version(engine) == ["m1"]

    env_py = folder / "migrations" / "env.py"
    text = env_py.read_text()
    anchor = "    with context.begin_transaction():\n        context.run_migrations()\n\n\ndef run_migrations_online"
    assert text.count(anchor) == 1, "the notebook's env.py changed: update the lock exercise and this test"
    env_py.write_text(text.replace(anchor, anchor.replace("():\n", "():\n" + LOCK_LINE, 1)))
    assert alembic(folder, "downgrade", "0001").returncode == 0

    (first, log1), (second, log2) = race(folder, engine)
    assert (first, second) == (0, 0), log1 + log2
    ran = sorted(log.count("Running upgrade") for log in (log1, log2))
    assert ran == [0, 3], log1 + log2  # one ran the three revisions, the other found nothing to do
    assert version(engine) == ["m1"]

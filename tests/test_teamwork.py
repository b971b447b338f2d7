"""Notebook 6, working as a team: its claims about Alembic and PostgreSQL, held by tests.

Each test builds a project the way the notebook does, as a copy of ``project-template/`` (the
one ``env.py`` the series teaches), and runs the real ``alembic`` command line against a schema
of the lab database, or Alembic's own API where the notebook uses it. nbval compares the
notebook's outputs; these tests guard the claims behind them when Alembic, PostgreSQL or the
template change.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from lab_helpers import project_database_url

from support.helpers import REPO

TEMPLATE = REPO / "project-template"

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


def write_revision(folder: Path, rev: str, down, doc: str, up: str, down_sql: str) -> None:
    (folder / "migrations" / "versions" / f"{rev}.py").write_text(
        REVISION.format(doc=doc, rev=rev, down=down, up=up, down_sql=down_sql))


@pytest.fixture
def team(tmp_path, monkeypatch):
    """A project as notebook 6 makes it: a copy of the template, its URL in a schema of its own."""
    url = project_database_url("test_teamwork")
    monkeypatch.setenv("MY_PROJECT_DATABASE_URL", url)
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    folder = tmp_path / "main"
    shutil.copytree(TEMPLATE, folder)
    write_revision(folder, "0001", None, "create users",
                   "CREATE TABLE users (id serial PRIMARY KEY, name text)", "DROP TABLE users")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    yield folder, engine
    engine.dispose()


def alembic(folder: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the alembic command line in the project's folder, as the notebook's ! lines do."""
    return subprocess.run([sys.executable, "-m", "alembic", *args], cwd=folder, capture_output=True,
                          text=True, timeout=120, env=env)


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
    """Section 3: upgrade head refuses two heads; alembic merge names both as parents."""
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


def test_a_copy_without_the_merge_cannot_locate_the_database_revision_until_it_pulls_it(team, tmp_path):
    """Section 3: once a merge reached the shared database, an unmerged copy fails; copying the files in fixes it."""
    folder, engine = team
    bob = tmp_path / "bob"
    shutil.copytree(folder, bob)  # Bob's copy: 0001 only, no merge
    add_two_branches(folder)
    write_revision(folder, "m1", ("a1", "b1"), "merge", "SELECT 1", "SELECT 1")
    assert alembic(folder, "upgrade", "head").returncode == 0

    lost = alembic(bob, "current")
    assert lost.returncode != 0
    assert "Can't locate revision identified by 'm1'" in lost.stderr, lost.stderr
    assert version(engine) == ["m1"]  # nothing changed in the database

    for rev in ("a1", "b1", "m1"):  # what `git merge main` brings into Bob's copy
        shutil.copy(folder / "migrations" / "versions" / f"{rev}.py", bob / "migrations" / "versions")
    found = alembic(bob, "current")
    assert found.returncode == 0, found.stderr
    assert "m1 (head)" in found.stdout


LEGACY = """
    CREATE TABLE customers (id serial PRIMARY KEY, name varchar(100) NOT NULL);
    INSERT INTO customers (name) SELECT 'Customer ' || i FROM generate_series(1, 500) i;
"""
CHECKSUM = "SELECT count(*) || ' ' || md5(string_agg(c::text, '|' ORDER BY id)) FROM customers c"
SHOP_MODELS = '''from sqlalchemy import MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention={"pk": "%(table_name)s_pkey"})


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
'''


def test_a_baseline_applied_instead_of_stamped_fails_whole_and_stamp_keeps_every_row(team):
    """Section 5: upgrade on the existing tables rolls back whole; stamp changes no row; check agrees."""
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


ADVISORY = sa.text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = :pid")


def test_a_transaction_level_lock_ends_with_the_first_revision_and_in_autocommit_block():
    """Section 6: why the template holds a session-level lock, as the notebook shows it with MigrationContext."""
    engine = sa.create_engine(project_database_url("test_teamwork_locks"), poolclass=sa.pool.NullPool)
    for block in (False, True):
        with engine.connect() as replica, engine.connect() as observer:
            pid = replica.connection.dbapi_connection.get_backend_pid()
            migration = MigrationContext.configure(replica, opts={"transaction_per_migration": True})
            with migration.begin_transaction(_per_migration=True):
                replica.execute(sa.text("SELECT pg_advisory_xact_lock(72817)"))
                assert observer.scalar(ADVISORY, {"pid": pid}) == 1
                if block:
                    with migration.autocommit_block():
                        assert observer.scalar(ADVISORY, {"pid": pid}) == 0
            with migration.begin_transaction(_per_migration=True):
                assert observer.scalar(ADVISORY, {"pid": pid}) == 0
        with engine.connect() as replica, engine.connect() as observer:  # the session-level lock stays
            pid = replica.connection.dbapi_connection.get_backend_pid()
            replica.execute(sa.text("SELECT pg_advisory_lock(72817)"))
            replica.commit()
            replica.execute(sa.text("SELECT 1"))
            assert observer.scalar(ADVISORY, {"pid": pid}) == 1
            replica.execute(sa.text("SELECT pg_advisory_unlock(72817)"))
    engine.dispose()


def test_what_autogenerate_does_not_compare_with_the_installed_alembic():
    """Section 4's list: CHECK (opt-in plugin), primary keys, ENUM values and lone sequences are not compared."""
    engine = sa.create_engine(project_database_url("test_teamwork_probe"), poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TYPE mood AS ENUM ('happy', 'sad')"))
        conn.execute(sa.text("CREATE SEQUENCE invoice_numbers"))
        conn.execute(sa.text("CREATE TABLE probe (id int CONSTRAINT pk_probe PRIMARY KEY, code int NOT NULL, "
                             "mood mood, CONSTRAINT ck_probe_code_positive CHECK (code > 0))"))

    def model(check=True, key="id", moods=("happy", "sad")):
        table = sa.Table("probe", sa.MetaData(), sa.Column("id", sa.Integer, nullable=False),
                         sa.Column("code", sa.Integer, nullable=False),
                         sa.Column("mood", sa.Enum(*moods, name="mood")), sa.PrimaryKeyConstraint(key, name="pk_probe"))
        if check:
            table.append_constraint(sa.CheckConstraint("code > 0", name="ck_probe_code_positive"))
        return table.metadata

    def diff(metadata, **opts):
        with engine.connect() as conn:
            return compare_metadata(MigrationContext.configure(conn, opts=opts), metadata)

    assert diff(model()) == []  # the lone sequence is not reported either
    assert diff(model(check=False)) == []
    plugin = diff(model(check=False), autogenerate_plugins=["alembic.autogenerate.*",
                                                            "alembic.ext.checkconstraint_byname"])
    assert [d[0] for d in plugin] == ["remove_constraint"]
    assert diff(model(key="code")) == []
    assert diff(model(moods=("happy", "sad", "calm"))) == []
    engine.dispose()


def race(folder: Path, engine: sa.Engine) -> list[tuple[int, str]]:
    """Start two `alembic upgrade head` while this test holds `users`; return (exit, output), sorted.

    It lets go once one replica is blocked on `users` (after its first revision committed) and the
    other has tried the migration lock, or both are blocked (no lock), or either has ended.
    """
    env = dict(os.environ, PGAPPNAME="test-replica")
    blocked = sa.text("SELECT count(*) FILTER (WHERE wait_event_type = 'Lock'), "
                      "count(*) FILTER (WHERE query LIKE '%pg_try_advisory_lock%' OR query = 'COMMIT') "
                      "FROM pg_stat_activity WHERE application_name = 'test-replica'")
    with engine.begin() as conn:
        conn.execute(sa.text("LOCK TABLE users IN ACCESS EXCLUSIVE MODE"))
        replicas = [subprocess.Popen([sys.executable, "-m", "alembic", "upgrade", "head"], cwd=folder, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                    for _ in range(2)]
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not any(r.poll() is not None for r in replicas):
            with engine.connect() as watcher:
                locked, trying = watcher.execute(blocked).one()
                if (locked, trying) == (1, 1) or locked == 2:  # with the lock; without it
                    break
            time.sleep(0.1)
    return sorted((r.wait(timeout=120), r.stdout.read()) for r in replicas)


@pytest.mark.slow  # four alembic processes, racing in pairs
def test_the_templates_session_lock_keeps_two_concurrent_upgrades_apart_and_without_it_one_fails(team):
    """Section 6: with the template's lock both replicas exit 0, one running every revision; lock off, one fails."""
    folder, engine = team
    write_revision(folder, "b1", "0001", "add teams", "CREATE TABLE teams (id serial PRIMARY KEY)",
                   "DROP TABLE teams")
    write_revision(folder, "a1", "b1", "add email", "ALTER TABLE users ADD COLUMN email text",
                   "ALTER TABLE users DROP COLUMN email")
    write_revision(folder, "c1", "a1", "add level", "ALTER TABLE users ADD COLUMN level int",
                   "ALTER TABLE users DROP COLUMN level")
    ini = folder / "alembic.ini"
    assert "\nmigration_lock_key = " in ini.read_text(), "the template's lock setting moved: update this test"
    assert "\nlock_timeout = " in ini.read_text()
    ini.write_text(ini.read_text().replace("\nlock_timeout = ", "\nlock_timeout = 60s\n# was: "))  # a slow CI
    assert alembic(folder, "upgrade", "0001").returncode == 0

    (first, log1), (second, log2) = race(folder, engine)
    assert (first, second) == (0, 0), log1 + log2
    ran = sorted(log.count("Running upgrade") for log in (log1, log2))
    assert ran == [0, 3], log1 + log2  # one ran the three revisions, the other found nothing to do
    assert version(engine) == ["c1"]

    assert alembic(folder, "downgrade", "0001").returncode == 0
    text = ini.read_text()
    start = text.index("\nmigration_lock_key = ") + 1
    ini.write_text(text[:start] + "migration_lock_key = 0" + text[text.index("\n", start):])
    (ok, _), (failed, log) = race(folder, engine)
    assert (ok, failed) == (0, 1), log
    assert "psycopg2.errors" in log, log

"""The reference revision chain: four revisions that provably lose nothing.

Every test here runs against real PostgreSQL with pgvector, in a database of its own
(the ``student_db`` fixture). Data tests follow the shape: migrate up to just before a
revision, insert rows, migrate up one, assert on the rows.
"""

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.operations import ops
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from pytest_alembic.tests import (  # noqa: F401  (collected as tests of this module)
    test_model_definitions_match_ddl,
    test_single_head_revision,
    test_up_down_consistency,
    test_upgrade,
)
from sqlalchemy.orm import Session

from labkit import autogen, database, phases
from labkit.models import Base, User

from support.helpers import REPO, alembic, assert_short_and_secret_free, text_of

R1, R2, R3, R4 = (phases.REVISIONS[n] for n in range(1, 5))
COLUMNS = {
    None: None,
    R1: ["id", "name"],
    R2: ["id", "name", "email", "bio"],
    R3: ["id", "full_name", "email", "bio"],
    R4: ["id", "full_name", "email", "bio", "settings", "embedding"],
}


# --------------------------------------------------------------------------- helpers

def cfg(**attributes):
    """An Alembic Config for the lab; env.py resolves the test's own database itself."""
    config = phases.config()
    config.attributes.update(attributes)
    return config


def eng() -> sa.Engine:
    return database.engine()


def columns() -> list[str] | None:
    """The users table's columns in order, or None when there is no users table."""
    with eng().connect() as conn:
        insp = sa.inspect(conn)
        if not insp.has_table("users"):
            return None
        return [c["name"] for c in insp.get_columns("users")]


def version() -> str | None:
    with eng().connect() as conn:
        return phases.current_revision(conn)


def rows(sql: str) -> list[tuple]:
    with eng().connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql))]


def execute(sql: str, params=None) -> None:
    with eng().begin() as conn:
        conn.execute(sa.text(sql), params or {})


# --------------------------------------------------------------------------- the history

def test_history_is_four_fixed_revisions_in_order():
    """Prose and notebooks name revisions by id, so the ids, files and order are fixed."""
    script = ScriptDirectory.from_config(cfg())
    assert script.get_heads() == [R4]
    walked = [rev.revision for rev in script.walk_revisions("base", "heads")]
    assert walked == [R4, R3, R2, R1]
    for rev in script.walk_revisions():
        assert Path(rev.path).name == f"{rev.revision}.py"
        assert rev.doc, f"{rev.revision} needs a docstring saying what and why"


def test_reference_revisions_import_nothing_from_the_lab():
    """A revision that imports application code breaks the history the day that code changes."""
    for path in sorted((REPO / "migrations" / "versions").glob("*.py")):
        imports = re.findall(r"^\s*(?:from|import)\s+([\w.]+)", path.read_text(), re.MULTILINE)
        assert imports, path
        assert not [m for m in imports if m.split(".")[0] in ("labkit", "lab_helpers")], path.name


def test_base_head_base_head(student_db):
    """A chain that cannot be replayed after a full downgrade is broken; do it twice."""
    for _ in range(2):
        command.upgrade(cfg(), "head")
        assert columns() == COLUMNS[R4]
        assert version() == R4
        command.downgrade(cfg(), "base")
        assert columns() is None
        assert version() is None
    command.upgrade(cfg(), "head")
    assert columns() == COLUMNS[R4]


def test_every_step_up_and_down_is_consistent(student_db):
    """Each revision, alone, leads to exactly the schema the next one expects, both ways."""
    order = [R1, R2, R3, R4]
    for rev in order:
        command.upgrade(cfg(), "+1")
        assert version() == rev
        assert columns() == COLUMNS[rev]
    for rev in reversed(order):
        command.downgrade(cfg(), "-1")
        below = order[order.index(rev) - 1] if rev != R1 else None
        assert version() == below
        assert columns() == COLUMNS[below]


def test_head_has_the_index_and_keeps_the_extension_on_downgrade(student_db):
    """Phase 4 must add an HNSW cosine index, and its downgrade leaves the extension alone."""
    command.upgrade(cfg(), "head")
    (indexdef,) = rows("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_users_embedding'")[0]
    assert "USING hnsw (embedding vector_cosine_ops)" in indexdef
    assert rows("SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                "WHERE attrelid = 'users'::regclass AND attname = 'embedding'") == [("vector(384)",)]
    assert rows("SELECT column_default FROM information_schema.columns "
                "WHERE table_name = 'users' AND column_name = 'settings'") == [("'{}'::jsonb",)]
    command.downgrade(cfg(), R3)
    assert rows("SELECT count(*) FROM pg_indexes WHERE indexname = 'ix_users_embedding'") == [(0,)]
    assert rows("SELECT extname FROM pg_extension WHERE extname = 'vector'") == [("vector",)]


def test_model_matches_the_ddl_at_head(student_db):
    """`alembic check` must be clean at head: the final model and the revisions agree."""
    command.upgrade(cfg(), "head")
    with eng().connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(ctx, Base.metadata) == []
    command.check(cfg())  # raises AutogenerateDiffsDetected on any difference


# --------------------------------------------------------------------------- data survives

NAMES = ["Ada Lovelace", "O'Brien", "Zoë Ångström", "李雷", "  two  spaces  ", "x" * 100]


def test_names_survive_the_rename_both_ways(student_db):
    """Autogenerate would drop `name` and add `full_name`; the hand-edited rename keeps every value."""
    command.upgrade(cfg(), R2)
    for i, name in enumerate(NAMES):
        execute("INSERT INTO users (name, email) VALUES (:n, :e)", {"n": name, "e": f"u{i}@example.org"})
    before = rows("SELECT id, name, email, bio FROM users ORDER BY id")

    command.upgrade(cfg(), R3)
    assert rows("SELECT id, full_name, email, bio FROM users ORDER BY id") == before

    command.upgrade(cfg(), "head")
    command.downgrade(cfg(), R3)  # settings are all '{}' and no embeddings: nothing to refuse
    command.downgrade(cfg(), R2)
    assert columns() == COLUMNS[R2]
    assert rows("SELECT id, name, email, bio FROM users ORDER BY id") == before


def test_phase2_keeps_existing_rows_and_adds_nullable_columns(student_db):
    """Phase 2 runs on a table with rows: the new columns must be nullable, the rows untouched."""
    command.upgrade(cfg(), R1)
    execute("INSERT INTO users (name) VALUES ('Grace Hopper'), ('Alan Turing')")
    command.upgrade(cfg(), R2)
    assert rows("SELECT name, email, bio FROM users ORDER BY id") == [
        ("Grace Hopper", None, None), ("Alan Turing", None, None)]


JSON_VALUES = [
    {},
    {"theme": "dark", "language": "en-GB", "beta": True, "n": 3, "ratio": 0.1, "tiny": 1e-7},
    {"nested": {"list": [1, "two", None, False, {"deep": []}]}, "unicode": "Zoë ☃ 李"},
    {"big": 12345678901234567890, "negative": -42, "quote": "say \"hi\"\n"},
]


def test_jsonb_and_vectors_round_trip_exactly(student_db):
    """Phase 4 keeps the rows, gives them '{}' settings, and stores JSONB and vectors losslessly."""
    command.upgrade(cfg(), R3)
    execute("INSERT INTO users (full_name, email) VALUES ('Ada Lovelace', 'ada@example.org')")

    command.upgrade(cfg(), R4)
    assert rows("SELECT full_name, email, bio, settings, embedding FROM users") == [
        ("Ada Lovelace", "ada@example.org", None, {}, None)]

    rng = np.random.default_rng(384)
    vectors = [rng.standard_normal(384).astype(np.float32) for _ in JSON_VALUES]
    vectors[0][:3] = [np.float32(1e-38), np.float32(-3.4e38), np.float32(0.1)]
    with Session(eng()) as session, session.begin():
        session.add_all(User(full_name=f"user {i}", settings=value, embedding=vec)
                        for i, (value, vec) in enumerate(zip(JSON_VALUES, vectors, strict=True)))
    with Session(eng()) as session:
        stored = session.scalars(sa.select(User).where(User.full_name.like("user %"))
                                 .order_by(User.id)).all()
        assert [u.settings for u in stored] == JSON_VALUES
        for user, vec in zip(stored, vectors, strict=True):
            assert np.array_equal(np.asarray(user.embedding, dtype=np.float32), vec)
    # The same values read back through plain SQL text, as a notebook query would see them.
    texts = rows("SELECT settings::text FROM users WHERE full_name LIKE 'user %' ORDER BY id")
    assert [json.loads(t) for (t,) in texts] == JSON_VALUES


# --------------------------------------------------------------------------- guarded downgrades

def test_guarded_downgrade_refuses_with_data_then_passes_with_the_flag(student_db):
    """Downgrading phase 2 drops email/bio; with data there the CLI must refuse and change nothing."""
    command.upgrade(cfg(), R2)
    execute("INSERT INTO users (name, email, bio) VALUES ('Ada', 'ada@example.org', NULL), "
            "('Grace', NULL, 'compilers'), ('Alan', NULL, NULL)")
    before = rows("SELECT * FROM users ORDER BY id")

    refused = alembic("downgrade", R1)
    assert refused.returncode != 0
    text = assert_short_and_secret_free(refused)  # at most 10 lines, no traceback
    assert "users.email" in text
    assert "users.bio" in text
    assert "'users'" in text
    assert "2 rows" in text
    assert f"alembic -x allow_data_loss=true downgrade {R1}" in text
    assert version() == R2
    assert rows("SELECT * FROM users ORDER BY id") == before

    confirmed = alembic("-x", "allow_data_loss=true", "downgrade", R1)
    assert confirmed.returncode == 0, text_of(confirmed)
    assert version() == R1
    assert rows("SELECT id, name FROM users ORDER BY id") == [(r[0], r[1]) for r in before]


def test_downgrading_phase1_refuses_to_drop_a_table_with_rows(student_db):
    """Downgrading 0001 drops the whole table: with rows in it, it must refuse like the column guards."""
    command.upgrade(cfg(), R1)
    execute("INSERT INTO users (name) VALUES ('Ada'), ('Grace')")

    refused = alembic("downgrade", "base")
    assert refused.returncode != 0
    text = assert_short_and_secret_free(refused)  # at most 10 lines, no traceback
    assert "table 'users'" in text
    assert "2 rows" in text
    assert "alembic -x allow_data_loss=true downgrade base" in text
    assert version() == R1
    assert rows("SELECT name FROM users ORDER BY id") == [("Ada",), ("Grace",)]

    execute("DELETE FROM users")
    emptied = alembic("downgrade", "base")
    assert emptied.returncode == 0, text_of(emptied)
    assert version() is None


def test_guarded_downgrade_of_phase4_from_python(student_db):
    """Notebooks reach the same guard through alembic.command, and confirm with an attribute."""
    command.upgrade(cfg(), "head")
    execute("INSERT INTO users (full_name, settings) VALUES ('Ada', '{\"theme\": \"dark\"}')")

    with pytest.raises(CommandError) as refused:
        command.downgrade(cfg(), "-1")
    message = str(refused.value)
    assert "users.settings" in message
    assert "users.embedding" in message
    assert "1 row " in message
    assert "alembic -x allow_data_loss=true downgrade" in message
    assert len(message.splitlines()) <= 10
    assert version() == R4
    assert rows("SELECT full_name, settings FROM users") == [("Ada", {"theme": "dark"})]

    command.downgrade(cfg(allow_data_loss=True), "-1")
    assert version() == R3
    assert rows("SELECT full_name FROM users") == [("Ada",)]


def test_guarded_downgrade_of_phase4_from_the_cli_names_the_relative_target(student_db):
    """`alembic downgrade -1` refused: the advice repeats the learner's own target."""
    command.upgrade(cfg(), "head")
    execute("INSERT INTO users (full_name, embedding) VALUES ('Ada', :v)",
            {"v": "[" + ",".join(["0.5"] * 384) + "]"})
    refused = alembic("downgrade", "-1")
    assert refused.returncode != 0
    assert "alembic -x allow_data_loss=true downgrade -1" in text_of(refused)
    assert version() == R4


def test_empty_columns_drop_without_asking(student_db):
    """Only data is guarded: NULLs, and settings equal to the default '{}', drop freely."""
    command.upgrade(cfg(), "head")
    execute("INSERT INTO users (full_name) VALUES ('default settings')")
    execute("INSERT INTO users (full_name, settings) VALUES ('explicit empty', '{}')")
    command.downgrade(cfg(), R3)
    assert version() == R3
    command.downgrade(cfg(), R2)
    command.downgrade(cfg(), R1)  # email and bio were never filled
    assert version() == R1
    assert rows("SELECT name FROM users ORDER BY id") == [("default settings",), ("explicit empty",)]


def test_one_embedding_alone_is_data(student_db):
    """Default settings do not hide a vector: a single embedding is enough to refuse."""
    command.upgrade(cfg(), "head")
    execute("INSERT INTO users (full_name) VALUES ('a'), ('b')")
    execute("UPDATE users SET embedding = :v WHERE full_name = 'b'",
            {"v": "[" + ",".join(["1"] * 384) + "]"})
    with pytest.raises(CommandError, match="1 row of 'users'"):
        command.downgrade(cfg(), R3)
    assert version() == R4


# --------------------------------------------------------------------------- failures leave no trace

FAILING_REVISION = '''"""Deliberately failing revision for the test suite."""
from alembic import op
import sqlalchemy as sa

revision = "0005_boom"
down_revision = "0004_settings_and_embedding"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("users", sa.Column("boom", sa.Integer()))
    raise RuntimeError("boom: this revision fails after changing the schema")


def downgrade():
    op.drop_column("users", "boom")
'''


def copy_scripts(tmp_path: Path, drop: tuple[str, ...] = ()) -> Path:
    """Copy migrations/ to tmp_path (never touching the checked-in revisions); return the copy."""
    dest = tmp_path / "migrations"
    shutil.copytree(REPO / "migrations", dest, ignore=shutil.ignore_patterns("__pycache__"))
    for rev in drop:
        (dest / "versions" / f"{rev}.py").unlink()
    return dest


def test_a_failing_revision_leaves_no_trace_of_itself(student_db, tmp_path):
    """PostgreSQL DDL is transactional: a revision that raises rolls back whole, version row too.

    env.py commits each revision on its own (transaction_per_migration), so a failed
    ``upgrade head`` across several revisions stops at the last good one.
    """
    scripts = copy_scripts(tmp_path)
    (scripts / "versions" / "0005_boom.py").write_text(FAILING_REVISION)
    config = cfg()
    config.set_main_option("script_location", str(scripts))

    command.upgrade(config, R4)
    with pytest.raises(RuntimeError, match="boom"):
        command.upgrade(config, "head")
    assert columns() == COLUMNS[R4]
    assert version() == R4

    command.downgrade(config, "base")
    with pytest.raises(RuntimeError, match="boom"):
        command.upgrade(config, "head")  # 0001-0004 commit one by one; only 0005 is undone
    assert columns() == COLUMNS[R4]
    assert version() == R4


# --------------------------------------------------------------------------- the rename detector

def drop(table, name, type_):
    return ops.DropColumnOp.from_column_and_tablename(None, table, sa.Column(name, type_))


def add(table, name, type_):
    return ops.AddColumnOp(table, sa.Column(name, type_))


def upgrade_ops(*table_ops):
    return ops.UpgradeOps(ops=[ops.ModifyTableOps(table, list(o)) for table, o in table_ops])


def test_rename_detector_fires_on_a_drop_and_add_of_one_type():
    """A drop plus an add of the same type on one table is what autogenerate writes for a rename."""
    found = autogen.rename_suspects(upgrade_ops(
        ("users", [add("users", "full_name", sa.String(100)), drop("users", "name", sa.String(100))])))
    assert found == [("users", "name", "full_name")]


@pytest.mark.parametrize("table_ops", [
    [("users", [add("users", "age", sa.Integer()), drop("users", "name", sa.String(100))])],
    [("users", [add("users", "name2", sa.String(50)), drop("users", "name", sa.String(100))])],
    [("users", [add("users", "nickname", sa.String(100))])],
    [("users", [drop("users", "name", sa.String(100))])],
    [("users", [drop("users", "name", sa.String(100))]), ("people", [add("people", "n", sa.String(100))])],
], ids=["other-type", "other-length", "only-add", "only-drop", "other-table"])
def test_rename_detector_stays_quiet_otherwise(table_ops):
    """A false alarm teaches learners to ignore the warning; only same-type pairs count."""
    assert autogen.rename_suspects(upgrade_ops(*table_ops)) == []


def phase3_model(with_rename: bool) -> sa.MetaData:
    md = sa.MetaData(naming_convention=Base.metadata.naming_convention)
    sa.Table("users", md,
             sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("full_name" if with_rename else "name", sa.String(100), nullable=False),
             sa.Column("email", sa.String(255)),
             sa.Column("bio", sa.Text),
             *([] if with_rename else [sa.Column("nickname", sa.String(50))]))
    return md


@pytest.mark.parametrize("with_rename", [True, False], ids=["rename", "plain-add"])
def test_autogenerate_flags_a_rename_in_the_script_and_on_stderr(student_db, tmp_path, capsys,
                                                                 with_rename):
    """Through real autogenerate: the script says RENAME? at the top of upgrade(), only for a rename."""
    scripts = copy_scripts(tmp_path, drop=(R3, R4))
    config = cfg(target_metadata=phase3_model(with_rename))
    config.set_main_option("script_location", str(scripts))
    command.upgrade(config, R2)
    capsys.readouterr()

    script = command.revision(config, message="phase 3", autogenerate=True, rev_id="0003_auto")
    err = capsys.readouterr().err
    body = Path(script.path).read_text()
    upgrade = body[body.index("def upgrade"):body.index("def downgrade")]
    if with_rename:
        lines = [ln.strip() for ln in upgrade.splitlines()]
        header = lines.index("# ### commands auto generated by Alembic - please adjust! ###")
        assert lines[header + 1].startswith("# RENAME?")  # before any op, where it is read first
        assert "new_column_name" in upgrade
        assert "WARNING: users.name dropped and users.full_name added" in err
        assert "op.alter_column('users', 'name', new_column_name='full_name')" in err
    else:
        assert "RENAME?" not in body
        assert "WARNING" not in err
        assert "op.add_column('users'" in upgrade


# --------------------------------------------------------------------------- offline mode

def test_offline_sql_needs_no_server_and_contains_the_whole_chain(tmp_path):
    """`alembic upgrade head --sql` is how a DBA reviews the chain: no server, every statement."""
    env = dict(LAB_DATA_DIR=str(tmp_path / "no-server-here"), DATABASE_URL=None, LAB_STUDENT=None)
    up = alembic("upgrade", "head", "--sql", timeout=120, **env)
    assert up.returncode == 0, up.stderr
    sql = up.stdout
    for expected in ("CREATE TABLE users", "ALTER TABLE users ADD COLUMN email VARCHAR(255)",
                     "ALTER TABLE users RENAME name TO full_name",
                     "CREATE EXTENSION IF NOT EXISTS vector",
                     "ALTER TABLE users ADD COLUMN embedding VECTOR(384)",
                     "USING hnsw (embedding vector_cosine_ops)",
                     f"UPDATE alembic_version SET version_num='{R4}'"):
        assert expected in sql, expected
    down = alembic("downgrade", "head:base", "--sql", timeout=120, **env)
    assert down.returncode == 0, down.stderr
    assert "ALTER TABLE users RENAME full_name TO name" in down.stdout
    assert not (tmp_path / "no-server-here").exists()

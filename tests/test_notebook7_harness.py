"""Notebook 7's measuring harness (labkit.notebook.bigtables), against the real PostgreSQL.

The notebook's catalogue is only as true as the harness: these tests check that it reads the
lock a statement really takes, tells a rewrite from a catalog change, sees a writer wait when
the lock blocks writes (and not when it does not), and that a rehearsal leaves the table as
it was. A table of 50,000 rows keeps them quick; the locks are the same as on a million.
"""

import pytest
import sqlalchemy as sa

from labkit.errors import LabError
from labkit.notebook import bigreport, bigtables, liveapp, project

ROWS = 50_000


@pytest.fixture
def engine(student_db):
    """An engine on a fresh schema big_tables holding accounts(id, score) with ROWS rows."""
    eng = sa.create_engine(project.project_database_url("big_tables"))
    with eng.begin() as conn:
        conn.execute(sa.text("CREATE TABLE accounts (id integer PRIMARY KEY, score integer NOT NULL)"))
        conn.execute(sa.text("INSERT INTO accounts SELECT g, g % 1000 FROM generate_series(1, :n) g"),
                     {"n": ROWS})
    yield eng
    eng.dispose()


def test_a_volatile_default_is_seen_rewriting_under_access_exclusive(engine):
    """The observer reads ACCESS EXCLUSIVE from pg_locks, and the new relfilenode shows the rewrite."""
    step = bigtables.measure(engine, "add", "volatile", lambda op: op.add_column(
        "accounts", sa.Column("at", sa.DateTime, server_default=sa.text("clock_timestamp()"))))
    assert step.lock == "ACCESS EXCLUSIVE"
    assert step.rewrote
    with engine.connect() as conn:  # a rehearsal: rolled back
        assert "at" not in [c["name"] for c in sa.inspect(conn).get_columns("accounts")]


def test_a_constant_default_does_not_rewrite(engine):
    """PostgreSQL 11+ keeps a constant default in the catalog: same file, no rewrite."""
    step = bigtables.measure(engine, "add", "constant", lambda op: op.add_column(
        "accounts", sa.Column("plan", sa.Text, server_default="free")))
    assert step.lock == "ACCESS EXCLUSIVE"
    assert not step.rewrote


def test_create_index_blocks_the_writer_and_concurrently_does_not(engine):
    """SHARE makes the writer wait on a lock, and not the reader; SHARE UPDATE EXCLUSIVE (CONCURRENTLY) neither.

    The plain build keeps its transaction open half a second after the index is built, so the
    SHARE lock is held long enough for the wait to be seen on any machine.
    """
    plain = bigtables.measure(engine, "index", "plain", lambda op: (
        op.create_index("ix_score", "accounts", ["score"]), op.execute("SELECT pg_sleep(0.5)")))
    assert plain.lock == "SHARE"
    assert "writer" in plain.blocked  # pg_stat_activity saw it waiting on a lock
    assert plain.writer_waited >= 0.3
    assert "reader" not in plain.blocked

    def concurrently(op):
        with op.get_context().autocommit_block():
            op.create_index("ix_score", "accounts", ["score"], postgresql_concurrently=True)

    safe = bigtables.measure(engine, "index", "concurrently", concurrently, keep=True, safe=True,
                             undo=lambda op: op.drop_index("ix_score"))
    assert safe.lock == "SHARE UPDATE EXCLUSIVE"
    assert "reader" not in safe.blocked
    assert "writer" not in safe.blocked
    with engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT to_regclass('ix_score')")) is None  # undone


def test_a_lock_queued_behind_a_report_makes_reader_and_writer_wait(engine):
    """behind=: the ALTER waits for the report, and the application waits behind the ALTER."""
    step = bigtables.measure(engine, "rename", "plain", lambda op: op.alter_column(
        "accounts", "score", new_column_name="points"), behind=0.5)
    assert {"reader", "writer"} <= set(step.blocked)
    assert step.reader_waited >= 0.3
    assert step.writer_waited >= 0.3


def test_cancel_when_stops_a_running_update(engine):
    """cancel_when cancels the migration's UPDATE once the watched row has its value."""
    def backfill(op):
        op.add_column("accounts", sa.Column("level", sa.Text))
        op.get_bind().commit()
        with bigtables.cancel_when(engine, row=1):
            op.execute("UPDATE accounts SET level = 'x' WHERE id = 1")
            op.get_bind().commit()
            op.execute("UPDATE accounts SET level = 'x' WHERE pg_sleep(0.0001) IS NOT NULL")

    with pytest.raises(sa.exc.OperationalError, match="canceling statement"):
        bigtables.measure(engine, "backfill", "stopped", backfill, keep=True)
    with engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT count(level) FROM accounts")) == 1


def test_big_rows_reads_the_knob(monkeypatch):
    """LAB_BIG_ROWS sets the size (never below the floor); unset means a million, garbage is refused."""
    monkeypatch.delenv("LAB_BIG_ROWS", raising=False)
    assert bigtables.big_rows() == 1_000_000
    monkeypatch.setenv("LAB_BIG_ROWS", "200_000")
    assert bigtables.big_rows() == 200_000
    monkeypatch.setenv("LAB_BIG_ROWS", "5")
    assert bigtables.big_rows() == bigtables.MIN_ROWS
    monkeypatch.setenv("LAB_BIG_ROWS", "lots")  # issue 23: refused (labkit/settings.py), no longer a million
    with pytest.raises(LabError, match="LAB_BIG_ROWS"):
        bigtables.big_rows()


def test_the_verdict_is_a_fixed_sentence_or_says_noisy():
    """Clear waits give the fixed sentence; a safe step that waited as long gives 'too noisy'."""
    bad = bigreport.Step("x", "plain", seconds=2.0, reader_waited=1.9, writer_waited=2.0,
                         blocked=["reader", "writer"])
    good = bigreport.Step("x", "safe", safe=True, seconds=2.5, reader_waited=0.02, writer_waited=0.03)
    assert bigreport.verdict(bad, good) == (
        "plain: the reader and the writer waited on its lock about as long as the step ran. "
        "The safe way: no wait even a quarter as long.")
    slow = bigreport.Step("x", "safe", safe=True, seconds=2.5, reader_waited=1.5, writer_waited=1.5)
    assert "too noisy" in bigreport.verdict(bad, slow)


def test_lock_names_read_like_the_documentation():
    """pg_locks' CamelCase modes become the SQL spelling; the strongest of several wins."""
    assert bigreport.lock_name("ShareUpdateExclusiveLock") == "SHARE UPDATE EXCLUSIVE"
    assert bigreport.strongest(["RowExclusiveLock", "AccessShareLock"]) == "RowExclusiveLock"
    assert bigreport.lock_name(None) == "none seen"


# --------------------------------------------------------------------------- the NOT NULL recipe, live

OLD_APP = liveapp.version("old", "INSERT INTO accounts (id, score) VALUES (:n, :n % 1000)",
                          "SELECT score FROM accounts WHERE id = :id")
NEW_APP = liveapp.version("new", "INSERT INTO accounts (id, score, level) VALUES (:n, :n % 1000, 'free')",
                          "UPDATE accounts SET score = score + 1, level = 'free' WHERE id = :id")
BACKFILL = "UPDATE accounts SET level = 'free' WHERE id BETWEEN :low AND :low + 9999 AND level IS NULL"
RECIPE = {  # notebook 7's revisions 0002-0006 (0003, the backfill, is in run_step), each its own transaction
    "0002": ["ALTER TABLE accounts ADD COLUMN level text"],
    "0004": ["ALTER TABLE accounts ADD CONSTRAINT level_not_null CHECK (level IS NOT NULL) NOT VALID"],
    "0005": ["ALTER TABLE accounts VALIDATE CONSTRAINT level_not_null"],
    "0006": ["ALTER TABLE accounts ALTER COLUMN level SET NOT NULL",
             "ALTER TABLE accounts DROP CONSTRAINT level_not_null"],
}


def run_step(engine, live, rev):
    """Run one step of the recipe in its own transaction (the backfill: one per batch), then let the app run."""
    live.phase(rev)
    if rev == "0003":
        with engine.connect() as conn:
            top = conn.scalar(sa.text("SELECT max(id) FROM accounts"))
        for low in range(1, top + 1, 10_000):
            with engine.begin() as conn:
                conn.execute(sa.text(BACKFILL), {"low": low})
    else:
        with engine.begin() as conn:
            for sql in RECIPE[rev]:
                conn.execute(sa.text(sql))
    live.settle()


def nulls(engine):
    with engine.connect() as conn:
        return conn.scalar(sa.text("SELECT count(*) FROM accounts WHERE level IS NULL"))


def test_the_recipe_with_the_old_code_live_rejects_its_inserts_and_validate_fails(engine):
    """Issue 22's failure, counted: old INSERTs after the backfill stay NULL, from NOT VALID on they fail."""
    with liveapp.running(engine, OLD_APP, ids=(1, ROWS), first=ROWS + 1, phase="before") as live:
        for rev in ("0002", "0003", "0004"):
            run_step(engine, live, rev)
        left = nulls(engine)
        with pytest.raises(sa.exc.IntegrityError, match="level_not_null"):
            run_step(engine, live, "0005")
    tally = live.tally().set_index(["phase", "app", "statement"])
    assert (tally["attempted"] == tally["committed"] + tally["failed"]).all()
    for rev in ("before", "0002", "0003"):
        assert tally.loc[(rev, "old", "INSERT"), "failed"] == 0
    assert left > 0  # the old code's rows behind the backfill
    rejected = tally.loc[("0004", "old", "INSERT")]
    assert rejected["failed"] >= 3
    assert rejected["errors"] == "CheckViolation"
    assert live.rejected("old") == tally.xs("INSERT", level="statement")["failed"].sum()
    with engine.connect() as conn:  # every committed INSERT is in the table, none twice
        assert conn.scalar(sa.text("SELECT count(*) FROM accounts WHERE id > :n"), {"n": ROWS}) == \
            tally.xs("INSERT", level="statement")["committed"].sum()


def test_the_ordered_recipe_rejects_no_write(engine):
    """0002 with the old code; deploy the new code and retire the old; then 0003-0006: every write commits."""
    with liveapp.running(engine, OLD_APP, ids=(1, ROWS), first=ROWS + 1, phase="before") as live:
        run_step(engine, live, "0002")
        live.deploy(NEW_APP)
        live.retire("old")
        for rev in ("0003", "0004", "0005", "0006"):
            run_step(engine, live, rev)
    tally = live.tally()
    assert live.rejected() == 0
    assert tally.attempted.sum() == tally.committed.sum() > 0
    assert set(tally[tally.phase == "0004"].app) == {"new"}
    assert {"INSERT", "UPDATE"} <= set(tally[tally.phase == "0006"].statement)
    assert nulls(engine) == 0
    with engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT attnotnull FROM pg_attribute "
                                   "WHERE attrelid = 'accounts'::regclass AND attname = 'level'"))


def notebook_revisions() -> dict[str, str]:
    """The last version of each revision file notebook 7 writes with %%writefile."""
    import json
    from pathlib import Path

    cells = json.loads((Path(__file__).parents[1] / "notebooks" / "07_big_tables_without_downtime.ipynb")
                       .read_text())["cells"]
    found = {}
    for cell in cells:
        text = "".join(cell["source"])
        if cell["cell_type"] == "code" and text.startswith("%%writefile migrations/versions/"):
            name, _, body = text.partition("\n")
            found[name.split("/")[-1]] = body
    return found


def test_no_revision_of_the_notebook_imports_a_driver():
    """Alembic imports every revision for any command: a driver import ties them all to that driver."""
    revisions = notebook_revisions()
    assert "0009_rename_score.py" in revisions
    for name, body in revisions.items():
        imports = [line for line in body.splitlines() if line.startswith(("import ", "from "))]
        assert not [line for line in imports if "psycopg" in line], name
    assert '"55P03"' in revisions["0009_rename_score.py"]
    assert "is_offline_mode()" in revisions["0009_rename_score.py"]


def test_a_lock_timeout_carries_the_sqlstate_the_retry_tests(engine):
    """The retry revision retries on exc.orig.pgcode (psycopg2) or .sqlstate (psycopg 3) == 55P03."""
    holder, waiter = engine.connect(), engine.connect()
    try:
        holder.execute(sa.text("SELECT count(*) FROM accounts"))  # a report, left open
        waiter.execute(sa.text("SET lock_timeout = '50ms'"))
        with pytest.raises(sa.exc.OperationalError) as caught:
            waiter.execute(sa.text("ALTER TABLE accounts RENAME COLUMN score TO points"))
        orig = caught.value.orig
        assert (getattr(orig, "pgcode", None) or getattr(orig, "sqlstate", None)) == "55P03"
    finally:
        waiter.rollback(), holder.rollback()
        waiter.close(), holder.close()


def offline_sql(body: str) -> list[str]:
    """The statements a revision's upgrade() writes in offline mode (``alembic upgrade --sql``)."""
    import io
    import types

    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext

    namespace: dict = {}
    exec(compile(body, "revision", "exec"), namespace)
    namespace["context"] = types.SimpleNamespace(is_offline_mode=lambda: True)
    out = io.StringIO()
    with Operations.context(MigrationContext.configure(dialect_name="postgresql",
                                                       opts={"as_sql": True, "output_buffer": out})):
        namespace["upgrade"]()
    return [s.strip() for s in out.getvalue().split(";\n\n") if s.strip()]


def test_the_offline_backfill_survives_a_statement_timeout_the_role_sets(engine):
    """0003's --sql script is one DO block, COMMITs and pauses included: a role's or database's
    statement_timeout would cancel all of it (p7 #1). Its SET statement_timeout = 0 lets it run,
    and its RESET gives the session its default back. The session default here comes from the
    connection's options, as a role's or database's setting would."""
    statements = [s for s in offline_sql(notebook_revisions()["0003_backfill_level.py"])
                  if s not in ("BEGIN", "COMMIT")]
    assert statements[0] == "SET statement_timeout = 0"
    assert statements[-1] == "RESET statement_timeout"
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE accounts ADD COLUMN level text"))
    options = engine.url.query["options"] + " -c statement_timeout=150"  # the schema's search_path, and 5 x 50 ms
    strict = sa.create_engine(engine.url.update_query_dict({"options": options}), poolclass=sa.pool.NullPool)
    try:
        with strict.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            with pytest.raises(sa.exc.OperationalError, match="statement timeout"):
                conn.execute(sa.text(statements[1]))  # the DO block alone, under the default
            for sql in statements:
                conn.execute(sa.text(sql))
            assert conn.scalar(sa.text("SHOW statement_timeout")) == "150ms"
            assert conn.scalar(sa.text("SELECT count(*) FROM accounts WHERE level IS NULL")) == 0
    finally:
        strict.dispose()

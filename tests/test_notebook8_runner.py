"""Notebook 8's background runner, as the notebook writes it, against the real PostgreSQL.

The code under test is the notebook's own: ``backfill.py`` and revision ``0007`` are taken from
their ``%%writefile`` cells, so what a learner copies into a project is what runs here. A trigger
makes any fill of more than 1,500 rows sleep past the runner's one-second statement budget: a
stand-in for a database too busy for a batch of that size (the 8 December room of 30, where a
5,000-row batch that takes 30 ms alone ran over a second for minutes at a time).
"""

import threading
import types

import nbformat
import pytest
import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations

from labkit.notebook import evolving

from support.notebooks import numbered

# Any fill of more than 1,500 rows sleeps 1.2 s: over the runner's 1 s statement_timeout.
SLOW = """
CREATE FUNCTION slow_fill() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT count(*) FROM filled) > 1500 THEN PERFORM pg_sleep(1.2); END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER slow_fill AFTER UPDATE ON accounts REFERENCING NEW TABLE AS filled
    FOR EACH STATEMENT EXECUTE FUNCTION slow_fill();
"""


def written(start: str) -> str:
    """Return the file a cell of notebook 8 writes with ``%%writefile <start>...``, as it writes it."""
    nb = nbformat.read(next(p for p in numbered() if p.name.startswith("08_")), as_version=4)
    for cell in nb.cells:
        first, _, body = cell.source.partition("\n")
        if cell.cell_type == "code" and first.startswith(f"%%writefile {start}"):
            return body
    raise AssertionError(f"notebook 8 has no %%writefile {start} cell")


def module(name: str, source: str) -> types.ModuleType:
    mod = types.ModuleType(name)
    exec(compile(source, f"<notebook 8: {name}>", "exec"), mod.__dict__)
    return mod


@pytest.fixture
def queued(student_db):
    """A project schema with ``accounts`` (ids 1..10,000, no ref), a slow-fill trigger, and 0007 run: 2 batches."""
    evolving.require_vector()
    eng = sa.create_engine(evolving.project_url("nb8_runner"))
    with eng.begin() as conn:
        conn.execute(sa.text("CREATE TABLE accounts (id int PRIMARY KEY, customer_no int NOT NULL, ref text)"))
        conn.execute(sa.text("INSERT INTO accounts SELECT g, 5000000 + g FROM generate_series(1, 10000) g"))
        conn.execute(sa.text(SLOW))
        with Operations.context(MigrationContext.configure(conn)):
            module("enqueue", written("migrations/versions/0007_")).upgrade()
    yield eng
    eng.dispose()


def batches(eng) -> list[tuple]:
    with eng.connect() as conn:
        return conn.execute(sa.text("SELECT batch, first_id, last_id, done_at IS NOT NULL, done_by "
                                    "FROM background_batches ORDER BY first_id")).all()


def test_a_batch_over_its_budget_is_split_until_it_fits_and_every_row_is_filled_once(queued, capsys):
    """5,000 ids time out, 2,500 time out, 1,250 fit: each of the 2 batches ends as 4 of 1,250, all done."""
    backfill = module("backfill", written("backfill.py"))
    assert [b[1:3] for b in batches(queued)] == [(1, 5000), (5001, 10000)]
    with queued.connect() as conn:
        assert backfill.run(conn, pause=0) == 0
    rows = batches(queued)
    assert [(first, last) for _, first, last, _, _ in rows] == [(i, i + 1249) for i in range(1, 10001, 1250)]
    assert all(done for *_, done, _ in rows)
    assert len({batch for batch, *_ in rows}) == 8  # every half got a number of its own
    with queued.connect() as conn:
        assert conn.scalar(sa.text("SELECT count(*) FROM accounts WHERE ref IS NULL")) == 0
    printed = capsys.readouterr().out
    assert printed.count("over its statement_timeout; split into ids") == 6
    assert "split into ids 1-2500 and 2501-5000" in printed


def test_two_runners_splitting_at_once_share_the_work_and_number_every_half_apart(queued):
    """Each runner takes a batch (SKIP LOCKED), both time out and split at the same moment: no clash, nothing twice."""
    backfill = module("backfill", written("backfill.py"))
    left, errors = [], []

    def runner():
        try:
            with queued.connect() as conn:
                left.append(backfill.run(conn, pause=0))
        except Exception as exc:  # the assertion below names it
            errors.append(exc)

    threads = [threading.Thread(target=runner) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert sorted(left) == [0, 0]
    rows = batches(queued)
    assert [(first, last) for _, first, last, _, _ in rows] == [(i, i + 1249) for i in range(1, 10001, 1250)]
    assert len({batch for batch, *_ in rows}) == 8
    assert all(done for *_, done, _ in rows)
    assert len({by for *_, by in rows}) == 2  # both runners did batches


def test_a_batch_too_small_to_split_still_fails_after_its_tries(queued):
    """Below SMALLEST ids a batch over budget is not split again: after TRIES failures the runner raises."""
    backfill = module("backfill", written("backfill.py"))
    backfill.TRIES, backfill.SMALLEST = 1, 5000  # no split, no back-off: one failure is the end
    with queued.connect() as conn, pytest.raises(sa.exc.OperationalError, match="statement timeout"):
        backfill.run(conn, pause=0)
    assert [b[1:4] for b in batches(queued)] == [(1, 5000, False), (5001, 10000, False)]

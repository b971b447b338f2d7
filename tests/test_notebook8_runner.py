"""Notebook 8's background runner, as the notebook writes it, against the real PostgreSQL.

The code under test is the notebook's own: ``backfill.py`` and revision ``0007`` are taken from
their ``%%writefile`` cells, so what a learner copies into a project is what runs here. A trigger
makes each fill cost half a millisecond a row (5,000 rows 2.5 s, 2,500 1.25 s, 1,250 0.625 s),
against the runner's one-second statement budget: a stand-in for a database too busy for a batch
of 5,000 (the 8 December room of 30, where such a batch, 30 ms alone, ran over a second for
minutes at a time).
"""

import threading
import time
import types

import nbformat
import pytest
import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations

from labkit.notebook import evolving

from support.notebooks import numbered

ROWS = "(SELECT count(*) FROM filled)"  # the rows the fill changed, in the trigger's transition table


def fill_cost(conn, seconds: str) -> None:
    """Make each fill of accounts sleep ``seconds``, a SQL expression (of ``ROWS``, say), in its own time."""
    conn.execute(sa.text("CREATE OR REPLACE FUNCTION slow_fill() RETURNS trigger LANGUAGE plpgsql AS $$ "
                         f"BEGIN PERFORM pg_sleep({seconds}); RETURN NULL; END $$"))


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
        fill_cost(conn, f"{ROWS} * 0.0005")  # 0.5 ms a row
        conn.execute(sa.text("CREATE TRIGGER slow_fill AFTER UPDATE ON accounts REFERENCING NEW TABLE AS filled "
                             "FOR EACH STATEMENT EXECUTE FUNCTION slow_fill()"))
        with Operations.context(MigrationContext.configure(conn)):
            module("enqueue", written("migrations/versions/0007_")).upgrade()
    yield eng
    eng.dispose()


def batches(eng) -> list[tuple]:
    with eng.connect() as conn:
        return conn.execute(sa.text("SELECT batch, first_id, last_id, done_at IS NOT NULL, done_by "
                                    "FROM background_batches ORDER BY first_id")).all()


def recording_sleeps(backfill) -> list[float]:
    """Make the runner's time.sleep note each pause (and still sleep it); return the list it fills."""
    sleeps = []

    def sleep(seconds):
        sleeps.append(seconds)
        time.sleep(seconds)
    backfill.time = types.SimpleNamespace(perf_counter=time.perf_counter, sleep=sleep)
    return sleeps


def test_a_fill_out_of_time_is_split_the_size_that_fits_is_kept_and_every_row_is_filled(queued, capsys):
    """5,000 ids run out of time, 2,500 too; 1,250 fit (in 0.6 s: no growing back), and every later batch is split
    to 1,250 before it is tried: two cancelled seconds in all, each followed by a pause; 8 batches tile the ids."""
    backfill = module("backfill", written("backfill.py"))
    sleeps = recording_sleeps(backfill)
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
    assert printed.count("ran out of time") == 2  # not once per batch: the size that fits is kept
    assert "a fill of 5000 ids ran out of time; batch 1 split into ids 1-2500 and 2501-5000" in printed
    assert "at most 1250 ids a fill from now on" in printed
    assert len([s for s in sleeps if s >= 0.5]) == 2  # a pause after each cancelled second


def test_two_runners_splitting_at_once_share_the_work_and_number_every_half_apart(queued, capsys):
    """Each runner takes a batch (SKIP LOCKED), both run out of time and split at once: no clash, nothing twice."""
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
    assert len(left) == 2
    assert min(left) == 0  # the other may have found the last batches held by the first (then it says so)
    rows = batches(queued)
    assert [(first, last) for _, first, last, _, _ in rows] == [(i, i + 1249) for i in range(1, 10001, 1250)]
    assert len({batch for batch, *_ in rows}) == 8
    assert all(done for *_, done, _ in rows)
    printed = capsys.readouterr().out  # each runner took one of the two batches, and both split it
    assert "batch 1 split into ids 1-2500 and 2501-5000" in printed
    assert "batch 2 split into ids 5001-7500 and 7501-10000" in printed


def test_a_passing_spike_does_not_shrink_the_rest_of_the_run(queued, capsys):
    """Only the first two fills are slow: after them, fills under a quarter of the budget double the size back,
    so the second batch is split once, not twice, and the run ends with 5 batches, not 8."""
    with queued.begin() as conn:  # the first two fills (nextval 1 and 2) are slow, every later one fast
        conn.execute(sa.text("CREATE SEQUENCE spike"))
        fill_cost(conn, f"CASE WHEN nextval('spike') <= 2 THEN {ROWS} * 0.0005 ELSE 0 END")
    backfill = module("backfill", written("backfill.py"))
    with queued.connect() as conn:
        assert backfill.run(conn, pause=0) == 0
    printed = capsys.readouterr().out
    assert printed.count("ran out of time") == 2
    rows = batches(queued)
    assert [(first, last) for _, first, last, _, _ in rows] == [
        (1, 1250), (1251, 2500), (2501, 5000), (5001, 7500), (7501, 10000)]
    assert all(done for *_, done, _ in rows)


def test_an_operators_cancel_is_retried_not_taken_for_a_batch_too_big(queued, capsys):
    """pg_cancel_backend gives the same 57014 as a timeout, but early: the batch is retried whole, not split."""
    with queued.begin() as conn:  # fills now take 0.6 s: inside the one-second budget
        fill_cost(conn, "0.6")
    backfill = module("backfill", written("backfill.py"))
    cancelled = []

    def operator():
        with queued.connect() as conn:
            for _ in range(500):
                pid = conn.scalar(sa.text("SELECT pid FROM pg_stat_activity WHERE state = 'active' "
                                          "AND query LIKE 'UPDATE accounts SET ref%'"))
                if pid is not None:
                    time.sleep(0.1)
                    cancelled.append(conn.scalar(sa.text("SELECT pg_cancel_backend(:p)"), {"p": pid}))
                    return
                conn.rollback()
                time.sleep(0.01)

    watcher = threading.Thread(target=operator)
    watcher.start()
    with queued.connect() as conn:
        assert backfill.run(conn, pause=0) == 0
    watcher.join(30)
    assert cancelled == [True]
    printed = capsys.readouterr().out
    assert "cancelled (by its statement_timeout, or by an operator), try 1 of 5" in printed
    assert "split" not in printed
    assert [b[1:4] for b in batches(queued)] == [(1, 5000, True), (5001, 10000, True)]


def test_a_batch_of_smallest_ids_or_fewer_is_never_split_even_below_the_remembered_size(queued):
    """With SMALLEST at 1,500: 4,000 and then 2,000 ids run out of time (0.6 ms a row), so the size drops to 1,000;
    a batch of 1,200 ids is still tried whole (and fits), while one of 2,000 is split before it is tried."""
    backfill = module("backfill", written("backfill.py"))
    backfill.SMALLEST = 1500
    with queued.begin() as conn:
        fill_cost(conn, f"{ROWS} * 0.0006")
        conn.execute(sa.text("DELETE FROM background_batches"))
        conn.execute(sa.text("INSERT INTO background_batches (job, first_id, last_id) "
                             "VALUES ('accounts.ref', 1, 4000), ('accounts.ref', 4001, 5200)"))
    with queued.connect() as conn:
        assert backfill.run(conn, pause=0) == 0
    assert [(first, last) for _, first, last, _, _ in batches(queued)] == [
        (1, 1000), (1001, 2000), (2001, 3000), (3001, 4000), (4001, 5200)]


def test_a_batch_too_small_to_split_still_fails_after_its_tries_naming_it(queued, capsys):
    """At SMALLEST ids or fewer a fill out of time is not split: after TRIES failures the runner raises."""
    backfill = module("backfill", written("backfill.py"))
    backfill.TRIES, backfill.SMALLEST = 1, 5000  # no split, no back-off: one failure is the end
    with queued.connect() as conn, pytest.raises(sa.exc.OperationalError, match="statement timeout"):
        backfill.run(conn, pause=0)
    assert "gave up on batch 1, ids 1-5000" in capsys.readouterr().err
    assert [b[1:4] for b in batches(queued)] == [(1, 5000, False), (5001, 10000, False)]

"""Two notebooks on one lab database: each runs through or stops with the lab's short message (issue 23).

Notebooks 1-4 share the lab database's ``users`` table, and each one's ``start(N)`` resets it.
A learner may leave notebook 1's kernel idle and open notebook 2, or Run All in two tabs at
once. The design (``labkit.sessions``): the last ``start`` takes the database; every
transaction of the lab's engine — the learner's own ``Session(lab_helpers.engine())`` and
``engine().connect()`` included, since the engine carries the check — first compares the
database with what this kernel left it at, and a kernel whose database was moved stops with
a two-line message until it is run from the top. Notebooks 5-7 work in schemas of their own.

The pairs run at the same moment in two real kernels, Run All style (nbclient stops at the
first error, as JupyterLab does), in a database of their own (LAB_STUDENT).
"""

from __future__ import annotations

import shutil

import pytest
import sqlalchemy as sa
from alembic import command

from labkit import database, paths, phases, sessions
from labkit.errors import LabError

from support import helpers
from support import notebooks as nbs

PAIRS = [("01", "02"), ("03", "04"), ("02", "04"), ("06", "07")]


def notebook(prefix: str):
    return next(p for p in nbs.numbered() if p.name.startswith(prefix + "_"))


def users_rows(url: sa.URL) -> tuple[int, int] | None:
    """Return (rows, distinct rows ignoring id) of the users table, or None when it does not exist."""
    with database.engine(url).connect() as conn:
        if not sa.inspect(conn).has_table("users"):
            return None
        return tuple(conn.execute(sa.text(
            "SELECT count(*), count(DISTINCT to_jsonb(u) - 'id') FROM users u")).one())


@pytest.mark.slow
@pytest.mark.parametrize("pair", PAIRS, ids=["-".join(p) for p in PAIRS])
def test_two_notebooks_at_once_run_through_or_stop_short(pair, tmp_path, monkeypatch):
    """Both start at the same moment; each passes, or stops with the lab's short message; no row twice or lost."""
    student = "t_pair_" + "".join(pair)
    monkeypatch.setenv("LAB_STUDENT", student)
    url = database.resolve_url()
    try:
        started = []
        for prefix in pair:
            source = notebook(prefix)
            executed = tmp_path / source.name
            started.append((source, executed, nbs.start_run(source, executed, LAB_STUDENT=student)))
        for source, executed, proc in started:
            run = nbs.finish(proc, executed)
            if run.error is not None:
                assert nbs.is_short_lab_message(run.error), (
                    f"{source.name} cell {run.error_cell}:\n" + "\n".join(nbs.error_lines(run.error)))
            # Every cell before the stop (all of them when it ran through) shows what the committed
            # notebook shows: no table with a row twice or a row missing.
            differ = nbs.differing_cells(run, source, upto=run.error_cell)
            assert not differ, f"{source.name}: " + "\n".join(f"cell {i}\n{d}" for i, d in differ.items())
        rows = users_rows(url)
        if rows is not None:
            total, distinct = rows
            assert total == distinct, f"users has duplicated rows: {rows}"
            assert total in (0, len(phases.SAMPLE_USERS)), f"users has {total} rows"
    finally:
        database.engine(url).dispose()
        helpers.drop_database(f"lab_{student}")
        shutil.rmtree(paths.workspace() / f"lab_{student}", ignore_errors=True)


def test_a_notebook_told_it_drifted_stays_stopped_after_a_refused_migration(student_db):
    """The hole of issue 23: a migration refused for drift used to adopt the other session's state.

    The notebook was told once, and its next cell then wrote the sample users into the other
    notebook's table (MultipleResultsFound there). Now every later step says it again.
    """
    eng = database.engine()
    phases.goto(1, clear_workspace=False, watch=True)  # this "kernel" ran start(2)
    try:
        other = helpers.lab("goto", "1")  # another kernel's start(2): a new users table
        assert other.returncode == 0, helpers.text_of(other)
        with pytest.raises(LabError, match="Another session changed the database"):
            command.upgrade(phases.config(), "0002_add_email_and_bio")
        with pytest.raises(LabError, match="Another session changed the database"):
            with eng.connect() as conn:  # the learner's own next cell
                conn.execute(sa.text("INSERT INTO users (name) VALUES ('twice')"))
        phases.goto(1, clear_workspace=False, watch=True)  # run from the top again: start(2)
        with eng.connect() as conn:
            assert conn.scalar(sa.text("SELECT count(*) FROM users")) == len(phases.SAMPLE_USERS)
    finally:
        sessions.forget()


def test_the_pairs_cover_every_numbered_notebook_that_shares_the_users_table():
    """Notebooks 1-4 reset the shared users table; the pairs must include each of them."""
    shared = {p.name[:2] for p in nbs.numbered()
              if "lab_helpers.start(" in p.read_text(encoding="utf-8")}
    assert shared <= {n for pair in PAIRS for n in pair}, shared

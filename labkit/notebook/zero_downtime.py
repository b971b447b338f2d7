"""Notebook 3's zero-downtime rename: expand/contract step by step, and a rename timed against a rewrite."""

from __future__ import annotations

import time

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from .. import database
from ..diagnose import short_error
from ..phases import SCRATCH_PREFIX as SCRATCH

# --------------------------------------------------------------------------- expand / contract

def expand_contract_steps(table: str) -> list[tuple[str, str]]:
    """Return (step, SQL) for the five expand/contract steps renaming ``name`` to ``full_name``."""
    fn = f"{table}_sync_names"
    return [
        ("1. expand",
         f"ALTER TABLE {table} ADD COLUMN full_name varchar(100);"),
        ("2. dual-write",
         f"CREATE OR REPLACE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
         "BEGIN\n"
         "  IF TG_OP = 'INSERT' THEN\n"
         "    NEW.full_name := coalesce(NEW.full_name, NEW.name);\n"
         "    NEW.name := coalesce(NEW.name, NEW.full_name);\n"
         "  ELSIF NEW.name IS DISTINCT FROM OLD.name THEN\n"
         "    NEW.full_name := NEW.name;\n"
         "  ELSIF NEW.full_name IS DISTINCT FROM OLD.full_name THEN\n"
         "    NEW.name := NEW.full_name;\n"
         "  END IF;\n"
         "  RETURN NEW;\n"
         "END $$;\n"
         f"CREATE TRIGGER {fn} BEFORE INSERT OR UPDATE ON {table}\n"
         f"  FOR EACH ROW EXECUTE FUNCTION {fn}();"),
        ("3. backfill",
         f"UPDATE {table} SET full_name = name WHERE full_name IS NULL;"),
        ("4. switch reads",
         f"ALTER TABLE {table} ALTER COLUMN full_name SET NOT NULL;"),
        ("5. contract",
         f"DROP TRIGGER {fn} ON {table};\n"
         f"DROP FUNCTION {fn}();\n"
         f"ALTER TABLE {table} DROP COLUMN name;"),
    ]


def _works(conn: sa.Connection, sql: str) -> str:
    try:
        with conn.begin_nested():
            conn.execute(sa.text(sql)).all()
        return "✓ works"
    except DBAPIError as exc:
        return "✗ " + short_error(exc).splitlines()[0].split(": ", 1)[1]


def expand_contract(table: str) -> pd.DataFrame:
    """Run the five steps on ``table``; after each, try the old app's and the new app's query.

    After step 2 the old application inserts a user writing only ``name``, to show the
    trigger filling in ``full_name``.
    """
    old_app = f"SELECT name FROM {table} ORDER BY id"
    new_app = f"SELECT full_name FROM {table} ORDER BY id"
    rows = []
    with database.engine().begin() as conn:
        for step, sql in expand_contract_steps(table):
            conn.execute(sa.text(sql))
            if step.startswith("2."):
                conn.execute(sa.text(
                    f"INSERT INTO {table} (id, name) VALUES (6, 'Barbara Liskov')"))
            total, missing = conn.execute(sa.text(
                f"SELECT count(*), count(*) FILTER (WHERE full_name IS NULL) FROM {table}")).one()
            rows.append({"step": step, "old app: SELECT name": _works(conn, old_app),
                         "new app: SELECT full_name": _works(conn, new_app),
                         "rows": total, "rows without full_name": missing})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- flat against linear

def _timed(conn: sa.Connection, *statements: str, repeat: int = 3) -> float:
    """Return the best of ``repeat`` runs of the statements, in ms, each undone by a savepoint."""
    best = float("inf")
    for _ in range(repeat):
        with conn.begin_nested() as savepoint:
            start = time.perf_counter()
            for sql in statements:
                conn.execute(sa.text(sql))
            best = min(best, time.perf_counter() - start)
            savepoint.rollback()
    return best * 1000


def flat_vs_linear(sizes: tuple[int, ...] = (20_000, 200_000)) -> pd.DataFrame:
    """Time a rename (catalog only) and drop+add+backfill (writes every row) on scratch tables.

    Everything runs in one transaction that is rolled back, so the scratch tables never
    outlive the call. Returns the best of three runs, in milliseconds, per table size.
    """
    rows = []
    with database.engine().connect() as conn, conn.begin() as trans:
        for n in sizes:
            t = f"{SCRATCH}timing_{n}"
            conn.execute(sa.text(f"CREATE TABLE {t} AS SELECT g AS id, 'user ' || g AS name "
                                 f"FROM generate_series(1, {n}) g"))
            rename = _timed(conn, f"ALTER TABLE {t} RENAME name TO full_name")
            rewrite = _timed(conn, f"ALTER TABLE {t} ADD COLUMN full_name text",
                             f"UPDATE {t} SET full_name = name",
                             f"ALTER TABLE {t} DROP COLUMN name")
            rows.append({"rows": n, "rename (ms)": round(rename, 2),
                         "drop+add+backfill (ms)": round(rewrite, 1)})
        trans.rollback()
    return pd.DataFrame(rows).set_index("rows")


def flat_vs_linear_verdict(timings: pd.DataFrame) -> str:
    """Return a fixed sentence from a generous comparison of the timings (never a number).

    Expected: the rewrite grows about 10x with 10x the rows; the rename stays near a
    millisecond. The thresholds (2x growth, 5x apart) leave room for a noisy machine, and
    the best of three runs shrugs off a single hiccup.
    """
    small, big = timings.index.min(), timings.index.max()
    rewrite, rename = timings["drop+add+backfill (ms)"], timings["rename (ms)"]
    if rewrite[big] > 2 * rewrite[small] and rename[big] * 5 < rewrite[big]:
        return (f"With {big // small}x the rows, the drop+add+backfill took several times longer; "
                "the rename did not, because it only touches the catalog.")
    return "The timings were too noisy to compare on this machine; run the cell again."


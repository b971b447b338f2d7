"""Notebook 3's timing: a rename (catalog only) against drop+add+backfill (a rewrite)."""

from __future__ import annotations

import time

import pandas as pd
import sqlalchemy as sa

from .. import database
from ..phases import SCRATCH_PREFIX as SCRATCH

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


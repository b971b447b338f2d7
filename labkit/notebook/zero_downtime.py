"""Notebook 3's zero-downtime rename: migration steps run beside live old and new application code.

``Rollout`` runs each step of a recipe in a transaction of its own, as one revision under
``transaction_per_migration=True`` would, while the application versions that are live at that
step keep writing. It reports, from a second connection, the locks each statement holds on the
table (in ``pg_locks``) and every write the applications made: done, failed, or held up
until the step's COMMIT. ``flat_vs_linear`` compares a rename with drop+add+backfill.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from .. import database
from ..diagnose import short_error
from ..errors import LabError
from ..phases import SCRATCH_PREFIX as SCRATCH

# ---------------------------------------------------------------------------- live applications

LOCKS_SQL = """SELECT string_agg(mode, ', ' ORDER BY mode) FROM pg_locks
               WHERE pid = :pid AND granted AND locktype = 'relation' AND relation = to_regclass(:table)"""
# What a held-up write waits for: 'relation' (a table lock), 'transactionid' or 'tuple' (a row
# another transaction changed and has not committed yet).
# An app held up by the migration (directly, or behind the other app that waits for it); a wait on
# the other app alone is over in microseconds and counts for nothing.
WAITING_SQL = """SELECT wait_event FROM pg_stat_activity WHERE pid = :pid AND wait_event_type = 'Lock'
  AND (:mig = ANY(pg_blocking_pids(:pid))
       OR EXISTS (SELECT FROM unnest(pg_blocking_pids(:pid)) b WHERE :mig = ANY(pg_blocking_pids(b))))"""
WAIT_KIND = {"relation": "a table lock", "transactionid": "a row lock", "tuple": "a row lock"}


@dataclass
class App:
    """One application version: the one column it knows, on a connection of its own, its writes counted."""

    name: str
    column: str
    table: str
    done: int = 0
    failed: int = 0
    held_up: int = 0
    existing: int | None = None  # a user that was there before the rollout: read, then saved back
    null_reads: int = 0
    waits: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    wrote: dict[int, str] = field(default_factory=dict)  # id -> the value it wrote last

    def __post_init__(self):
        self.conn = database.engine().connect().execution_options(isolation_level="AUTOCOMMIT")
        self.pid = self.conn.scalar(sa.text("SELECT pg_backend_pid()"))

    def write(self) -> None:
        """INSERT a user naming only this version's column, UPDATE that user, then read an existing
        user's name and save that user back (an UPDATE that takes its row lock): three writes, counted."""
        value = f"{self.name} user {len(self.wrote) + 1}"
        try:
            new_id = self.conn.scalar(sa.text(
                f"INSERT INTO {self.table} ({self.column}) VALUES (:v) RETURNING id"), {"v": value})
            self.done += 1
            self.wrote[new_id] = value
            self.conn.execute(sa.text(f"UPDATE {self.table} SET {self.column} = :v WHERE id = :id"),
                              {"v": value + " (edited)", "id": new_id})
            self.done += 1
            self.wrote[new_id] = value + " (edited)"
            if self.existing is not None:
                read = self.conn.execute(sa.text(f"SELECT {self.column} FROM {self.table} WHERE id = :id"),
                                         {"id": self.existing}).one()[0]
                self.null_reads += read is None
                self.conn.execute(sa.text(f"UPDATE {self.table} SET {self.column} = {self.column} WHERE id = :id"),
                                  {"id": self.existing})
                self.done += 1
        except DBAPIError as exc:
            self.failed += 1
            self.errors.append(short_error(exc).splitlines()[0])


class Rollout:
    """The old application (knows ``name``) and the new one (knows ``full_name``) beside a migration."""

    def __init__(self, table: str = f"{SCRATCH}people"):
        self.table = table
        self.observer = database.engine().connect().execution_options(isolation_level="AUTOCOMMIT")
        first = self.observer.scalar(sa.text(f"SELECT min(id) FROM {table}"))  # a user from before
        self.apps = {"old": App("old app", "name", table, existing=first),
                     "new": App("new app", "full_name", table, existing=first)}

    def step(self, label: str, *statements: str, live: tuple[str, ...] = ("old",), commit: bool = True) -> None:
        """Run ``statements`` in one transaction while the ``live`` apps write before, during and after it.

        After each statement, a second connection reads the locks the migration holds on the
        table from ``pg_locks``; they last until the COMMIT. ``commit=False`` rolls the step back.
        """
        apps = [self.apps[k] for k in live]
        before = {a.name: (a.done, a.failed, a.held_up) for a in apps}
        for app in apps:
            app.write()
        print(f"{label}  (live: {', '.join(a.name for a in apps) or 'none'})")
        with database.engine().connect() as mig:
            pid = mig.scalar(sa.text("SELECT pg_backend_pid()"))
            mig.rollback()  # end the autobegun transaction: the step's own begins below
            with mig.begin() as trans:
                for sql in statements:
                    start = time.perf_counter()
                    mig.execute(sa.text(sql))
                    ms = (time.perf_counter() - start) * 1000
                    locks = self.observer.scalar(sa.text(LOCKS_SQL), {"pid": pid, "table": self.table})
                    print(f"  {_short(sql)}  ({ms:.1f} ms)\n"
                          f"      now holds, until COMMIT: {locks or 'no lock on the table'}")
                threads = self._write_during(apps, pid)
                if not commit:
                    trans.rollback()
                    print("  ROLLBACK: this step is undone")
        for t in threads:
            t.join(timeout=30)
        for app in apps:
            app.write()
        for app in apps:
            done, failed, held = (x - y for x, y in zip((app.done, app.failed, app.held_up), before[app.name],
                                                         strict=True))
            kinds = ", ".join(f"{w} ({WAIT_KIND.get(w, 'a lock')})" for w in app.waits[len(app.waits) - held:])
            note = f", {held} held up until the COMMIT, waiting for {kinds}" if held else ""
            print(f"  {app.name}: {done} writes done, {failed} failed{note}"
                  + (f"  ({app.errors[-1]})" if failed else ""))

    def _write_during(self, apps: list[App], migration: int) -> list[threading.Thread]:
        """Start one write per app in the open migration transaction; return when each is done or held up by it."""
        threads = [threading.Thread(target=a.write) for a in apps]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30
        for app, t in zip(apps, threads, strict=True):
            while t.is_alive():
                waiting = self.observer.scalar(sa.text(WAITING_SQL), {"pid": app.pid, "mig": migration})
                if waiting:
                    app.held_up += 1
                    app.waits.append(waiting)
                    break
                if time.monotonic() > deadline:
                    raise LabError(f"{app.name} neither finished nor waited for a lock in 30 s.",
                                   "Run python -m lab_helpers status, then this cell again.")
                time.sleep(0.005)
        return threads

    def read_back(self, reader: str, writer: str) -> None:
        """Print how many of the users app ``writer`` wrote app ``reader`` finds, in its own column, with the
        writer's last value: for the other app's column that value is the dual-write trigger's copy."""
        r, w = self.apps[reader], self.apps[writer]
        found = dict(r.conn.execute(sa.text(f"SELECT id, {r.column} FROM {self.table} WHERE id = ANY(:ids)"),
                                    {"ids": list(w.wrote)}).all())
        same = sum(found.get(i) == v for i, v in w.wrote.items())
        print(f"{r.name} read {r.column} of the {len(w.wrote)} users the {w.name} wrote: "
              f"{same} hold the {w.name}'s last value")

    def tally(self) -> pd.DataFrame:
        """Return each app's writes (done, failed, held up by a lock), the existing names it read as NULL,
        and how many of the users it wrote kept its last value."""
        rows = []
        for app in self.apps.values():
            found = dict(self.observer.execute(sa.text(f"SELECT id, full_name FROM {self.table}")).all())
            kept = sum(found.get(i) == v for i, v in app.wrote.items())
            rows.append({"app": app.name, "writes": app.done, "failed": app.failed, "held up": app.held_up,
                         "read NULL": app.null_reads, "users written": len(app.wrote), "found in full_name": kept})
        return pd.DataFrame(rows).set_index("app")

    def close(self) -> None:
        """Close the applications' and the observer's connections."""
        for app in self.apps.values():
            app.conn.close()
        self.observer.close()


def _short(sql: str) -> str:
    """One line of SQL, cut to fit a report line."""
    one = " ".join(sql.split())
    return one if len(one) <= 80 else one[:79] + "…"


# --------------------------------------------------------------------------- flat against linear

def _timed(conn: sa.Connection, table: str, *statements: str, repeat: int = 3) -> tuple[float, int]:
    """Return the best of ``repeat`` runs in ms, and the bytes the table grew; each run undone by a savepoint."""
    best, grew = float("inf"), 0
    size = sa.text(f"SELECT pg_relation_size('{table}')")
    for _ in range(repeat):
        with conn.begin_nested() as savepoint:
            before = conn.scalar(size)
            start = time.perf_counter()
            for sql in statements:
                conn.execute(sa.text(sql))
            best = min(best, time.perf_counter() - start)
            grew = conn.scalar(size) - before
            savepoint.rollback()
    return best * 1000, grew


def flat_vs_linear(sizes: tuple[int, ...] = (20_000, 200_000)) -> pd.DataFrame:
    """Time a rename (catalog only) and drop+add+backfill (writes every row) on scratch tables.

    Everything runs in one transaction that is rolled back, so the scratch tables never
    outlive the call. Returns, per table size, the best of three runs in milliseconds and how
    much each made the table grow (the rows it wrote again), in kB.
    """
    rows = []
    with database.engine().connect() as conn, conn.begin() as trans:
        for n in sizes:
            t = f"{SCRATCH}timing_{n}"
            conn.execute(sa.text(f"CREATE TABLE {t} AS SELECT g AS id, 'user ' || g AS name "
                                 f"FROM generate_series(1, {n}) g"))
            table_kb = conn.scalar(sa.text(f"SELECT pg_relation_size('{t}')")) // 1024
            rename, rename_grew = _timed(conn, t, f"ALTER TABLE {t} RENAME name TO full_name")
            rewrite, rewrite_grew = _timed(conn, t, f"ALTER TABLE {t} ADD COLUMN full_name text",
                                           f"UPDATE {t} SET full_name = name",
                                           f"ALTER TABLE {t} DROP COLUMN name")
            rows.append({"rows": n, "table (kB)": table_kb,
                         "rename (ms)": round(rename, 2), "rename wrote (kB)": rename_grew // 1024,
                         "drop+add+backfill (ms)": round(rewrite, 1),
                         "drop+add+backfill wrote (kB)": rewrite_grew // 1024})
        trans.rollback()
    return pd.DataFrame(rows).set_index("rows")


def flat_vs_linear_verdict(timings: pd.DataFrame) -> str:
    """Return a fixed sentence from what the two changes wrote (bytes, not milliseconds: load cannot flip it).

    The rename writes nothing to the table at any size; drop+add+backfill writes a new version
    of every row, so the table grows by about its own size, at every size.
    """
    grew = timings["drop+add+backfill wrote (kB)"] / timings["table (kB)"]
    if (timings["rename wrote (kB)"] == 0).all() and (grew > 0.5).all():
        small, big = timings.index.min(), timings.index.max()
        return (f"At {small:,} and at {big:,} rows, the rename wrote nothing to the table, while "
                "drop+add+backfill wrote a new version of every row (the table grew by about its own "
                "size): its work, and so its time, grows with the table.")
    return "Unexpected: the rename wrote to the table, or the backfill did not. Look at the table above."

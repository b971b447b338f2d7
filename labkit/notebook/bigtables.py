"""Notebook 7: what a migration on a big table costs the application running next to it.

``measure`` runs one migration step on its own connection while two more connections play
the application, a *reader* (``SELECT`` of one row by id) and a *writer* (``UPDATE`` of one
row), each in a thread, one statement every few milliseconds. A fourth connection, the
*observer*, reads ``pg_locks`` for the locks the migration holds on the table and
``pg_stat_activity`` for the reader and writer waiting on a lock. What comes back is what
the catalogue in the notebook shows: the lock, whether the table was rewritten (its file,
``pg_class.relfilenode``, changed), and how long the slowest read and write took while the
step ran.
"""

from __future__ import annotations

import contextlib
import itertools
import random
import threading
import time
from collections.abc import Callable, Iterator

import sqlalchemy as sa
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext

from .. import settings
from .bigreport import Step, lock_name, strongest
from .liveapp import connection

# The size knob, LAB_BIG_ROWS (labkit/settings.py): the classroom load test sets it lower.
DEFAULT_ROWS = 1_000_000
MIN_ROWS = 10_000

READ = "SELECT score FROM accounts WHERE id = :id"
WRITE = "UPDATE accounts SET score = score + 1 WHERE id = :id"
KEEP_OUT = 100  # the application never touches the first ids, so the notebook can show them
PAUSE = 0.01  # between the application's statements: a busy table, not a flooded one
SAMPLE = 0.01  # between the observer's looks at pg_locks (each commit also gets one)


def big_rows() -> int:
    """Return how many rows notebook 7's big table gets: LAB_BIG_ROWS (at least MIN_ROWS), or 1,000,000."""
    raw = (settings.big_rows() or "").replace("_", "")
    return max(MIN_ROWS, int(raw)) if raw.isdigit() else DEFAULT_ROWS


class _Client(threading.Thread):
    """The application: one statement on a random row, again and again, each one timed."""

    def __init__(self, eng: sa.Engine, sql: str, rows: int, name: str):
        super().__init__(daemon=True, name=name)
        self.conn, self.sql, self.rows = connection(eng, name), sql, rows
        self.conn.exec_driver_sql("SET statement_timeout = '60s'")  # never hang a notebook
        self.pid = self.conn.scalar(sa.text("SELECT pg_backend_pid()"))
        self.spans: list[tuple[float, float]] = []
        self.errors: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        pick = random.Random(self.name)
        try:
            while not self.stop.is_set():
                began = time.perf_counter()
                try:
                    self.conn.execute(sa.text(self.sql), {"id": pick.randint(KEEP_OUT + 1, self.rows)})
                except sa.exc.DBAPIError as exc:  # a check the row fails: the application logs it, goes on
                    self.errors.append(type(exc.orig).__name__)
                self.spans.append((began, time.perf_counter()))
                time.sleep(PAUSE)
        finally:
            self.conn.close()

    def waited(self, start: float, end: float) -> float:
        """Return the longest statement that overlapped [start, end], in seconds."""
        return max((b - a for a, b in self.spans if a < end and b > start), default=0.0)


# What the observer asks, over and over: the migration's locks on the tables, and which of the
# application's connections wait for a lock.
OBSERVER_SQL = """\
SELECT l.relation::regclass::text, l.mode, NULL
  FROM pg_locks l
 WHERE l.pid = :migration AND l.granted AND l.locktype = 'relation'
   AND l.relation = ANY(CAST(:tables AS regclass[]))
UNION ALL
SELECT NULL, NULL, a.application_name
  FROM pg_stat_activity a
 WHERE a.pid = ANY(:clients) AND a.wait_event_type = 'Lock'"""


class _Observer(threading.Thread):
    """Reads pg_locks and pg_stat_activity over and over while the migration step runs."""

    def __init__(self, eng: sa.Engine, migration_pid: int, tables: list[str], clients: list[int]):
        super().__init__(daemon=True, name="observer")
        self.conn = connection(eng, "observer")
        self.params = {"migration": migration_pid, "tables": tables, "clients": clients}
        self.modes: dict[str, set[str]] = {t: set() for t in tables}
        self.timeline: list[tuple[float, str | None]] = []  # (when, strongest mode on the main table)
        self.main = tables[0]
        self.blocked: set[str] = set()
        self.stop, self.wanted, self.seen = threading.Event(), threading.Event(), threading.Event()

    def run(self) -> None:
        sql = sa.text(OBSERVER_SQL)
        try:
            while not self.stop.is_set():
                wanted, now = self.wanted.is_set(), set()
                for table, mode, waiting in self.conn.execute(sql, self.params):
                    if waiting:
                        self.blocked.add(waiting.removeprefix("notebook 7 "))
                    else:
                        self.modes.setdefault(table, set()).add(mode)
                        now |= {mode} if table == self.main else set()
                self.timeline.append((time.perf_counter(), strongest(now)))
                if wanted:
                    self.wanted.clear()
                    self.seen.set()
                time.sleep(SAMPLE)
        finally:
            self.conn.close()

    def held(self, start: float, end: float) -> str:
        """Return the lock on the main table held longest in [start, end], and the strongest if another."""
        spans: dict[str, float] = {}
        marks = [(t, m) for t, m in self.timeline if start <= t <= end] + [(end, None)]
        for (t, mode), (later, after) in itertools.pairwise(marks):
            if mode and mode == after:  # held from one look to the next: a lock seen once was a moment
                spans[mode] = spans.get(mode, 0.0) + later - t
        peak = strongest(self.modes.get(self.main, ()))
        longest = max(spans, key=spans.get) if spans else peak
        if longest == peak:
            return lock_name(peak)
        return f"{lock_name(longest)}; {lock_name(peak)} briefly"

    def checkpoint(self, *_) -> None:
        """Wait until a sample taken from now on is in: the locks held now are recorded."""
        self.seen.clear()
        self.wanted.set()
        self.seen.wait(5.0)


def _report(eng: sa.Engine, behind: float) -> threading.Thread:
    """Start a report: a transaction that reads accounts, then keeps its lock for ``behind`` s."""
    ready = threading.Event()

    def run() -> None:
        with contextlib.closing(connection(eng, "report")) as conn:
            conn.exec_driver_sql("BEGIN")
            conn.exec_driver_sql("SELECT count(*) FROM accounts WHERE id <= 1000")
            ready.set()
            time.sleep(behind)
            conn.exec_driver_sql("COMMIT")

    thread = threading.Thread(target=run, daemon=True, name="report")
    thread.start()
    ready.wait(5.0)
    return thread


_migrating: list[int] = []  # the backend pid of each measure() running now, innermost last


def _relfilenode(conn: sa.Connection, name: str) -> int:
    return conn.scalar(sa.text("SELECT relfilenode FROM pg_class WHERE oid = CAST(:t AS regclass)"), {"t": name})


def measure(eng: sa.Engine, operation: str, way: str, migrate: Callable[[Operations], object], *,
            keep: bool = False, safe: bool = False, behind: float = 0.0,
            tables: tuple[str, ...] = ("accounts",), undo: Callable[[Operations], object] | None = None) -> Step:
    """Run ``migrate(op)`` while a reader and a writer use accounts; return what it cost them.

    ``op`` is Alembic's ``Operations`` on the migration's own connection. Unless ``keep``, the
    step runs in a transaction that is rolled back after the observer has seen its locks (a
    rehearsal: the table is as before); with ``keep`` it is committed. Before every commit
    (Alembic commits each revision) the observer records the locks held. ``safe`` marks the
    step as a safe way in the catalogue. ``behind`` starts a report first that keeps a lock on
    accounts for that many seconds. ``undo(op)``, unmeasured, runs after a kept step, so the next
    measurement starts from the same table.
    """
    rows = eng.connect().execution_options(isolation_level="AUTOCOMMIT")
    with rows:
        top = rows.scalar(sa.text("SELECT max(id) FROM accounts"))
    reader, writer = _Client(eng, READ, top, "reader"), _Client(eng, WRITE, top, "writer")
    conn = connection(eng, "migration").execution_options(isolation_level="READ COMMITTED")
    pid = conn.scalar(sa.text("SELECT pg_backend_pid()"))
    _migrating.append(pid)
    before = _relfilenode(conn, tables[0])
    conn.commit()
    observer = _Observer(eng, pid, list(tables), [reader.pid, writer.pid])
    sa.event.listen(conn, "commit", observer.checkpoint)  # runs before each COMMIT is sent
    for thread in (reader, writer, observer):
        thread.start()
    report = _report(eng, behind) if behind else None
    time.sleep(0.05)  # the application is running before the migration starts
    step = Step(operation, way, safe=safe)
    try:
        start = time.perf_counter()
        if not keep:
            conn.begin()
        op = Operations(MigrationContext.configure(conn))
        step.result = migrate(op)
        step.seconds = time.perf_counter() - start
        observer.checkpoint()
        step.rewrote = _relfilenode(conn, tables[0]) != before
        conn.rollback() if not keep else conn.commit()
        end = time.perf_counter()
        lock = observer.held(start, end)
    finally:
        if report is not None:
            report.join()
        time.sleep(0.05)
        for thread in (reader, writer, observer):
            thread.stop.set()
        for thread in (reader, writer, observer):
            thread.join(60)
        if undo is not None:
            sa.event.remove(conn, "commit", observer.checkpoint)
            undo(Operations(MigrationContext.configure(conn)))
            conn.commit()
        conn.close()
        _migrating.remove(pid)
    step.reader_waited, step.writer_waited = reader.waited(start, end), writer.waited(start, end)
    others = [f"{t}: {lock_name(strongest(observer.modes.get(t, ())))}" for t in tables[1:]]
    step.lock = lock + (f" ({'; '.join(others)})" if others else "")
    step.blocked = sorted(observer.blocked)
    return step


@contextlib.contextmanager
def cancel_when(eng: sa.Engine, row: int, column: str = "level") -> Iterator[None]:
    """Cancel the migration's running statement once accounts row ``row`` has a ``column``.

    Plays a deploy stopped halfway: a thread watches that one row, then calls
    ``pg_cancel_backend`` on the connection of the ``measure`` that is running, whenever it
    runs an UPDATE, until the block ends. The migration sees QueryCanceled, as after Ctrl+C in psql.
    """
    done = threading.Event()
    probe = sa.text(f"SELECT {column} IS NOT NULL FROM accounts WHERE id = :id")
    cancel = sa.text("SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE pid = :pid "
                     "AND state = 'active' AND query LIKE 'UPDATE%'")
    pid = {"pid": _migrating[-1] if _migrating else None}

    def watch() -> None:
        with contextlib.closing(connection(eng, "stop button")) as conn:
            while not done.is_set() and not conn.scalar(probe, {"id": row}):
                time.sleep(0.01)
            while not done.is_set():  # an idle moment between batches ignores a cancel: again
                conn.execute(cancel, pid)
                time.sleep(0.005)

    thread = threading.Thread(target=watch, daemon=True, name="stop button")
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(10)

"""A live application beside a migration: old and new code versions, every statement counted.

A migration on a production table runs while the application keeps writing. The old code
(still deployed) INSERTs rows without the new column; the new code INSERTs and UPDATEs with
it. ``running`` plays that: each ``Version`` of the application is a thread on a connection
of its own that runs its statements in turn, one every ``PAUSE`` seconds, and records each
one: the phase it ran in (``Live.phase``), how long it took, and the error class if
PostgreSQL rejected it. ``Live.tally`` counts them (attempted, committed, failed, the
longest wait), ``Live.verdict`` says per phase which writes were rejected, in words that do
not depend on the machine's speed.

Parameters a statement may use: ``:n``, a number never handed out before in this run (for
a new row's key), and ``:id``, a random existing key between the bounds given to ``running``.
"""

from __future__ import annotations

import contextlib
import itertools
import random
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import sqlalchemy as sa

PAUSE = 0.02  # between one version's statements: a busy table, and little CPU (no busy loop)
WRITES = ("INSERT", "UPDATE", "DELETE")


def connection(eng: sa.Engine, name: str) -> sa.Connection:
    """Return an autocommit connection of its own, named ``notebook 7 NAME`` in pg_stat_activity."""
    own = sa.create_engine(eng.url, poolclass=sa.pool.NullPool,
                           connect_args={"application_name": f"notebook 7 {name}"})
    return own.connect().execution_options(isolation_level="AUTOCOMMIT")


@dataclass(frozen=True)
class Version:
    """One version of the application: a name ("old", "new") and the SQL statements it runs in turn."""

    name: str
    statements: tuple[str, ...]


def version(name: str, *statements: str) -> Version:
    """Return an application version that runs ``statements`` (SQL text) in turn, forever."""
    return Version(name, tuple(statements))


@dataclass
class Record:
    """One statement the application ran: where, what, how long, and the error class if it failed."""

    phase: str
    version: str
    verb: str
    seconds: float
    error: str | None = None


def verb(sql: str) -> str:
    """Return a statement's first word in capitals: INSERT, UPDATE, SELECT..."""
    return sql.split(None, 1)[0].upper()


@dataclass
class Live:
    """The application running now: its versions' threads, and every statement they ran."""

    eng: sa.Engine
    ids: tuple[int, int]
    numbers: Iterator[int]
    records: list[Record] = field(default_factory=list)
    label: str = ""
    threads: dict[str, _Runner] = field(default_factory=dict)
    ran: threading.Condition = field(default_factory=threading.Condition)

    def deploy(self, ver: Version) -> None:
        """Start ``ver`` beside whatever runs now (a deploy that adds servers with the new code)."""
        if ver.name in self.threads:
            return
        runner = _Runner(self, ver)
        self.threads[ver.name] = runner
        runner.start()

    def retire(self, name: str) -> None:
        """Stop version ``name`` after its current statement (its last server is gone)."""
        runner = self.threads.pop(name, None)
        if runner is not None:
            runner.stop.set()
            runner.join(60)

    def phase(self, label: str) -> None:
        """Count every statement that starts from now on under ``label`` (a revision, a deploy)."""
        self.label = label

    def settle(self, times: int = 3, timeout: float = 30.0) -> None:
        """Wait until each running version has run each of its statements ``times`` more times in this phase."""
        with self.ran:
            start, label = len(self.records), self.label
            wanted = {(name, verb(s)): times for name, r in self.threads.items() for s in r.ver.statements}

            def done() -> bool:
                seen: dict[tuple[str, str], int] = {}
                for rec in self.records[start:]:
                    if rec.phase == label:  # one that began before the phase counts where it began
                        seen[rec.version, rec.verb] = seen.get((rec.version, rec.verb), 0) + 1
                return all(seen.get(k, 0) >= n for k, n in wanted.items())

            self.ran.wait_for(done, timeout)

    def tally(self):
        """Return a table: per phase, version and statement, attempted, committed, failed, errors, longest."""
        import pandas as pd

        rows: dict[tuple[str, str, str], dict] = {}
        for rec in list(self.records):
            row = rows.setdefault((rec.phase, rec.version, rec.verb), {
                "phase": rec.phase, "app": rec.version, "statement": rec.verb, "attempted": 0,
                "committed": 0, "failed": 0, "errors": set(), "longest (s)": 0.0})
            row["attempted"] += 1
            row["failed" if rec.error else "committed"] += 1
            if rec.error:
                row["errors"].add(rec.error)
            row["longest (s)"] = max(row["longest (s)"], round(rec.seconds, 2))
        for row in rows.values():
            row["errors"] = ", ".join(sorted(row["errors"]))
        return pd.DataFrame(list(rows.values()))

    def rejected(self, version: str | None = None) -> int:
        """Return how many writes PostgreSQL rejected (of one version, or of all)."""
        return sum(1 for r in self.records if r.error and r.verb in WRITES
                   and version in (None, r.version))

    def verdict(self) -> str:
        """Return, per phase and version, which writes were rejected: words, no counts, no timings."""
        lines, seen, phases = [], {}, {}
        for rec in list(self.records):
            if rec.verb in WRITES:
                phases.setdefault(rec.phase, len(phases))
                seen.setdefault((rec.phase, rec.version, rec.verb), set()).add(rec.error)
        wide = max((len(phase) for phase in phases), default=0)
        for (phase, name, what), errors in sorted(seen.items(), key=lambda kv: (phases[kv[0][0]], kv[0][1:])):
            failed = sorted(e for e in errors if e)
            said = f"rejected ({', '.join(failed)})" if failed else "all committed"
            lines.append(f"{phase:<{wide}}  {name:<4} {what:<7} {said}")
        return "\n".join(lines)


class _Runner(threading.Thread):
    """One version of the application: its statements in turn, each timed and recorded."""

    def __init__(self, live: Live, ver: Version):
        super().__init__(daemon=True, name=f"app {ver.name}")
        self.live, self.ver, self.stop = live, ver, threading.Event()
        self.conn = connection(live.eng, f"app {ver.name}")
        self.conn.exec_driver_sql("SET statement_timeout = '60s'")  # never hang a notebook

    def run(self) -> None:
        pick = random.Random(self.ver.name)
        texts = [(sa.text(s), verb(s), set(re.findall(r"(?<!:):(\w+)", s))) for s in self.ver.statements]
        try:
            for stmt, what, names in itertools.cycle(texts):
                if self.stop.is_set():
                    break
                values = {"n": next(self.live.numbers), "id": pick.randint(*self.live.ids)}
                phase, error, began = self.live.label, None, time.perf_counter()
                try:
                    self.conn.execute(stmt, {k: values[k] for k in names if k in values})
                except sa.exc.DBAPIError as exc:
                    error = type(exc.orig).__name__
                    if exc.connection_invalidated:
                        self.conn = connection(self.live.eng, f"app {self.ver.name}")
                with self.live.ran:
                    self.live.records.append(Record(phase, self.ver.name, what,
                                                    time.perf_counter() - began, error))
                    self.live.ran.notify_all()
                self.stop.wait(PAUSE)
        finally:
            self.conn.close()


@contextlib.contextmanager
def running(eng: sa.Engine, *versions: Version, ids: tuple[int, int] = (1, 1), first: int = 1,
            phase: str = "start") -> Iterator[Live]:
    """Run the application's ``versions`` beside the block; stop them all when it ends.

    ``:id`` in a statement is a random key in ``ids`` (both ends included); ``:n`` counts up
    from ``first``. Statements count under ``phase`` until ``Live.phase`` names another; the
    block starts once each statement has run once. Deploy
    and retire versions inside the block with ``Live.deploy`` and ``Live.retire``.
    """
    live = Live(eng, ids, itertools.count(first), label=phase)
    try:
        for ver in versions:
            live.deploy(ver)
        live.settle(1)  # every statement has run once under ``phase``: the block starts on a live app
        yield live
    finally:
        for name in list(live.threads):
            live.retire(name)

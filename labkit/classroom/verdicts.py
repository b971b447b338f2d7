"""Each learner's exercises on the instructor's page: every self-check's last verdict, noted in their database.

How a verdict gets there, in the classroom hub only:

1. ``hub.stage_lab`` writes a kernel spec ``python3`` into the staging folder
   (``write_kernelspec``) and ``hub.learner_environment`` puts it first on the learner's
   ``JUPYTER_PATH``. It is the venv's own kernel with one more argument: ``--ext`` loads this
   module into every kernel the learner starts, from a folder only root can write.
2. When a cell runs that is one of the series' self-checks (``catalogue``: the notebooks'
   ``self-check`` cells, labelled ``3.2`` for notebook 3's second exercise, found by the cell id
   JupyterLab sends or else by the exact source), what it prints is read on its way to the
   cell's output: a line starting ``✓`` is solved, one starting ``✗`` (or an error) is not yet.
3. That verdict is written, from a thread of its own once the cell is done, to
   ``lab_progress.exercises`` in the learner's own database (their DATABASE_URL and role): one
   row per exercise with its time. A ✓ stays: a later ✗ (a restarted kernel, a check re-run
   after the database moved on) does not undo an exercise once solved.

``progress`` reads that table read-only, as the room's reader role, with its 100 ms lock timeout,
and only when it is a plain table of text columns: the learner owns it.

Why not run each self-check's query from the admin's side: most self-checks compare the
database with what the learner's kernel holds (a prediction, a function they wrote), which the
admin can neither see nor should run. So the kernel notes what its self-check said. A learner
could write a ✓ into their own table by hand: this is a view of the room, not a grade. A verdict
that cannot be written (no database, a lock) is dropped silently: the notebook never shows it.
Standard library only at import (psycopg2 on the first verdict): every kernel of the room loads it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import threading
from functools import cache
from pathlib import Path
from typing import NamedTuple

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"  # labkit.paths' own, without its imports
SCHEMA, TABLE = "lab_progress", "lab_progress.exercises"
SOLVED, NOT_YET = "✓", "✗"
EXTENSION = __name__  # what the kernel spec's --ext loads
# The room's read: only a plain table whose two columns are text (progress checks that first).
READ = f"SELECT exercise, verdict FROM {TABLE} WHERE exercise = ANY(%s) AND verdict IN ('{SOLVED}', '{NOT_YET}')"
IS_PLAIN = f"""SELECT count(*) = 2 FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
    WHERE c.oid = to_regclass('{TABLE}') AND c.relkind = 'r' AND a.attname IN ('exercise', 'verdict')
      AND a.atttypid = 'pg_catalog.text'::pg_catalog.regtype AND NOT a.attisdropped"""
WRITE = [
    f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}",
    f"""CREATE TABLE IF NOT EXISTS {TABLE} (
        exercise text PRIMARY KEY, verdict text NOT NULL CHECK (verdict IN ('{SOLVED}', '{NOT_YET}')),
        checked_at timestamptz NOT NULL DEFAULT now())""",
    f"""INSERT INTO {TABLE} AS e (exercise, verdict) VALUES (%s, %s)
        ON CONFLICT (exercise) DO UPDATE SET verdict = EXCLUDED.verdict, checked_at = now()
        WHERE e.verdict <> '{SOLVED}'""",
]
log = logging.getLogger(__name__)


class Check(NamedTuple):
    """One self-check cell: its label (``3.2``), the words for the room, its cell id and source."""

    label: str
    title: str
    cell_id: str
    source: str


def _key(source: str) -> str:
    return "\n".join(line.rstrip() for line in source.strip().splitlines())


@cache
def catalogue(folder: Path = NOTEBOOKS) -> tuple[Check, ...]:
    """Return every self-check of the numbered notebooks in ``folder``, in the series' order."""
    found = []
    for path in sorted(Path(folder).glob("[0-9]*.ipynb")):
        number = int(path.name[:2])
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        checks = [c for c in cells if "self-check" in c.get("metadata", {}).get("tags", [])]
        for i, cell in enumerate(checks, 1):
            source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            found.append(Check(f"{number}.{i}", f"notebook {number}'s exercise {i}", cell.get("id", ""),
                               _key(source)))
    return tuple(found)


def verdict_of(printed: str, failed: bool) -> str | None:
    """Return what a self-check said: ✓, ✗, or None when it printed neither (and raised nothing)."""
    lines = [line.lstrip() for line in printed.splitlines()]
    if failed or any(line.startswith(NOT_YET) for line in lines):
        return NOT_YET
    return SOLVED if any(line.startswith(SOLVED) for line in lines) else None


def record(label: str, verdict: str, url: str | None = None) -> bool:
    """Write one verdict to the learner's database (DATABASE_URL); return whether it was written."""
    url = url or os.environ.get("DATABASE_URL")
    if not url:
        return False
    import psycopg2  # only once a self-check ran: a kernel's start stays light

    dsn = url.replace("postgresql+psycopg2://", "postgresql://", 1)
    conn = None
    try:
        conn = psycopg2.connect(dsn, connect_timeout=3, application_name="lab exercises",
                                options="-c lock_timeout=1s -c statement_timeout=3s")
        with conn, conn.cursor() as cur:  # one transaction, committed at the end of the block
            for sql in WRITE[:-1]:
                cur.execute(sql)
            cur.execute(WRITE[-1], (label, verdict))
        return True
    except psycopg2.Error as exc:  # a verdict is a courtesy to the instructor: never the learner's problem
        log.debug("exercise %s: verdict not written: %s", label, str(exc).strip().splitlines()[0])
        return False
    finally:
        if conn is not None:
            conn.close()


class _Tee:
    """sys.stdout for one self-check cell: everything passes on to the cell, and is kept."""

    def __init__(self, stream):
        self.stream, self.parts = stream, []

    def write(self, text):
        self.parts.append(text)
        return self.stream.write(text)

    def __getattr__(self, name):
        return getattr(self.stream, name)


class Watcher:
    """The kernel's side: notice a self-check cell, keep what it prints, record its verdict."""

    def __init__(self, checks=None):
        self.checks = catalogue() if checks is None else checks
        self.by_id = {c.cell_id: c for c in self.checks if c.cell_id}
        self.by_source = {c.source: c for c in self.checks}
        self.current: tuple[Check, _Tee] | None = None

    def pre_run_cell(self, info) -> None:
        check = self.by_id.get(getattr(info, "cell_id", None) or "") or self.by_source.get(_key(info.raw_cell or ""))
        if check is not None:
            self.current = (check, _Tee(sys.stdout))
            sys.stdout = self.current[1]

    def post_run_cell(self, result) -> None:
        if self.current is None:
            return
        check, tee = self.current
        self.current = None
        if sys.stdout is tee:
            sys.stdout = tee.stream
        failed = result is None or result.error_in_exec is not None or result.error_before_exec is not None
        verdict = verdict_of("".join(tee.parts), failed)
        if verdict is not None:  # written beside the kernel: the learner's next cell never waits for it; not a
            # daemon, so a kernel shut down right after the check still writes it before it exits
            threading.Thread(target=record, args=(check.label, verdict), name="lab exercises").start()


def load_ipython_extension(ipython) -> None:
    """Called by IPython for ``--ext labkit.classroom.verdicts``: watch every cell the learner runs."""
    watcher = Watcher()
    ipython.events.register("pre_run_cell", watcher.pre_run_cell)
    ipython.events.register("post_run_cell", watcher.post_run_cell)


def write_kernelspec(jupyter_dir: Path) -> Path:
    """Write the classroom's ``python3`` kernel spec under ``jupyter_dir/kernels``; return its folder.

    ipykernel's own (this Python, its logos, its metadata) with one more argument: ``--ext``.
    """
    from ipykernel.kernelspec import write_kernel_spec

    folder = Path(jupyter_dir) / "kernels" / "python3"
    shutil.rmtree(folder, ignore_errors=True)
    folder.parent.mkdir(parents=True, exist_ok=True)
    return Path(write_kernel_spec(folder, extra_arguments=[f"--ext={EXTENSION}"]))

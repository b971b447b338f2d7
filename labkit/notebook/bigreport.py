"""Notebook 7's results: measured steps as tables, robust verdicts, a plot; its project folder.

``labkit.bigtables`` measures; this module only shows what was measured. The verdicts are
fixed sentences chosen by generous comparisons, the way notebook 3's flat-against-linear
verdict is, so the notebook's saved output is the same on any machine while the numbers
themselves stay in cells nbval does not compare.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext

from .. import database, paths, phases

# PostgreSQL's table lock modes, weakest first (pg_locks spells them this way).
LOCK_MODES = ("AccessShareLock", "RowShareLock", "RowExclusiveLock", "ShareUpdateExclusiveLock",
              "ShareLock", "ShareRowExclusiveLock", "ExclusiveLock", "AccessExclusiveLock")


def lock_name(mode: str | None) -> str:
    """Return a pg_locks mode as the SQL documentation writes it: AccessExclusiveLock -> ACCESS EXCLUSIVE."""
    if not mode:
        return "none seen"
    words, word = [], ""
    for ch in mode.removesuffix("Lock"):
        if ch.isupper() and word:
            words.append(word)
            word = ""
        word += ch
    return " ".join([*words, word]).upper()


def strongest(modes) -> str | None:
    """Return the strongest of some pg_locks modes, or None."""
    known = [m for m in modes if m in LOCK_MODES]
    return max(known, key=LOCK_MODES.index) if known else None


@dataclass
class Step:
    """One measured migration step: the lock it held, whether it rewrote, what it cost others."""

    operation: str
    way: str
    safe: bool = False
    lock: str = "none seen"
    rewrote: bool = False
    seconds: float = 0.0
    reader_waited: float = 0.0
    writer_waited: float = 0.0
    blocked: list[str] = field(default_factory=list)  # who pg_stat_activity saw waiting on a lock
    result: object = None

    def row(self) -> dict:
        """Return the step as one row of the catalogue table."""
        return {"operation": self.operation, "": "safe" if self.safe else "dangerous",
                "way": self.way, "lock on accounts": self.lock,
                "rewrites": "yes" if self.rewrote else "no", "step (s)": round(self.seconds, 2),
                "reader waited (s)": round(self.reader_waited, 2),
                "writer waited (s)": round(self.writer_waited, 2)}

    def worst(self) -> float:
        """Return the longer of the reader's and the writer's waits."""
        return max(self.reader_waited, self.writer_waited)


def table(steps: list[Step]) -> pd.DataFrame:
    """Return the steps as a table, one row each, with their timings."""
    return pd.DataFrame([s.row() for s in steps])


def locks(steps: list[Step]) -> pd.DataFrame:
    """Return only what does not vary from run to run: each step's lock and whether it rewrote."""
    return table(steps)[["operation", "", "way", "lock on accounts", "rewrites"]]


def catalogue(steps: dict[str, Step]) -> pd.DataFrame:
    """Return every measured step grouped by operation, dangerous ways first: the catalogue.

    The operation and the kind of way are the index, so each operation names its rows once.
    """
    kept = [s for s in steps.values() if s.operation != "nothing"]
    order = list(dict.fromkeys(s.operation for s in kept))
    kept.sort(key=lambda s: (order.index(s.operation), s.safe))
    return table(kept).set_index(["operation", ""])


def verdict(dangerous: Step, *safe: Step) -> str:
    """Return a fixed sentence from a generous comparison of the waits (never a number).

    Expected: the dangerous way's lock holds the reader or the writer for most of the step,
    and no safe step makes either wait a quarter as long. The thresholds leave room for a
    busy machine.
    """
    who = [c for c in ("reader", "writer") if c in dangerous.blocked]
    held = dangerous.worst() >= 0.2 and dangerous.worst() >= 0.5 * dangerous.seconds
    if not (who and held and all(s.worst() < 0.25 * dangerous.worst() for s in safe)):
        return "The timings were too noisy to compare on this machine; run the cell again."
    both = " and the ".join(who)
    return (f"{dangerous.way}: the {both} waited on its lock about as long as the step ran. "
            f"The safe way: no wait even a quarter as long.")


def plot_waits(dangerous: Step, safe: list[Step]):
    """Draw the reader's and the writer's longest waits, the dangerous way against each safe step."""
    import matplotlib.pyplot as plt

    steps = [dangerous, *safe]
    labels = [s.way for s in steps]
    fig, ax = plt.subplots(figsize=(9, 3.2))
    y = range(len(steps))
    ax.barh([i - 0.2 for i in y], [s.reader_waited for s in steps], height=0.4, label="reader")
    ax.barh([i + 0.2 for i in y], [s.writer_waited for s in steps], height=0.4, label="writer")
    ax.set_yticks(list(y), labels)
    ax.invert_yaxis()
    ax.set_xlabel("longest wait of one statement (s)")
    ax.set_title(f"{dangerous.operation}: how long the application waited")
    ax.legend(loc="lower right")
    fig.tight_layout()
    plt.close(fig)  # shown once, as the cell's result, not again by the inline backend
    return fig


def show_sql(migrate: Callable[[Operations], object]) -> None:
    """Print the SQL that ``migrate(op)`` would run on PostgreSQL, without a database (offline mode)."""
    context = MigrationContext.configure(dialect_name="postgresql",
                                         opts={"as_sql": True, "output_buffer": sys.stdout})
    migrate(Operations(context))


def project_folder(name: str) -> Path:
    """Return an empty folder ``name`` in the git-ignored workspace, made anew on every call."""
    url = database.resolve_url()
    folder = paths.workspace() / (url.database or "default") / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def forget_bytecode(script_location: str | Path) -> None:
    """Delete the compiled copies of a migrations folder's revisions, so an edit is never loaded stale."""
    phases.forget_bytecode(Path(script_location) / "versions")

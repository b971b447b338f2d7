"""The room at a glance: each learner's status, stuck learners first, as text lines or CSV.

A learner's status is the first of these that applies (the order the room is sorted in):

1. ``waiting``: one of their sessions has waited 5 s or more for a lock (a migration behind a
   kernel's open transaction, typically);
2. ``idle in transaction``: a session holding a lock on their tables has sat idle in its
   transaction for 30 s or more (a kernel that began a transaction and never ended it);
3. ``names lost``: ``full_name`` exists but lacks sample names (the rename ran as drop-and-add);
4. ``unreadable``: their database could not be read (missing, or the server refused);
5. ``behind``: their phase is below the room's pace, which is the instructor's ``pace`` if
   given, else the room's median phase (the upper median, so in a room of two, the one at the
   lower phase is behind);
6. ``ok``.

Each learner's exercises follow, one column per self-check of the series (``3.2`` is notebook
3's second): ✓ solved, ✗ not yet, · not tried, as their last self-check run said
(``verdicts``); under them, how many of the room have done each.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import statistics
from dataclasses import dataclass

from .progress import SAMPLE_NAMES, Learner
from .verdicts import SOLVED, catalogue

WAITING_STUCK = 5  # a migration queued for a second behind a reader is normal; for 5 s, it is stuck
IDLE_STUCK = 30  # a notebook cell holds its transaction for moments; half a minute idle is a cell left open
ORDER = ["waiting", "idle in transaction", "names lost", "unreadable", "behind", "ok"]
CSV_COLUMNS = ["learner", "status", "phase", "revision", "users", "names_kept", "last_migration_utc",
               "last_migration_in", "other_alembic_versions", "connections", "idle_in_transaction",
               "holds", "waits", "busy", "problem", "exercises_solved", "exercises_tried"]
NOT_TRIED = "·"


@dataclass
class Row:
    """One learner with their status, as the room shows them."""

    learner: Learner
    status: str


def pace_of(seen: list[Learner], pace: int | None = None) -> int | None:
    """Return the phase the room is at: ``pace`` if given, else the upper median of known phases."""
    if pace is not None:
        return pace
    phases = [s.phase for s in seen if s.phase is not None and s.problem is None]
    return statistics.median_high(phases) if phases else None


def status_of(s: Learner, pace: int | None) -> str:
    """Return a learner's status (see the module docstring)."""
    if s.waiting_seconds >= WAITING_STUCK:
        return "waiting"
    if s.idle_seconds >= IDLE_STUCK:
        return "idle in transaction"
    if s.kept is not None and s.kept < len(SAMPLE_NAMES):
        return "names lost"
    if s.problem:
        return "unreadable"
    if pace is not None and s.phase is not None and s.phase < pace:
        return "behind"
    return "ok"


def rows(seen: list[Learner], pace: int | None = None) -> list[Row]:
    """Return the room sorted stuck first: by status, then lowest phase, then oldest last migration."""
    room_pace = pace_of(seen, pace)
    out = [Row(s, status_of(s, room_pace)) for s in seen]
    oldest = dt.datetime.min.replace(tzinfo=dt.UTC)
    out.sort(key=lambda r: (ORDER.index(r.status), -1 if r.learner.phase is None else r.learner.phase,
                            r.learner.last_migration or oldest, r.learner.name))
    return out


def names_text(s: Learner) -> str:
    """Return whether the rename kept every sample name, in words."""
    if s.kept is None:
        return "not renamed yet" if s.users is not None else "-"
    return f"{s.kept}/{len(SAMPLE_NAMES)} kept"


def when_text(s: Learner, now: dt.datetime | None = None) -> str:
    """Return the last migration's time (UTC) and age, or 'unknown'."""
    if s.last_migration is None:
        return "unknown" if s.revision or s.projects else "-"
    now = now or dt.datetime.now(dt.UTC)
    age = int((now - s.last_migration).total_seconds())
    ago = f"{age} s ago" if age < 120 else f"{age // 60} min ago"
    return f"{s.last_migration.astimezone(dt.UTC):%H:%M:%S} ({ago}, {s.last_where})"


def phase_text(s: Learner) -> str:
    """Return 'phase N (revision)', 'not started', or the foreign revision."""
    if s.problem:
        return "-"
    if s.phase is None:
        return "busy (being migrated)" if s.revision is None else f"unknown revision {s.revision}"
    return f"phase {s.phase} ({s.revision})" if s.revision else "not started (phase 0)"


def locks_text(s: Learner) -> str:
    """Return the locks held and waited for, and what could not be read, in one string."""
    parts = [f"waits for {w}" for w in s.waits] + [f"holds {h}" for h in s.holds]
    parts += [f"{b} busy" for b in s.busy]
    return "; ".join(parts) or "-"


def labels() -> list[str]:
    """Return the series' exercises in order: ``1.1``, ``1.2``, ... (notebook, then exercise)."""
    return [c.label for c in catalogue()]


def exercise_marks(s: Learner) -> list[str]:
    """Return the learner's mark for each exercise, in order: ✓, ✗, or · (not tried)."""
    return [s.exercises.get(label, NOT_TRIED) for label in labels()]


def room_counts(room: list[Row]) -> list[tuple[str, str, int, int]]:
    """Return, per exercise: label, title, how many learners solved it, how many tried it."""
    return [(c.label, c.title, sum(r.learner.exercises.get(c.label) == SOLVED for r in room),
             sum(c.label in r.learner.exercises for r in room)) for c in catalogue()]


def exercise_lines(room: list[Row]) -> list[str]:
    """Return the exercise grid for the terminal: a learner per line, then the room's counts."""
    heads = labels()
    width = max([4, *(len(h) + 1 for h in heads)])
    out = [f"Exercises ({SOLVED} solved, ✗ not yet, {NOT_TRIED} not tried):",
           f"{'learner':<14} " + "".join(f"{h:>{width}}" for h in heads)]
    for r in room:
        out.append(f"{r.learner.name:<14} " + "".join(f"{m:>{width}}" for m in exercise_marks(r.learner)))
    out.append(f"{'done':<14} " + "".join(f"{f'{done}/{len(room)}':>{width}}" for _, _, done, _ in room_counts(room)))
    return out


def lines(room: list[Row]) -> list[str]:
    """Return a header and one line per learner, for the terminal."""
    header = f"{'learner':<14} {'status':<20} {'phase':<40} {'users':>5}  {'names':<16} " \
             f"{'last migration (UTC)':<36} {'conns':>5}  locks"
    out = [header]
    for r in room:
        s = r.learner
        phase = phase_text(s) + (f" + {', '.join(s.projects)}" if s.projects else "")
        users = "-" if s.users is None else str(s.users)
        tail = s.problem if s.problem else locks_text(s)
        out.append(f"{s.name:<14} {r.status:<20} {phase:<40} {users:>5}  {names_text(s):<16} "
                   f"{when_text(s):<36} {s.connections:>5}  {tail}")
    return out


def csv_text(room: list[Row]) -> str:
    """Return the room as CSV, one row per learner, in the same order."""
    buf = io.StringIO()
    out = csv.writer(buf)
    out.writerow(CSV_COLUMNS + [f"exercise_{label}" for label in labels()])
    for r in room:
        s = r.learner
        out.writerow([s.name, r.status, "" if s.phase is None else s.phase, s.revision or "",
                      "" if s.users is None else s.users, "" if s.kept is None else s.kept,
                      s.last_migration.isoformat() if s.last_migration else "", s.last_where,
                      "; ".join(s.projects), s.connections, s.idle_in_transaction,
                      "; ".join(s.holds), "; ".join(s.waits), "; ".join(s.busy), s.problem or "",
                      sum(v == SOLVED for v in s.exercises.values()), len(s.exercises),
                      *(m if m != NOT_TRIED else "" for m in exercise_marks(s))])
    return buf.getvalue()

"""Bring a stuck learner back: ``classroom goto LEARNER N`` and the progress page's button.

The instructor runs the learner's own ``goto N`` on the learner's database, connected as the
learner (their role, from the classroom's secrets), so everything it makes belongs to them, as
if they had typed it. Only that one database is touched, and no learner's file: the learner's
workspace stays as it is. It refuses while one of the learner's sessions holds or waits for a
lock there (a cell is running, or a transaction is open), and says whose. The learner's
notebook then notices at its next step that another session moved its database, and says so
in the lab's two lines (``sessions.moved_error``). Each move is logged, with who and when, in
``interventions.log`` in the classroom folder.
"""

from __future__ import annotations

import datetime as dt

from .. import database, phases
from ..errors import LabError
from . import learners, progress, server

LOG_NAME = "interventions.log"


def log_path():
    """Return the log of the instructor's moves: one line each, who, when, which learner, where to."""
    return server.folder() / LOG_NAME


def busy(seen: progress.Learner) -> str | None:
    """Return what of the learner's sessions is in the way (a lock held or awaited), or None."""
    if seen.problem:
        raise LabError(f"Could not read {seen.name}'s database: {seen.problem}. Nothing was changed.",
                       "Check the room with python -m lab_helpers classroom progress.")
    found = seen.holds + seen.waits + [f"{what} (busy)" for what in seen.busy]
    if seen.idle_in_transaction and not found:
        found = [f"{seen.idle_in_transaction} session(s) idle in an open transaction"]
    return found[0] if found else None


def bring_back(name: str, phase: int, who: str) -> str:
    """Bring learner ``name``'s database to the end of ``phase`` as their own ``goto``; log it; return the summary."""
    if name not in progress.learners():
        raise LabError(f"There is no learner {name!r} in this room. Nothing was changed.",
                       "The room's learners are listed by python -m lab_helpers classroom progress.")
    if phase not in range(0, 5):
        raise LabError(f"There is no phase {phase}: choose a phase from 0 (empty) to 4.")
    in_the_way = busy(progress.snapshot([name])[0])
    if in_the_way:
        raise LabError(f"{name}'s kernel holds a lock on their database right now: {in_the_way}.\n"
                       "Nothing was changed.",
                       "Wait until their cell finishes (or ask them to interrupt or restart the kernel),\n"
                       "then try again.")
    url = database.parse_database_url(learners.learner_url(name))
    eng = database.engine(url)
    try:
        summary = phases.goto(phase, url=url, clear_workspace=False)  # the learner's files are theirs
    finally:
        eng.dispose()  # no idle connection left in the learner's database, counted against their limit
    record(who, name, phase, summary)
    return summary


def record(who: str, name: str, phase: int, summary: str) -> str:
    """Append one line to the log: when (UTC), who, which learner, which phase; return it."""
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    line = f"{when} {who} brought {name} to phase {phase}: {summary}"
    path = log_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as out:
        out.write(line + "\n")
    return line


def recent(count: int = 10) -> list[str]:
    """Return the log's last ``count`` lines, newest last (none when nothing was logged)."""
    path = log_path()
    return path.read_text(encoding="utf-8").splitlines()[-count:] if path.exists() else []

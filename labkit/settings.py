"""Every setting the lab reads from the environment: ``LAB_*``, ``CLASSROOM_*`` and ``DATABASE_URL``.

Each one is read and checked here, at call time (never at import), so a test or a notebook
that changes the environment sees the change at once. A value that would silently mean
something else is refused with a ``LabError`` naming the setting and a good example
(``LAB_LOCK_TIMEOUT=10min`` means ten minutes; ``s5`` and ``LAB_BIG_ROWS=lots`` are refused).
Standard library only, apart from the lab's own error type (itself usable without Alembic).
"""

from __future__ import annotations

import os
import re

from .errors import LabError

STUDENT_NAME = re.compile(r"[a-z][a-z0-9_]{0,30}")  # a PostgreSQL-safe role and database suffix
PER_NOTEBOOK = "LAB_PER_NOTEBOOK"
# PostgreSQL's time units for a setting whose default unit is milliseconds (lock_timeout).
DURATION = re.compile(r"(\d+)\s*(us|ms|s|min|h|d)?")
YES, NO = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _get(name: str) -> str:
    return os.environ.get(name, "").strip()


def _refuse(name: str, expected: str, example: str) -> LabError:
    """Return the refusal of a bad value: the setting, what it takes, an example (never the value: a secret?)."""
    return LabError(f"{name} is set to a value the lab cannot use: it takes {expected}.",
                    f"Set it like this: export {name}={example}   (or unset it for the default).")


def _whole_number(name: str, example: str, low: int = 1, high: int | None = None) -> int | None:
    """Return the setting as a whole number in [low, high] (``1_000`` allowed), or None when unset."""
    raw = _get(name).replace("_", "")
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < low or (high is not None and int(raw) > high):
        span = f"from {low} to {high}" if high is not None else f"of {low} or more"
        raise _refuse(name, f"a whole number {span}", example)
    return int(raw)


# --------------------------------------------------------------------------- the lab (LAB_*)

def database_url() -> str | None:
    """Return DATABASE_URL, or None when it is unset or blank (``database.parse_database_url`` checks it)."""
    return _get("DATABASE_URL") or None


def data_dir() -> str | None:
    """Return LAB_DATA_DIR (the embedded server's data folder), or None when unset."""
    return _get("LAB_DATA_DIR") or None


def workspace() -> str | None:
    """Return LAB_WORKSPACE (where notebooks write their revisions), or None when unset."""
    return _get("LAB_WORKSPACE") or None


def student() -> str | None:
    """Return LAB_STUDENT (a learner's name on a shared server), or None when unset; a bad name is refused."""
    name = _get("LAB_STUDENT") or None
    if name is not None and not STUDENT_NAME.fullmatch(name):
        raise LabError(
            "LAB_STUDENT must be a lowercase letter followed by up to 30 lowercase letters,\n"
            "digits or underscores (for example alice or team_2). The name given was refused.",
            "Set a name such as alice (export LAB_STUDENT=alice), or unset LAB_STUDENT.")
    return name


def classroom_dir() -> str | None:
    """Return LAB_CLASSROOM_DIR (the classroom server's folder), or None when unset."""
    return _get("LAB_CLASSROOM_DIR") or None


def lock_timeout() -> str:
    """Return how long a migration or reset waits for a table lock: LAB_LOCK_TIMEOUT (default 5s).

    PostgreSQL's own form, checked here: a whole number above 0 and an optional unit
    (us, ms, s, min, h, d; none means milliseconds), so ``10min`` is ten minutes.
    """
    value = _get("LAB_LOCK_TIMEOUT")
    if not value:
        return "5s"
    match = DURATION.fullmatch(value)
    if match is None or int(match.group(1)) == 0:
        raise _refuse("LAB_LOCK_TIMEOUT", "a time above 0 as PostgreSQL writes it: a whole number "
                      "and a unit (ms, s, min or h)", "10s")
    return f"{int(match.group(1))}{match.group(2) or 'ms'}"


def per_notebook() -> bool:
    """Return whether LAB_PER_NOTEBOOK asks each notebook to work in a database of its own (1/true/yes/on)."""
    value = _get(PER_NOTEBOOK).lower()
    if value and value not in YES + NO:
        raise _refuse(PER_NOTEBOOK, "yes or no (1/true/yes/on, 0/false/no/off)", "1")
    return value in YES


def big_rows() -> str | None:
    """Return LAB_BIG_ROWS (how many rows notebook 7's big table gets) as digits, or None when unset."""
    rows = _whole_number("LAB_BIG_ROWS", "200_000")
    return None if rows is None else str(rows)


# --------------------------------------------------------------------------- the classroom hub (CLASSROOM_*)

def classroom_password() -> str:
    """Return CLASSROOM_PASSWORD, the learners' shared workshop password (8 characters or more)."""
    value = os.environ.get("CLASSROOM_PASSWORD", "")
    if len(value) < 8:
        raise LabError("CLASSROOM_PASSWORD must be the workshop password, 8 characters or more.",
                       "Set it like this: export CLASSROOM_PASSWORD='a-long-passphrase' and start again.")
    return value


def classroom_admin_password() -> str:
    """Return CLASSROOM_ADMIN_PASSWORD (the instructors' password), or "" when unset: no admin login."""
    return os.environ.get("CLASSROOM_ADMIN_PASSWORD", "")


def classroom_admins() -> set[str]:
    """Return CLASSROOM_ADMINS, the instructors' login names (comma-separated; default: instructor)."""
    names = {n.strip() for n in (_get("CLASSROOM_ADMINS") or "instructor").split(",") if n.strip()}
    if not names or not all(STUDENT_NAME.fullmatch(n) for n in names):
        raise _refuse("CLASSROOM_ADMINS", "login names separated by commas, each a lowercase letter "
                      "followed by letters, digits or underscores", "instructor,ta")
    return names


def classroom_state() -> str | None:
    """Return CLASSROOM_STATE (the hub's own state folder), or None when unset."""
    return _get("CLASSROOM_STATE") or None


def classroom_port() -> int:
    """Return CLASSROOM_PORT, the port the hub listens on at 127.0.0.1 (default 8800)."""
    port = _whole_number("CLASSROOM_PORT", "8800", 1, 65535)
    return 8800 if port is None else port


def classroom_api_token() -> str | None:
    """Return CLASSROOM_API_TOKEN (the load test's REST token), or None when unset."""
    return _get("CLASSROOM_API_TOKEN") or None


def progress_refresh() -> int:
    """Return CLASSROOM_PROGRESS_REFRESH, how often the progress page reloads itself in seconds (default 10)."""
    seconds = _whole_number("CLASSROOM_PROGRESS_REFRESH", "10")
    return 10 if seconds is None else seconds


def progress_bind() -> str | None:
    """Return CLASSROOM_PROGRESS_BIND, the address the progress service listens on (a pod's 0.0.0.0), or None."""
    return _get("CLASSROOM_PROGRESS_BIND") or None


def check_all() -> None:
    """Read every setting once, so a bad one is refused before anything starts."""
    for read in (database_url, data_dir, workspace, student, classroom_dir, lock_timeout, per_notebook,
                 big_rows, classroom_admins, classroom_state, classroom_port, classroom_api_token, progress_refresh):
        read()

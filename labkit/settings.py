"""Every setting the lab reads from the environment: ``LAB_*`` and ``DATABASE_URL``.

Standard library only, and read at call time (never at import), so a test or a notebook
that changes the environment sees the change at once. Values come back as given, stripped;
validation that needs the lab's error type lives with the code that uses the value.
"""

from __future__ import annotations

import os
import re

STUDENT_NAME = re.compile(r"[a-z][a-z0-9_]{0,30}")  # a PostgreSQL-safe role and database suffix
PER_NOTEBOOK = "LAB_PER_NOTEBOOK"


def _get(name: str) -> str:
    return os.environ.get(name, "").strip()


def database_url() -> str | None:
    """Return DATABASE_URL, or None when it is unset or blank."""
    return _get("DATABASE_URL") or None


def data_dir() -> str | None:
    """Return LAB_DATA_DIR (the embedded server's data folder), or None when unset."""
    return _get("LAB_DATA_DIR") or None


def workspace() -> str | None:
    """Return LAB_WORKSPACE (where notebooks write their revisions), or None when unset."""
    return _get("LAB_WORKSPACE") or None


def student() -> str | None:
    """Return LAB_STUDENT as given (not yet validated), or None when unset."""
    return _get("LAB_STUDENT") or None


def classroom_dir() -> str | None:
    """Return LAB_CLASSROOM_DIR (the classroom server's folder), or None when unset."""
    return os.environ.get("LAB_CLASSROOM_DIR") or None


def lock_timeout() -> str:
    """Return how long a migration or reset waits for a table lock (LAB_LOCK_TIMEOUT, default 5s)."""
    value = _get("LAB_LOCK_TIMEOUT")
    return value if value and value.replace("ms", "").replace("s", "").isdigit() else "5s"


def per_notebook() -> bool:
    """Return whether LAB_PER_NOTEBOOK asks each notebook to work in a database of its own."""
    return _get(PER_NOTEBOOK).lower() in ("1", "true", "yes", "on")


def big_rows() -> str | None:
    """Return LAB_BIG_ROWS (how many rows notebook 7's big table gets), or None when unset."""
    return _get("LAB_BIG_ROWS") or None

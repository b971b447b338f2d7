"""Shared fixtures: every test talks to the real embedded PostgreSQL (or DATABASE_URL)."""

import hashlib
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from labkit import phases, runtime  # noqa: E402


@pytest.fixture
def student_db(monkeypatch, request):
    """Give the test a database of its own (lab_t_<hash>), empty, selected through LAB_STUDENT.

    Subprocesses started by the test inherit LAB_STUDENT, so the alembic command line
    and ``python -m lab_helpers`` use the same database.
    """
    name = "t_" + hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:12]
    monkeypatch.setenv("LAB_STUDENT", name)
    phases.goto(0)
    yield runtime.resolve_url()


@pytest.fixture
def repo_env():
    """Return os.environ for a subprocess run from the repository root."""
    return dict(os.environ)

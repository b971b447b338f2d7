"""Shared fixtures: every test talks to the real embedded PostgreSQL (or DATABASE_URL)."""

import hashlib
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from labkit import database, paths, phases

from support import helpers


@pytest.fixture
def student_db(monkeypatch, request):
    """Give the test a database of its own (lab_t_<hash>), empty, selected through LAB_STUDENT.

    Subprocesses started by the test inherit LAB_STUDENT, so the alembic command line
    and ``python -m lab_helpers`` use the same database.
    """
    name = "t_" + hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:12]
    monkeypatch.setenv("LAB_STUDENT", name)
    phases.goto(0)
    url = database.resolve_url()
    yield url
    database.engine(url).dispose()
    helpers.drop_database(f"lab_{name}")
    shutil.rmtree(paths.workspace() / f"lab_{name}", ignore_errors=True)


# --------------------------------------------------------------------------- extra servers

@pytest.fixture(scope="session")
def scram_server():
    """A second PostgreSQL 18 from the bundled binaries: scram-sha-256 passwords on 127.0.0.1.

    Its superuser's password is full of URL special characters, the case that breaks
    configparser and naive URL handling. Stopped and deleted at the end of the session.
    """
    from support import servers

    server = servers.start_server(password="p@ss%w:rd/ 1", tcp=True)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def novector_server():
    """A PostgreSQL 18 built from a copy of the bundled binaries without pgvector."""
    from support import servers

    server = servers.start_server(with_vector=False)
    yield server
    server.stop()


# --------------------------------------------------------------------------- pytest-alembic

def pytest_configure(config):
    """Keep pytest-alembic from binding its tests to this file; test_reference_revisions.py imports them.

    pytest-alembic 0.13's own collector (bound to tests/conftest.py) crashes on pytest 9
    ("TestCollector object has no attribute _nodeid"). Its fixtures and built-in tests
    work fine when imported into a test module, so point its binding path nowhere.
    """
    if hasattr(config.option, "pytest_alembic_tests_path"):
        config.option.pytest_alembic_tests_path = "tests/pytest-alembic-is-imported-in-test_reference_revisions.py"


@pytest.fixture
def alembic_config():
    """Point pytest-alembic at the lab's own alembic.ini (and so its env.py and revisions)."""
    return phases.config()


@pytest.fixture
def alembic_engine(student_db):
    """The lab's engine for a database of the test's own, for pytest-alembic's built-in tests."""
    return database.engine(student_db)

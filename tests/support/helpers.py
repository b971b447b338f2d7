"""Helpers the test files share: the lab's command lines in a subprocess, and the server's admin side."""

from __future__ import annotations

import os
import subprocess
import sys
from urllib.parse import quote

import sqlalchemy as sa

from labkit import database
from labkit.paths import REPO


def run(args: list[str], *, timeout: float = 180, **env_changes) -> subprocess.CompletedProcess:
    """Run a command from the repo root; env_changes set (str) or remove (None) variables."""
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    for key, value in env_changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, encoding="utf-8",
                          timeout=timeout)


def lab(*args: str, **kwargs) -> subprocess.CompletedProcess:
    """Run ``python -m lab_helpers ARGS`` as a learner types it."""
    return run([sys.executable, "-m", "lab_helpers", *args], **kwargs)


def alembic(*args: str, **kwargs) -> subprocess.CompletedProcess:
    """Run the alembic command line from the repository root, as a learner would."""
    return run([sys.executable, "-m", "alembic", *args], **kwargs)


def text_of(done: subprocess.CompletedProcess) -> str:
    return done.stdout + done.stderr


def assert_short_and_secret_free(done: subprocess.CompletedProcess, *secrets: str) -> str:
    """The rule for every failure: at most 10 lines, no traceback, no password in any form."""
    text = text_of(done)
    assert len(text.strip().splitlines()) <= 10, text
    assert "Traceback" not in text, text
    for secret in secrets:
        for form in {secret, quote(secret, safe=""), quote(secret)}:
            assert form not in text, text
    return text


def server_url() -> sa.URL:
    """Return a URL for the server's own database (DATABASE_URL's, or the embedded ``postgres``)."""
    raw = os.environ.get("DATABASE_URL")
    return database.parse_database_url(raw) if raw else database.embedded_url()


def admin() -> sa.Connection:
    """Return an AUTOCOMMIT connection to the server, for creating and dropping databases."""
    return database.engine(server_url()).connect().execution_options(isolation_level="AUTOCOMMIT")


def drop_database(name: str) -> None:
    """Drop a lab database the tests made, even with sessions still open on it."""
    with admin() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

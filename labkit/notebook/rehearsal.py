"""Notebook 3's safety net: rehearse a migration and roll it back, write its SQL offline, lint it with squawk."""

from __future__ import annotations

import contextlib
import io
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.exc import DBAPIError

from .. import database
from ..diagnose import short_error
from ..errors import LabError


@contextlib.contextmanager
def rehearsal(cfg: Config) -> Iterator[sa.Connection]:
    """Hand ``cfg`` a connection inside a transaction that is always rolled back; yield it.

    Migrations run in the block see and change the database as usual, but nothing they do
    survives the block. A database error ends the block early: it is printed in one line.
    """
    eng = database.engine()
    with eng.connect() as conn:
        trans = conn.begin()
        cfg.attributes["connection"] = conn
        try:
            yield conn
        except DBAPIError as exc:
            print(f"PostgreSQL refused: {short_error(exc)}")
        finally:
            cfg.attributes.pop("connection", None)
            trans.rollback()
            print("Rolled back: the database is as it was before the rehearsal.")


def offline_sql(cfg: Config, span: str, path: Path) -> str:
    """Write the SQL that ``command.upgrade(cfg, span, sql=True)`` prints to ``path``; return it."""
    out, kept = io.StringIO(), cfg.output_buffer
    cfg.output_buffer = out  # Alembic's own option: the SQL goes here, not to this process's stdout
    try:
        command.upgrade(cfg, span, sql=True)
    finally:
        cfg.output_buffer = kept
    Path(path).write_text(out.getvalue())
    return out.getvalue().strip()


def squawk(path: Path) -> str:
    """Return squawk's findings for a SQL file, one per line: ``file:line:col: level: rule message``."""
    binary = shutil.which("squawk") or str(Path(sys.executable).parent / "squawk")
    if not Path(binary).exists():
        raise LabError("squawk is not installed in this environment.", "Run pip install squawk-cli")
    path = Path(path)
    result = subprocess.run([binary, "--reporter", "gcc", path.name], cwd=path.parent,
                            capture_output=True, text=True, timeout=60, check=False)
    return (result.stdout + result.stderr).strip() or "squawk found nothing to report."


def squawk_rules(report: str) -> list[str]:
    """Return the rule names in a squawk gcc-style report, in order."""
    return re.findall(r": (?:warning|error): ([a-z-]+) ", report)

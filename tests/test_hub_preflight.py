"""The hub refuses to start when learners could not run its Python (issue 19).

A venv's ``bin/python`` links to the Python it was made from. Here that Python is a copy of
the system's, inside a folder of mode 700, as a pyenv or uv Python under ``/root`` would be.
``python -m lab_helpers classroom hub`` from that venv must refuse in at most 3 lines naming the
folder, before JupyterHub starts; from this test run's own venv the same check passes. Both
need root: the check runs ``jupyterhub-singleuser`` as the OS user ``nobody``.
"""

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import pytest

from labkit.classroom import preflight

from support.helpers import REPO, text_of
from support.prerequisites import need_other_users_to_run_this_venv, need_root, skip_or_fail

pytestmark = pytest.mark.root


@pytest.fixture
def closed_python_venv():
    """A venv in an open folder whose interpreter links into a closed one; it sees this venv's packages."""
    need_root("the check runs a process as another user, which needs root")
    root = Path(tempfile.mkdtemp(prefix="de19p", dir="/tmp"))
    root.chmod(0o755)
    closed = root / "closed"
    closed.mkdir(mode=0o700)
    python = closed / Path(sys._base_executable).name
    shutil.copy2(os.path.realpath(sys._base_executable), python)
    venv = root / "venv"
    subprocess.run([str(python), "-m", "venv", "--without-pip", str(venv)], check=True, capture_output=True)
    site = next(venv.glob("lib/python3*/site-packages"))
    (site / "de19_this_venv.pth").write_text(f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n")
    script = venv / "bin" / "jupyterhub-singleuser"
    script.write_text(f"#!{venv / 'bin' / 'python'}\nimport sys\nfrom jupyterhub.singleuser import main\n"
                      "sys.exit(main())\n")
    script.chmod(0o755)
    yield venv, closed
    shutil.rmtree(root, ignore_errors=True)


def test_a_venv_whose_python_sits_in_a_closed_folder_is_refused_at_hub_start(closed_python_venv, tmp_path):
    """The classroom's hub command refuses in at most 3 lines, names the folder, and starts nothing."""
    venv, closed = closed_python_venv
    env = dict(os.environ, CLASSROOM_PASSWORD="a-workshop-password", LAB_CLASSROOM_DIR=str(tmp_path),
               CLASSROOM_PORT="1")
    done = subprocess.run([str(venv / "bin" / "python"), "-m", "lab_helpers", "classroom", "hub"], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=300)
    text = text_of(done).strip()
    assert done.returncode == 2, text
    assert len(text.splitlines()) <= 3, text
    assert "Traceback" not in text, text
    assert str(closed) in text, text
    assert "/usr/bin/python3" in text, text
    assert not (tmp_path / "hub").exists()  # JupyterHub never ran: it would have made its state folder


@pytest.mark.slow
def test_this_venv_passes_the_check():
    """The venv the tests run in is made from /usr/bin/python3 in an open folder: nobody can run it."""
    need_other_users_to_run_this_venv()  # paths' rule: skip (outside CI) on a venv from a Python under /root
    if not preflight.singleuser().exists():
        skip_or_fail("JupyterHub is missing: pip install -r classroom/requirements.txt")
    assert preflight.first_closed() is None, preflight.places()
    assert preflight.learners_cannot_run() is None


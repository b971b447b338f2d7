"""labkit.paths' one rule for "other users can run this", and .ci/run's bash copy of it agree.

.ci/run must pick a venv folder and a Python before any venv exists, so it keeps the rule in
bash (`traversable`); this test runs that very function from the file against the Python rule
on folders of every relevant mode.
"""

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from labkit import paths

from support.helpers import REPO

MODES = [0o755, 0o751, 0o754, 0o750, 0o711, 0o700, 0o705, 0o1777]


def bash_traversable(path: Path) -> bool:
    """Run .ci/run's own `traversable` function on ``path``."""
    source = (REPO / ".ci" / "run").read_text()
    function = re.search(r"^traversable\(\) \{\n.*?^\}\n", source, re.S | re.M).group()
    done = subprocess.run(["bash", "-c", f'{function}\ntraversable "$1"', "rule", str(path)], capture_output=True)
    return done.returncode == 0


@pytest.fixture
def open_tmp():
    """A folder every user can enter (pytest's own tmp_path sits under a 0700 folder as root)."""
    folder = Path(tempfile.mkdtemp(prefix="de23p", dir="/tmp"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.parametrize("mode", MODES)
def test_ci_run_and_paths_agree(open_tmp, mode):
    base = open_tmp / "open"
    base.mkdir()
    base.chmod(0o755)
    folder = base / "f"
    folder.mkdir()
    (folder / "inner").mkdir()
    folder.chmod(mode)
    try:
        inner = folder / "inner"
        assert (paths.closed_to_others(inner) is None) == bash_traversable(inner), oct(mode)
        assert (paths.closed_to_others(inner) == folder) == (mode & 0o5 != 0o5)
    finally:
        folder.chmod(0o755)


def test_a_venv_linked_into_a_closed_folder_is_named_by_its_real_interpreter(open_tmp):
    """sys.prefix may be open while the interpreter the venv links to is not (a pyenv Python under /root)."""
    closed = open_tmp / "closed"
    closed.mkdir(mode=0o700)
    (closed / "python3").write_text("")
    bin_dir = open_tmp / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").symlink_to(closed / "python3")
    assert paths.interpreter_places(bin_dir) == [bin_dir, closed / "python3"]
    assert paths.closed_to_others(bin_dir) is None  # the venv itself is open...
    assert paths.others_cannot_run(bin_dir) == (  # ...but the interpreter it runs is not
        f"other users cannot enter {closed}, on the way to {closed / 'python3'} (this venv's Python): "
        "make the venv from a Python every user can run, such as /usr/bin/python3")

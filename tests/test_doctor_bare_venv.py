"""The doctor is the command a learner is sent to when something is broken: it must run even in
a venv that holds nothing but the standard library, and say what to install, without a traceback."""

from __future__ import annotations

import os
import subprocess
import venv

import pytest

from support.helpers import REPO


@pytest.mark.parametrize("module", ["lab_helpers", "labkit.doctor"])
def test_doctor_in_a_bare_venv_says_what_to_install(tmp_path, module):
    """``python -m lab_helpers doctor`` and ``python -m labkit.doctor`` with no package installed."""
    venv.EnvBuilder(with_pip=False).create(tmp_path / "bare")
    python = tmp_path / "bare" / ("Scripts" if os.name == "nt" else "bin") / "python"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(PYTHONPATH=str(REPO), PYTHONIOENCODING="utf-8")
    args = [str(python), "-m", module] + (["doctor"] if module == "lab_helpers" else [])
    done = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)
    text = done.stdout + done.stderr
    assert done.returncode == 1, text
    assert "Traceback" not in text, text
    assert "sqlalchemy missing" in done.stdout, text
    assert "fix: pip install -r requirements.txt" in done.stdout, text

"""A venv with project-template/requirements.txt and nothing else, built once per test session."""

from __future__ import annotations

import subprocess
import venv
from pathlib import Path

from labkit.paths import REPO

TEMPLATE = REPO / "project-template"
_built: list[Path] = []


def template_venv(root: Path) -> Path:
    """Return the session's venv holding only the template's requirements (built under ``root`` on first use)."""
    if _built:
        return _built[0]
    folder = root / "venv"
    venv.create(folder, with_pip=True, symlinks=True)
    python = folder / "bin" / "python"
    done = subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                           "-r", TEMPLATE / "requirements.txt"], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    for module in ("labkit", "lab_helpers"):
        found = subprocess.run([python, "-c", f"import {module}"], cwd="/tmp", capture_output=True, text=True,
                               env={"PATH": "/usr/bin:/bin"})
        assert found.returncode != 0, f"{module} is importable in the template's venv"
    _built.append(folder)
    return folder

"""Run a notebook the way Run All in JupyterLab does (stop at the first error) and read what it showed.

nbval runs every cell even after one fails, so a notebook that stops short on purpose (a
refusal, the lab's "another session changed the database") shows a cascade there. These
helpers execute with nbclient in a subprocess of its own kernel, save the executed copy,
and compare its outputs with the committed ones after ``notebooks/sanitize.cfg``, as nbval
would.
"""

from __future__ import annotations

import configparser
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

from labkit.paths import REPO

NOTEBOOKS = REPO / "notebooks"
SANITIZE = NOTEBOOKS / "sanitize.cfg"

_RUN = """\
import sys, nbformat, nbclient
from nbclient.exceptions import CellExecutionError
nb = nbformat.read(sys.argv[1], 4)
for cell in nb.cells:  # the committed outputs go: a cell Run All never reached shows nothing
    if cell.cell_type == "code":
        cell.outputs, cell.execution_count = [], None
client = nbclient.NotebookClient(nb, timeout=900, kernel_name="python3", record_timing=False,
                                 resources={"metadata": {"path": sys.argv[3]}})
try:
    client.execute()
except CellExecutionError:
    pass  # Run All stops here too; the outputs so far are saved
nbformat.write(nb, sys.argv[2])
"""


def numbered() -> list[Path]:
    """Return every numbered notebook (``notebooks/NN_*.ipynb``), in order."""
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def start_run(notebook: Path, executed: Path, **env_changes: str | None) -> subprocess.Popen:
    """Start executing ``notebook`` in a fresh kernel of this venv; the executed copy goes to ``executed``."""
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    # The python3 kernelspec runs plain `python`: make that this environment's interpreter.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    for key, value in env_changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return subprocess.Popen([sys.executable, "-c", _RUN, str(notebook), str(executed), str(NOTEBOOKS)],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@dataclass
class Run:
    """An executed notebook: its cells, and the first error Run All stopped at (None when it ran through)."""

    cells: list
    error: dict | None
    error_cell: int | None

    def shown(self, index: int) -> str:
        return shown(self.cells[index])


def finish(proc: subprocess.Popen, executed: Path, timeout: float = 1200) -> Run:
    """Wait for a run started by ``start_run`` and return what it showed."""
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out[-3000:]
    nb = nbformat.read(executed, as_version=4)
    for i, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                return Run(nb.cells, output, i)
    return Run(nb.cells, None, None)


def shown(cell) -> str:
    """Return the text a code cell showed: streams, text/plain results and error lines, joined."""
    parts = []
    for output in cell.get("outputs", []):
        kind = output.get("output_type")
        if kind == "stream":
            parts.append(output["text"])
        elif kind in ("execute_result", "display_data"):
            parts.append(output.get("data", {}).get("text/plain", ""))
        elif kind == "error":
            parts.append("\n".join(output.get("traceback", [])))
    return "".join(parts)


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def error_lines(error: dict) -> list[str]:
    """Return the lines an error output shows a learner (colour codes removed)."""
    return [line for tb in error.get("traceback", []) for line in ANSI.sub("", tb).splitlines()]


def is_short_lab_message(error: dict) -> bool:
    """Return whether an error shows as the lab's own message: a LabError, at most 3 lines, no traceback."""
    lines = error_lines(error)
    return (error.get("ename") == "LabError" and 0 < len(lines) <= 3
            and not any("Traceback" in line or line.lstrip().startswith("File ") for line in lines))


def sanitizers() -> list[tuple[re.Pattern, str]]:
    """Return nbval's regex/replace pairs from notebooks/sanitize.cfg, in order."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(SANITIZE)
    return [(re.compile(parser[s]["regex"]), parser[s]["replace"]) for s in parser.sections()]


def sanitized(text: str, pairs: list[tuple[re.Pattern, str]]) -> str:
    for regex, replace in pairs:
        text = regex.sub(replace, text)
    return text


def differing_cells(run: Run, committed: Path, upto: int | None = None) -> dict[int, str]:
    """Return {index: both texts} for the code cells whose sanitized text differs from the committed one.

    Cells tagged ``nbval-ignore-output`` are left out, as nbval leaves them out; ``upto``
    stops before that cell (the one a run stopped at).
    """
    pairs = sanitizers()
    original = nbformat.read(committed, as_version=4).cells
    bad = {}
    for i, (cell, mine) in enumerate(zip(original, run.cells, strict=True)):
        if upto is not None and i >= upto:
            break
        if cell.cell_type != "code" or "nbval-ignore-output" in cell.metadata.get("tags", []):
            continue
        before, now = sanitized(shown(cell), pairs), sanitized(shown(mine), pairs)
        if before != now:
            bad[i] = f"--- committed:\n{before[-800:]}\n--- this run:\n{now[-800:]}"
    return bad

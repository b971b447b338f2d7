"""Student copies run as handed out, and the solved copies with every exercise solved.

A student copy has no solution cells, so each exercise cell runs with its placeholder (``...``, an
empty list, a comment). The copy must still run to the end without an error, every
self-check must say "Not yet", and nothing after an exercise may depend on it being solved:
the cells that are not part of an exercise print what the instructor's notebook prints.
Executed with nbclient, the kernel nbval uses, in a fresh kernel per notebook, against the
real embedded PostgreSQL.

The solved copy (``exercises.solved``: each solution's code in place of its exercise cell)
is what CI runs to prove every solution passes: it must run to the end, and every self-check
must print ✓. It runs as nbval does, from ``notebooks/``, but written to a temporary file,
with a workspace and a database (LAB_STUDENT) of its own, so no tracked file changes and
another notebook run on this server is not disturbed.
"""

import configparser
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from labkit import paths
from labkit.authoring import exercises
from labkit.classroom import verdicts

from support.helpers import REPO

pytestmark = pytest.mark.slow  # each item runs a whole notebook in a kernel

NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9]*.ipynb"))
EXERCISE_TAGS = {exercises.EXERCISE, exercises.SELF_CHECK}


def sanitize(text: str) -> str:
    """Apply notebooks/sanitize.cfg, as nbval does before it compares outputs."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(REPO / "notebooks" / "sanitize.cfg")
    for section in parser.sections():
        text = re.sub(parser[section]["regex"], parser[section]["replace"], text)
    return text


def shown(cell) -> str:
    """Return what a code cell showed: streams, plain-text results and errors, sanitized."""
    parts = []
    for out in cell.get("outputs", []):
        if out.output_type == "stream":
            parts.append(out.text)
        elif out.output_type in ("execute_result", "display_data"):
            parts.append(out.data.get("text/plain", ""))
        elif out.output_type == "error":
            parts.append(f"{out.ename}: {out.evalue}")
    return sanitize("".join(parts))


@pytest.fixture(scope="module")
def copies(tmp_path_factory):
    """The copies an instructor hands out, written by the real command line.

    The guide writes them beside notebooks/ (``student-copies student-notebooks`` at the top of
    the repository), where the notebooks find ../alembic.ini and the rest: lay the same here.
    """
    handout = tmp_path_factory.mktemp("handout")
    dest = handout / "student-notebooks"
    done = subprocess.run([sys.executable, "-m", "lab_helpers", "student-copies", str(dest)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    for name in paths.BESIDE_NOTEBOOKS:
        (handout / name).symlink_to(REPO / name)
    return dest


def execute(nb, folder: Path, monkeypatch) -> None:
    """Run All on ``nb`` in a fresh kernel of this venv, started in ``folder``; raise on any error."""
    # The python3 kernelspec runs plain `python`: make that this environment's interpreter.
    monkeypatch.setenv("PATH", os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]))
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(folder)}}).execute()


@pytest.mark.parametrize("source", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_the_solved_copy_runs_to_the_end_and_every_self_check_passes(source, tmp_path, monkeypatch):
    """Each solution, put in place of its exercise, makes its self-check print ✓; later cells still run."""
    original = nbformat.read(source, as_version=4)
    assert exercises.exercises(original), f"{source.name} has no exercise in the form"
    solved = exercises.solved(original)
    monkeypatch.setenv("LAB_WORKSPACE", str(tmp_path / "workspace"))
    monkeypatch.setenv("LAB_STUDENT", "solved_copy")
    try:
        execute(solved, source.parent, monkeypatch)
    finally:
        nbformat.write(solved, tmp_path / source.name)  # what ran, for a reader of a failure
    for ex in exercises.exercises(solved):
        said = exercises.printed(solved.cells[ex.check])
        assert any(line.startswith("✓") for line in said.splitlines()), (ex, solved.cells[ex.exercise].source, said)
        assert "Not yet" not in said, (ex, solved.cells[ex.exercise].source, said)
        assert verdicts.verdict_of(said, failed=False) == verdicts.SOLVED, said  # what the room's page reads


@pytest.mark.parametrize("source", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_a_student_copy_runs_to_the_end_with_every_exercise_unsolved(copies, source, monkeypatch):
    """Run All on the copy: no error, each self-check says Not yet, the rest as in the original."""
    copy = nbformat.read(copies / source.name, as_version=4)
    execute(copy, copies, monkeypatch)

    checks = [c for c in copy.cells if exercises.SELF_CHECK in exercises.tags(c)]
    assert checks, f"{source.name} has no self-check"
    for check in checks:
        assert "Not yet" in shown(check), shown(check)

    original = nbformat.read(source, as_version=4)
    expected = {c.source: shown(c) for c in original.cells if c.cell_type == "code"}
    for cell in copy.cells:
        tags = exercises.tags(cell)
        if cell.cell_type != "code" or tags & EXERCISE_TAGS or "nbval-ignore-output" in tags:
            continue
        assert shown(cell) == expected[cell.source], cell.source

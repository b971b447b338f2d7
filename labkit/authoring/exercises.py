"""Exercises in the notebooks, their solved copies, and ``python -m lab_helpers student-copies DEST``.

The form every notebook in ``notebooks/`` follows, three cells in this order:

1. a code cell tagged ``exercise``: the learner's placeholder, which runs harmlessly as given;
2. a code cell tagged ``self-check``: prints a line starting ``✓`` when solved, and one with
   ``✗ Not yet:`` and how to go on otherwise (the committed output says "Not yet");
3. a markdown cell tagged ``solution``, a collapsed ``<details><summary>Solution</summary>``
   block holding one ```` ```python ```` fence: the code that, put in place of the exercise
   cell's source, makes the self-check print ``✓``. Markdown never runs, so Run All leaves the
   learner's answer alone.

``solved`` builds the copy CI runs to prove every solution passes its self-check; student
copies drop the solution cells and clear every output. Nothing after a self-check may depend
on the exercise being solved: a learner who skips one goes on.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

import nbformat

from ..paths import NOTEBOOKS, notebooks

EXERCISE, SOLUTION, SELF_CHECK = "exercise", "solution", "self-check"
SOLVED, NOT_YET = "✓", "Not yet"

# The solution cell's whole text: the details block, one python fence, an optional "why" after it.
SOLUTION_FORM = re.compile(
    r"\A<details><summary>Solution</summary>\n\n```python\n(?P<code>.*?)\n```\n(?P<why>.*?)</details>\s*\Z",
    re.DOTALL)
SOLUTION_EXAMPLE = "<details><summary>Solution</summary>, a blank line, one ```python fence, </details>"


class Exercise(NamedTuple):
    """One exercise: the indexes of its three cells in the notebook."""

    exercise: int
    check: int
    solution: int


def tags(cell) -> set[str]:
    """Return the tags of a notebook cell."""
    return set(cell.get("metadata", {}).get("tags", []))


def solution_code(cell) -> str | None:
    """Return the code in a solution cell's python fence, or None when the cell is not in the form."""
    if cell.cell_type != "markdown":
        return None
    found = SOLUTION_FORM.match(cell.source)
    if found is None or "```" in found["code"] or "```python" in found["why"]:
        return None
    return found["code"]


def printed(cell) -> str:
    """Return what a code cell printed: its streams and plain-text results."""
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append(out.get("text", ""))
        elif out.get("output_type") in ("execute_result", "display_data"):
            parts.append(out.get("data", {}).get("text/plain", ""))
        elif out.get("output_type") == "error":
            parts.append(f"{out.get('ename')}: {out.get('evalue')}")
    return "".join(parts)


def exercises(nb) -> list[Exercise]:
    """Return the notebook's exercises whose three cells follow the form, in order."""
    cells, found = nb.cells, []
    for i, cell in enumerate(cells[:-2]):
        check, solution = cells[i + 1], cells[i + 2]
        if (EXERCISE in tags(cell) and cell.cell_type == "code" and SELF_CHECK in tags(check)
                and check.cell_type == "code" and SOLUTION in tags(solution)
                and solution_code(solution) is not None):
            found.append(Exercise(i, i + 1, i + 2))
    return found


def _triple_problems(cells, i: int) -> list[str]:
    """Return what is wrong with the exercise at cell ``i`` and the two cells after it."""
    check = cells[i + 1] if i + 1 < len(cells) else None
    solution = cells[i + 2] if i + 2 < len(cells) else None
    if cells[i].cell_type != "code":
        return [f"cell {i}: the 'exercise' cell is not a code cell"]
    if check is None or SELF_CHECK not in tags(check) or check.cell_type != "code":
        return [f"cell {i}: the 'exercise' cell is not followed by a 'self-check' code cell"]
    found = []
    if NOT_YET not in check.source or SOLVED not in check.source:
        found.append(f"cell {i + 1}: the 'self-check' cell never prints both '{SOLVED}' and '{NOT_YET}'")
    if check.get("outputs") and NOT_YET not in printed(check):
        found.append(f"cell {i + 1}: the self-check's saved output does not say '{NOT_YET}': "
                     "did a solution run? The committed run is the untouched placeholder's")
    if solution is None or SOLUTION not in tags(solution):
        found.append(f"cell {i + 1}: the 'self-check' cell is not followed by a 'solution' cell")
    elif solution_code(solution) is None:
        found.append(f"cell {i + 2}: the 'solution' cell is not a markdown cell of the form {SOLUTION_EXAMPLE}")
    return found


def problems(nb) -> list[str]:
    """Return what breaks the exercise form in a notebook (an empty list when none)."""
    cells = nb.cells
    starts = [i for i, c in enumerate(cells) if EXERCISE in tags(c)]
    found = [] if starts else ["no cell tagged 'exercise'"]
    for i in starts:
        found += _triple_problems(cells, i)
    placed = {i + 2 for i in starts}
    for i, cell in enumerate(cells):
        if SOLUTION in tags(cell) and cell.cell_type == "code":
            found.append(f"cell {i}: a 'solution' code cell runs on Run All and overwrites the learner's "
                         "answer; make it a markdown cell")
        elif SOLUTION in tags(cell) and i not in placed:
            found.append(f"cell {i}: a 'solution' cell that does not follow an exercise's self-check")
    return found


def _copy(nb):
    """Return a copy of the notebook with every output cleared."""
    nb = nbformat.from_dict(nb)  # a copy: the caller's notebook is left as it was
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata.pop("execution", None)  # per-cell timestamps from nbconvert/JupyterLab
    return nb


def solved(nb):
    """Return a copy with each solution's code in place of its exercise cell, outputs cleared."""
    nb = _copy(nb)
    for ex in exercises(nb):
        nb.cells[ex.exercise].source = solution_code(nb.cells[ex.solution])
    return nb


def strip_solutions(nb):
    """Return the notebook without its ``solution`` cells, with every output cleared."""
    nb = _copy(nb)
    nb.cells = [c for c in nb.cells if SOLUTION not in tags(c)]
    return nb


def learner_form(nb):
    """Return the notebook as a learner may open it: any ``solution`` cell that would run is dropped.

    Solutions in the form (markdown) stay, collapsed; outputs stay, as in the repository.
    """
    nb = nbformat.from_dict(nb)
    nb.cells = [c for c in nb.cells if not (SOLUTION in tags(c) and c.cell_type == "code")]
    return nb


def write_student_copies(dest: Path, source: Path = NOTEBOOKS) -> list[tuple[str, int]]:
    """Write every ``source/*.ipynb`` to ``dest`` without solutions; return (name, solutions removed)."""
    dest, source = Path(dest).resolve(), Path(source).resolve()
    if dest == source or dest.is_relative_to(source):
        raise ValueError(f"refusing to write student copies into {source}: choose another folder")
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for path in notebooks(source):
        nb = nbformat.read(path, as_version=4)
        removed = sum(SOLUTION in tags(c) for c in nb.cells)
        nbformat.write(strip_solutions(nb), dest / path.name)
        written.append((path.name, removed))
    return written


def main(dest: str | Path = "student-notebooks") -> int:
    """Write the student copies into ``dest``, print one line per notebook; return the exit code."""
    try:
        written = write_student_copies(Path(dest))
    except ValueError as exc:
        print(f"error: {exc}")
        return 2
    if not written:
        print(f"error: no notebooks found in {NOTEBOOKS}")
        return 1
    for name, removed in written:
        print(f"{name}: {removed} solution cell{'s' if removed != 1 else ''} removed, outputs cleared")
    print(f"Wrote {len(written)} student notebooks to {Path(dest).resolve()}.")
    return 0

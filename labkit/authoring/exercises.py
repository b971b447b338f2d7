"""Exercises in the notebooks, and ``python -m lab_helpers student-copies DEST``.

The convention, shared by every notebook in ``notebooks/``: a code cell tagged
``exercise`` (where the learner writes), then a cell tagged ``solution`` (the
instructor's answer, which keeps the notebook runnable under nbval, collapsed in JupyterLab
by ``metadata.jupyter.source_hidden``), then a cell tagged ``self-check`` that tells the
learner plainly whether they got it, and says "Not yet" and how to go on when not. Nothing
after an exercise may depend on it being solved: student copies run top to bottom as given.

Student copies drop every ``solution`` cell and clear every output, so no answer
reaches a learner through a cell or through what a cell printed.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

from ..paths import NOTEBOOKS, notebooks

EXERCISE, SOLUTION, SELF_CHECK = "exercise", "solution", "self-check"


def tags(cell) -> set[str]:
    """Return the tags of a notebook cell."""
    return set(cell.get("metadata", {}).get("tags", []))


def problems(nb) -> list[str]:
    """Return what breaks the exercise convention in a notebook (an empty list when none)."""
    cells = nb.cells
    found = []
    indexes = [i for i, c in enumerate(cells) if EXERCISE in tags(c)]
    if not indexes:
        found.append("no cell tagged 'exercise'")
    for i in indexes:
        nxt = cells[i + 1] if i + 1 < len(cells) else None
        after = cells[i + 2] if i + 2 < len(cells) else None
        if nxt is None or SOLUTION not in tags(nxt):
            found.append(f"cell {i}: the 'exercise' cell is not followed by a 'solution' cell")
        elif after is None or SELF_CHECK not in tags(after):
            found.append(f"cell {i + 1}: the 'solution' cell is not followed by a 'self-check' cell")
        else:
            if not collapsed(nxt):
                found.append(f"cell {i + 1}: the 'solution' cell is not collapsed (jupyter.source_hidden)")
            if not nxt.source.lstrip().startswith("#"):  # a collapsed cell still shows its first line
                found.append(f"cell {i + 1}: the 'solution' cell does not start with a comment line")
            if "Not yet" not in after.source:
                found.append(f"cell {i + 2}: the 'self-check' cell never says 'Not yet'")
    return found


def collapsed(cell) -> bool:
    """Return whether JupyterLab shows the cell's source collapsed."""
    return bool(cell.get("metadata", {}).get("jupyter", {}).get("source_hidden"))


def collapse_solutions(nb) -> None:
    """Collapse every ``solution`` cell's source, so a learner opens the answer only on purpose."""
    for cell in nb.cells:
        if SOLUTION in tags(cell):
            cell.metadata.setdefault("jupyter", {})["source_hidden"] = True


def strip_solutions(nb):
    """Return the notebook without its ``solution`` cells, with every output cleared."""
    nb = nbformat.from_dict(nb)  # a copy: the caller's notebook is left as it was
    nb.cells = [c for c in nb.cells if SOLUTION not in tags(c)]
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata.pop("execution", None)  # per-cell timestamps from nbconvert/JupyterLab
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

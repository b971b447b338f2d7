"""Estimate each notebook's "Time to learn" as a range: python bench/read_time.py [--write NB ...]

The model (issue 17), calibrated on a first-time learner rather than an expert:

- prose: the markdown cells' words at 100 words a minute (careful reading of technical text);
- code: 45 seconds per code cell a learner runs (read the code, run it, read its output),
  not counting ``solution`` cells, which a learner opens only when stuck;
- exercises: 5 to 10 minutes per cell tagged ``exercise``.

Each end of the range is rounded to 5 minutes (the low end down, the high end up). It is an
estimate for one reader; a class with questions takes longer (see docs/instructor-guide.md).
``--write`` puts the range into the named notebooks' "**Time to learn:**" line.
"""

import math
import re
import sys
from pathlib import Path

import nbformat

WORDS_PER_MINUTE = 100
PER_CODE_CELL = 0.75
PER_EXERCISE = (5, 10)
LINE = re.compile(r"\*\*Time to learn:\*\* [^\n]*")


def tags(cell) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def estimate(path: Path) -> dict:
    """Return one notebook's counts and the (low, high) minutes the model gives."""
    cells = nbformat.read(path, as_version=4).cells
    words = sum(len(re.findall(r"\w+", c.source)) for c in cells
                if c.cell_type == "markdown" and "solution" not in tags(c))  # opened only when stuck
    run = [c for c in cells if c.cell_type == "code" and "solution" not in tags(c)]
    exercises = sum("exercise" in tags(c) for c in run)
    low, high = (words / WORDS_PER_MINUTE + len(run) * PER_CODE_CELL + exercises * ex
                 for ex in PER_EXERCISE)
    return {"words": words, "code cells": len(run), "exercises": exercises,
            "range": (5 * math.floor(low / 5), 5 * math.ceil(high / 5))}


def write(path: Path, low: int, high: int) -> bool:
    """Put the range into the notebook's Time to learn line; return whether it changed."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "markdown" and LINE.search(cell.source):
            new = LINE.sub(f"**Time to learn:** {low}-{high} minutes.", cell.source)
            if new != cell.source:
                cell.source = new
                nbformat.write(nb, path)
                return True
            return False
    raise SystemExit(f"{path}: no '**Time to learn:**' line")


def main(argv: list[str]) -> int:
    root = Path(__file__).resolve().parent.parent / "notebooks"
    for path in sorted(root.glob("[0-9]*.ipynb")):
        row = estimate(path)
        low, high = row.pop("range")
        print(f"{path.name:<41} " + ", ".join(f"{v} {k}" for k, v in row.items())
              + f": {low}-{high} min")
    if argv[:1] == ["--write"]:
        for name in argv[1:]:
            path = Path(name)
            low, high = estimate(path)["range"]
            print(f"{path}: {'written' if write(path, low, high) else 'already says'} {low}-{high} minutes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

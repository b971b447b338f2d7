"""Estimate each notebook's "Time to learn" from a model read-through: python bench/read_time.py

The model reads as a careful learner does: prose at 150 words a minute, code at 10 lines a
minute, output skimmed at 60 lines a minute, 15 seconds to run each code cell, and 5 minutes
per exercise. It is a floor for a first reading, not a stopwatch: the instructor guide says
how it compares with an expert's estimate and with a class.
"""

import re
import sys
from pathlib import Path

import nbformat

RATES = {"words": 150, "code lines": 10, "output lines": 60}
PER_CELL, PER_EXERCISE = 0.25, 5


def text_of(output) -> str:
    return output.get("text", "") + output.get("data", {}).get("text/plain", "")


def estimate(path: Path) -> dict:
    """Return the counts for one notebook and the minutes the model takes to read it."""
    cells = nbformat.read(path, as_version=4).cells
    code = [c for c in cells if c.cell_type == "code"]
    counts = {
        "words": sum(len(re.findall(r"\w+", c.source)) for c in cells if c.cell_type == "markdown"),
        "code lines": sum(len(c.source.splitlines()) for c in code),
        "output lines": sum(len("".join(text_of(o) for o in c.outputs).splitlines()) for c in code),
    }
    exercises = sum("exercise" in c.metadata.get("tags", []) for c in code)
    minutes = (sum(counts[k] / RATES[k] for k in RATES) + len(code) * PER_CELL
               + exercises * PER_EXERCISE)
    return {**counts, "code cells": len(code), "exercises": exercises, "minutes": round(minutes)}


def main() -> int:
    root = Path(__file__).resolve().parent.parent / "notebooks"
    for path in sorted(root.glob("[0-9]*.ipynb")):
        row = estimate(path)
        print(f"{path.name:<38}" + ", ".join(f"{v} {k}" for k, v in row.items() if k != "minutes")
              + f": {row['minutes']} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())

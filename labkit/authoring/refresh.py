"""Re-execute notebooks in place and rewrite their committed outputs, with no timing metadata.

``python -m lab_helpers refresh-notebooks [paths...]`` runs each notebook (all of
``notebooks/*.ipynb`` by default) from its own folder in a fresh ``python3`` kernel of this
virtual environment, the way nbval and a learner's Run All do, and saves it only if it ran.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from .. import paths
from . import exercises


def coalesce_streams(outputs: list) -> list:
    """Merge consecutive stdout (or stderr) outputs: how the kernel chunked them is timing, not content."""
    merged: list = []
    for out in outputs:
        last = merged[-1] if merged else None
        if (out.get("output_type") == "stream" and last is not None
                and last.get("output_type") == "stream" and last.get("name") == out.get("name")):
            last["text"] = last["text"] + out["text"]
        else:
            merged.append(out)
    return merged


# What the repository's folder is shown as in saved outputs. The alembic command line prints
# absolute paths (notebook 5); a reader's checkout is somewhere else, and sanitize.cfg's path
# rule makes both forms compare equal.
SHOWN_REPO = "~/database-evolution"


def _neutral_paths(output) -> None:
    """Show the repository's folder in an output as SHOWN_REPO."""
    repo = str(paths.REPO)
    if output.get("output_type") == "stream":
        output["text"] = output["text"].replace(repo, SHOWN_REPO)
    for key in ("text/plain", "text/html", "text/markdown"):
        value = output.get("data", {}).get(key)
        if isinstance(value, str):
            output["data"][key] = value.replace(repo, SHOWN_REPO)


def clean(nb) -> None:
    """Drop what changes from run to run but tells the reader nothing: timings and the Python patch level."""
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        cell.metadata.pop("ExecuteTime", None)
        if cell.cell_type == "code":
            cell.outputs = coalesce_streams(cell.outputs)
            for output in cell.outputs:
                _neutral_paths(output)
    nb.metadata.get("language_info", {}).pop("version", None)
    nb.metadata.pop("widgets", None)


def refresh(path: Path, timeout: int = 600) -> tuple[float, list[str]]:
    """Execute one notebook in place from its folder; return the seconds it took and its exercise problems.

    The problems (``exercises.problems``) include a self-check whose new output does not say
    "Not yet": the committed run is the untouched placeholder's, never a solution's.
    """
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python",
                                 "name": "python3"}
    began = time.perf_counter()
    NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    clean(nb)
    nbformat.validate(nb)
    nbformat.write(nb, path)
    return time.perf_counter() - began, exercises.problems(nb)


def main(notebooks: list[str]) -> int:
    """Refresh the given notebooks (default: notebooks/*.ipynb); print one line per notebook."""
    # The kernelspec runs plain `python`: make that this environment's interpreter.
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    files = [Path(p).resolve() for p in notebooks] or paths.notebooks()
    failed = 0
    for path in files:
        print(f"{os.path.relpath(path)}: executing ...", flush=True)
        seconds, problems = refresh(path)
        print(f"{os.path.relpath(path)}: outputs rewritten in {seconds:.1f} s", flush=True)
        for problem in problems:
            print(f"{os.path.relpath(path)}: exercise form: {problem}", flush=True)
        failed += bool(problems)
    return 1 if failed else 0

"""The big-table catalogue page: notebook 7's measured table, taken from its saved output.

``write`` finds the code cell tagged ``catalogue`` in notebook 7 and writes its table (the
``text/html`` form pandas displays) into a MyST fragment that ``docs/big-table-catalogue.md``
includes. So the page shows exactly the numbers of the run that saved the notebook, and no
number on it is typed by hand. Run at build time, like the notebooks' copies.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

TAG = "catalogue"


class CatalogueMissing(Exception):
    """The notebook has no cell tagged ``catalogue`` with a table in its saved output."""


def table_html(notebook: Path) -> str:
    """Return the HTML table saved as the output of the notebook's ``catalogue`` cell."""
    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "code" or TAG not in cell.get("metadata", {}).get("tags", []):
            continue
        for output in cell.get("outputs", []):
            html = output.get("data", {}).get("text/html")
            if html:
                return "".join(html) if isinstance(html, list) else html
    raise CatalogueMissing(f"{notebook.name} has no cell tagged {TAG!r} with a saved table: "
                           "refresh it with python -m lab_helpers refresh-notebooks")


def write(notebook: Path, dest: Path) -> Path:
    """Write the catalogue table as a MyST fragment at ``dest``; return ``dest``."""
    html = table_html(notebook).strip()
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(f"```{{raw}} html\n<div class=\"catalogue\">\n{html}\n</div>\n```\n")
    return dest

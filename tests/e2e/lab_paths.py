"""Where the browser tests find the notebooks and put their screenshots (shared by conftest and tests)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"  # git-ignored


def notebook_sources() -> list[Path]:
    """Return the notebooks the browser tests run: notebooks/0*.ipynb, or LAB_E2E_NOTEBOOKS/*.ipynb."""
    folder = os.environ.get("LAB_E2E_NOTEBOOKS")
    if folder:
        return sorted(Path(folder).glob("*.ipynb"))
    return sorted((REPO / "notebooks").glob("0*.ipynb"))

"""Marks for what pytest collects outside tests/: nbval's notebook cells are all `slow`.

nbval runs each notebook top to bottom in a kernel (one item per cell), so a notebook takes
seconds to minutes; the quick loop (`pytest -m "not slow and not hub and not browser"`) leaves
them out.
"""

import pytest


def pytest_collection_modifyitems(items):
    """Mark every notebook cell nbval collected as slow."""
    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.slow)

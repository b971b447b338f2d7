"""The one rule for a test whose prerequisite is missing: skip it, with the reason, or fail it under CI."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def under_ci() -> bool:
    """Return whether this run is CI's (CI=true), where every prerequisite must be present."""
    return os.environ.get("CI", "").lower() == "true"


def skip_or_fail(reason: str) -> NoReturn:
    """Skip the test with the reason; under CI=true fail it instead, since CI installs everything."""
    if under_ci():
        pytest.fail(f"missing prerequisite under CI=true: {reason}", pytrace=False)
    pytest.skip(reason)


def need_root(why: str = "making OS users needs root") -> None:
    """Skip (or fail under CI) unless this process runs as root."""
    if not (hasattr(os, "geteuid") and os.geteuid() == 0):
        skip_or_fail(why)


def need_other_users_to_run_this_venv() -> None:
    """Skip (or fail under CI) unless root, and other OS users can run this venv's Python (labkit.paths' rule)."""
    from labkit.paths import others_cannot_run

    need_root()
    why = others_cannot_run()
    if why is not None:
        skip_or_fail(why)

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

"""pytest-alembic's built-in tests, run against this project's alembic.ini and migrations."""
from pytest_alembic.tests import (  # noqa: F401  (imported, so pytest collects them here)
    test_model_definitions_match_ddl,
    test_single_head_revision,
    test_up_down_consistency,
    test_upgrade,
)

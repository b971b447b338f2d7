"""Phase 3: rename users.name to users.full_name, keeping every value.

Revision ID: 0003_rename_name_to_full_name
Revises: 0002_add_email_and_bio
Create Date: 2026-11-28 00:00:00

Autogenerate proposed this, because Alembic cannot tell a rename from a drop and an add:

    op.add_column("users", sa.Column("full_name", sa.String(length=100), nullable=False))
    op.drop_column("users", "name")

That would delete every name (and fail outright on a table with rows, since the new
column is NOT NULL with no default). It was edited by hand into one
``ALTER TABLE ... RENAME COLUMN``, which keeps the data and touches only the catalog, so it
takes the same time at any table size once it holds its ACCESS EXCLUSIVE lock (getting that
lock can wait behind long transactions: see notebook 3 on lock_timeout, which env.py sets for
every revision). Both directions rename, so the downgrade keeps data too.

A running application that still selects ``name`` breaks the moment this commits; see
notebook 3 for the expand/contract way to rename without downtime.
"""
from typing import Sequence, Union

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0003_rename_name_to_full_name"
down_revision: Union[str, Sequence[str], None] = "0002_add_email_and_bio"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Rename name to full_name."""
    op.alter_column("users", "name", new_column_name="full_name")


def downgrade() -> None:
    """Rename full_name back to name."""
    op.alter_column("users", "full_name", new_column_name="name")

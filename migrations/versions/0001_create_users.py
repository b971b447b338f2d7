"""Phase 1: create users(id, name).

Revision ID: 0001_create_users
Revises:
Create Date: 2026-11-28 00:00:00

The starting point of the story: one table with a surrogate key and a name.

The downgrade refuses to drop the table while it holds rows; confirm with
``alembic -x allow_data_loss=true downgrade base`` to drop it anyway.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

from labkit.safety import refuse_data_loss

# revision identifiers, used by Alembic.
revision: str = "0001_create_users"
down_revision: Union[str, Sequence[str], None] = None
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Create the users table."""
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
    )


def downgrade() -> None:
    """Drop the users table, unless it holds rows that were not confirmed for loss."""
    refuse_data_loss("users")
    op.drop_table("users")

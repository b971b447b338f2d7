"""Phase 2: add users.email and users.bio.

Revision ID: 0002_add_email_and_bio
Revises: 0001_create_users
Create Date: 2026-11-28 00:00:00

Both columns are nullable on purpose. Adding a NOT NULL column without a default
fails on a table that already has rows ("column contains null values"): the existing
users have no e-mail yet. Nullable columns are also metadata-only in PostgreSQL, so the
ALTER is instant however big the table is. Tighten to NOT NULL later, after a backfill.

The downgrade refuses to drop the columns while any row holds a value in them; confirm
with ``alembic -x allow_data_loss=true downgrade ...`` to drop them anyway.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

from labkit.safety import refuse_data_loss

# revision identifiers, used by Alembic.
revision: str = "0002_add_email_and_bio"
down_revision: Union[str, Sequence[str], None] = "0001_create_users"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Add two nullable columns."""
    op.add_column("users", sa.Column("email", sa.String(length=255), nullable=True))
    op.add_column("users", sa.Column("bio", sa.Text(), nullable=True))


def downgrade() -> None:
    """Drop the columns, unless they hold data that was not confirmed for loss."""
    refuse_data_loss("users", {"email": None, "bio": None})
    op.drop_column("users", "bio")
    op.drop_column("users", "email")

"""Phase 1: create users(id, name).

Revision ID: 0001_create_users
Revises:
Create Date: 2026-11-28 00:00:00

The starting point of the story: one table with a surrogate key and a name.

The downgrade refuses to drop the table while it holds rows; confirm with
``alembic -x allow_data_loss=true downgrade base`` to drop it anyway.
"""
from typing import Sequence, Union

from alembic import context, op
from alembic.util import CommandError
import sqlalchemy as sa

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
    refuse_data_loss("table 'users'", "true")
    op.drop_table("users")


def refuse_data_loss(what: str, holds_data: str) -> None:
    """Stop this revision's downgrade, before it changes anything, while rows of users match ``holds_data``.

    Written out here, not imported from the lab: a revision that imports application code
    breaks the history the day that code changes. Confirm the loss with
    ``alembic -x allow_data_loss=true downgrade ...`` or ``cfg.attributes["allow_data_loss"] = True``.
    """
    confirmed = context.get_x_argument(as_dictionary=True).get("allow_data_loss", "").lower() == "true"
    if confirmed or context.config.attributes.get("allow_data_loss"):
        return
    op.execute("LOCK TABLE users IN SHARE MODE")  # reads go on; no row is written between count and drop
    if context.is_offline_mode():  # --sql: the script checks where it is run, and stops there
        said = what.replace("'", "''")  # inside a SQL string literal
        op.execute(f"DO $$ BEGIN IF EXISTS (SELECT FROM users WHERE {holds_data}) THEN RAISE EXCEPTION "
                   f"'Refusing to drop {said}, rows hold data there. Confirm with -x allow_data_loss=true'; "
                   "END IF; END $$")
        return
    rows = op.get_bind().scalar(sa.text(f"SELECT count(*) FROM users WHERE {holds_data}"))
    if rows:
        held = f"{rows} row of 'users' holds" if rows == 1 else f"{rows} rows of 'users' hold"
        raise CommandError(
            f"Refusing to drop {what}: {held} data there.\n"
            "This revision changed nothing. Earlier revisions of this run may already be committed\n"
            "(each commits on its own): alembic current shows where the database is.\n"
            "To drop the data anyway, confirm with\n"
            f"  alembic -x allow_data_loss=true downgrade {context.get_revision_argument() or 'base'}\n"
            "or, from Python, cfg.attributes['allow_data_loss'] = True before command.downgrade.")

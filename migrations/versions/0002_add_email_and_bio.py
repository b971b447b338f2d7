"""Phase 2: add users.email and users.bio.

Revision ID: 0002_add_email_and_bio
Revises: 0001_create_users
Create Date: 2026-11-28 00:00:00

Both columns are nullable on purpose. Adding a NOT NULL column without a default
fails on a table that already has rows ("column contains null values"): the existing
users have no e-mail yet. Nullable columns are also catalog-only in PostgreSQL (only the
system catalog changes): no row is rewritten, however big the table is. ADD COLUMN still takes
an ACCESS EXCLUSIVE lock on users (notebook 2 shows it in pg_locks), so it waits behind any
long transaction on the table, and every later query, reads included, waits behind it. env.py
sets lock_timeout for every revision, and commits each revision on its own, so the lock ends
with this revision. Tighten to NOT NULL later, after a backfill.

The downgrade refuses to drop the columns while any row holds a value in them; confirm
with ``alembic -x allow_data_loss=true downgrade ...`` to drop them anyway.
"""
from typing import Sequence, Union

from alembic import context, op
from alembic.util import CommandError
import sqlalchemy as sa

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
    refuse_data_loss("users.email, users.bio", "email IS NOT NULL OR bio IS NOT NULL")
    op.drop_column("users", "bio")
    op.drop_column("users", "email")


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

"""Phase 4: add users.settings (JSONB) and users.embedding (pgvector) with an HNSW index.

Revision ID: 0004_settings_and_embedding
Revises: 0003_rename_name_to_full_name
Create Date: 2026-11-28 00:00:00

- ``CREATE EXTENSION IF NOT EXISTS vector`` runs inside this migration, so the type
  exists before the column needs it; autogenerate never writes it.
- ``settings`` is JSONB, not JSON. Both can be read by key with ``->`` and ``->>``; JSONB
  is stored parsed (keys de-duplicated and sorted, whitespace dropped), so it also has
  equality, B-tree, hash and GIN indexes, containment (``@>``), ``?``, jsonpath (``@?``,
  ``@@``), ``||`` and ``jsonb_set``, while JSON keeps the raw text and re-parses it on every
  operation. Its server default ``'{}'`` is a constant, so adding it does not rewrite the
  table (it still takes an ACCESS EXCLUSIVE lock), and no row is ever NULL.
- ``embedding`` is ``vector(384)``, the size of common sentence-embedding models such as
  all-MiniLM-L6-v2. It is nullable: rows get vectors when they are computed.
- The HNSW index serves nearest-neighbour search by cosine distance (``<=>``). Rows with a
  NULL (or, for cosine distance, all-zero) embedding are not in it. It is built here, in this
  revision's transaction, after the two ADD COLUMNs, which hold an ACCESS EXCLUSIVE lock on
  users until that transaction commits: reads of users are blocked too, not only writes, for
  the whole build. Fine for the lab's five rows. env.py commits each revision on its own
  (``transaction_per_migration=True``); with Alembic's default of one transaction per run, the
  locks of every earlier revision of the run would be held that long as well. On a big
  production table, build the index with ``CREATE INDEX CONCURRENTLY`` in a revision of its
  own, inside ``with op.get_context().autocommit_block():`` (notebook 4 shows it and what it
  costs).

The downgrade drops the index and columns, refusing while any row holds settings other
than ``{}`` or an embedding. It leaves the extension installed: ``CREATE EXTENSION IF NOT
EXISTS`` does nothing when the extension was already there, and cannot tell whether this
revision or someone else created it, so dropping it could take away what another schema,
application or administrator installed (and only its owner or a superuser may drop it).
"""
from typing import Sequence, Union

from alembic import context, op
from alembic.util import CommandError
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from pgvector.sqlalchemy import Vector

# revision identifiers, used by Alembic.
revision: str = "0004_settings_and_embedding"
down_revision: Union[str, Sequence[str], None] = "0003_rename_name_to_full_name"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

INSTALL_PGVECTOR = (
    "Install pgvector on it (https://github.com/pgvector/pgvector#installation),\n"
    "or unset DATABASE_URL to use the embedded server, which includes it."
)


def upgrade() -> None:
    """Enable pgvector, add the two columns and the HNSW index."""
    if not context.is_offline_mode() and not op.get_bind().scalar(
            sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")):
        raise CommandError("This PostgreSQL server has no 'vector' extension available: this revision changed "
                           f"nothing, earlier ones stay committed.\n{INSTALL_PGVECTOR}")
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    op.add_column(
        "users",
        sa.Column("settings", postgresql.JSONB(astext_type=sa.Text()),
                  server_default=sa.text("'{}'::jsonb"), nullable=False),
    )
    op.add_column("users", sa.Column("embedding", Vector(384), nullable=True))
    op.create_index(
        "ix_users_embedding",
        "users",
        ["embedding"],
        unique=False,
        postgresql_using="hnsw",
        postgresql_with={"m": 16, "ef_construction": 64},
        postgresql_ops={"embedding": "vector_cosine_ops"},
    )


def downgrade() -> None:
    """Drop the index and the columns; keep the extension."""
    refuse_data_loss("users.settings, users.embedding",
                     "settings <> '{}'::jsonb OR embedding IS NOT NULL")
    op.drop_index("ix_users_embedding", table_name="users", postgresql_using="hnsw")
    op.drop_column("users", "embedding")
    op.drop_column("users", "settings")


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

"""Guards that the reference revisions call so that a downgrade never drops data silently."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

from .errors import DataLossRefused, LabError

TRUE_WORDS = {"1", "true", "yes", "on"}


def data_loss_allowed() -> bool:
    """Return whether the learner confirmed the loss (``-x allow_data_loss=true`` or the attribute)."""
    if context.config.attributes.get("allow_data_loss"):
        return True
    return context.get_x_argument(as_dictionary=True).get("allow_data_loss", "").lower() in TRUE_WORDS


def refuse_data_loss(table: str, columns: dict[str, str | None] | None = None) -> None:
    """Raise DataLossRefused if any row holds data that the downgrade is about to drop.

    ``columns`` maps each column to be dropped to the SQL of its "empty" value besides NULL
    (for example ``'{}'::jsonb`` for a column whose server default is an empty object), or
    None. Without ``columns`` the whole table is about to be dropped: any row counts.
    """
    if context.is_offline_mode() or data_loss_allowed():
        return
    tbl = sa.table(table, *(sa.column(c) for c in columns or {}))
    query = sa.select(sa.func.count()).select_from(tbl)
    if columns:
        query = query.where(sa.or_(*(
            sa.and_(tbl.c[c].is_not(None), *([tbl.c[c] != sa.literal_column(empty)] if empty else []))
            for c, empty in columns.items()
        )))
    rows = op.get_bind().scalar(query)
    if not rows:
        return
    plural = "s" if rows != 1 else ""
    if columns:
        held = f"{', '.join(f'{table}.{c}' for c in columns)}: {rows} row{plural} of {table!r} hold data there"
        it = "the columns and their data"
    else:
        held, it = f"table {table!r}: it holds {rows} row{plural}", "the table and its rows"
    target = context.get_revision_argument() or "base"
    raise DataLossRefused(
        f"Refusing to drop {held}.\n"
        f"Nothing was changed. To drop {it} anyway, confirm with\n"
        f"  alembic -x allow_data_loss=true downgrade {target}\n"
        "or, from Python, cfg.attributes['allow_data_loss'] = True before command.downgrade."
    )


def require_extension(name: str, install_hint: str) -> None:
    """Raise a short LabError when the server cannot create extension ``name``."""
    if context.is_offline_mode():
        return
    available = op.get_bind().scalar(
        sa.text("SELECT 1 FROM pg_available_extensions WHERE name = :n"), {"n": name})
    if not available:
        raise LabError(f"This PostgreSQL server has no {name!r} extension available. Nothing was changed.\n"
                       f"{install_hint}")

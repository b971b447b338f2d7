"""Small readers and writers every lesson uses: SQL into a DataFrame, a column's checksum, scratch tables."""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from .. import database
from ..diagnose import short_error
from ..errors import LabError
from ..phases import SCRATCH_PREFIX

# What to do after running a cell again that only makes sense once.
RESTART = "lab_helpers.start(...) resets the database to where the notebook begins."


def frame(sql: str, conn: sa.Connection | None = None, **params) -> pd.DataFrame:
    """Return the rows of ``sql`` as a DataFrame, on ``conn`` or on a fresh connection."""
    with database.connection(conn) as use:
        return pd.read_sql(sa.text(sql), use, params=params or None)


def checksum(column: str, table: str = "users", conn: sa.Connection | None = None) -> str:
    """Return md5 of every value of ``column`` joined in id order: equal sums, equal values."""
    sql = sa.text(f"SELECT md5(string_agg(coalesce({column}, '<NULL>'), '|' ORDER BY id)) FROM {table}")
    try:
        with database.connection(conn) as use:
            return use.scalar(sql)
    except DBAPIError as exc:
        raise LabError(f"{short_error(exc)}\nRan this cell again after the migration?",
                       f"Start the notebook over from the top: {RESTART}") from None


def scratch_copy(name: str, query: str = "SELECT * FROM users ORDER BY id") -> str:
    """(Re)create ``scratch_<name>`` from ``query`` (by default a copy of users); return its name."""
    table = name if name.startswith(SCRATCH_PREFIX) else SCRATCH_PREFIX + name
    with database.engine().begin() as conn:
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
        conn.execute(sa.text(f"CREATE TABLE {table} AS {query}"))
    return table


def run_sql(*statements: str) -> None:
    """Run SQL statements in one committed transaction."""
    with database.engine().begin() as conn:
        for sql in statements:
            conn.execute(sa.text(sql))

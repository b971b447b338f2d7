"""Per-learner limits on the classroom's PostgreSQL, so that no learner can lock the room out.

A learner role with no limit can take every slot of ``max_connections`` (an engine made per
loop iteration is the classic), run a query that never ends, or leave a transaction open in
a kernel. ``classroom setup`` therefore gives each learner role:

- ``CONNECTION LIMIT`` (hard: only a superuser can change it);
- ``statement_timeout`` and ``idle_in_transaction_session_timeout`` (role defaults: they stop
  the accident, but a learner's own session may ``SET`` them again);
- ``temp_file_limit`` (hard: only a superuser may set it, so setup sets it as the admin).

The values are kept in the classroom's state file, so a re-run of setup (say, to add a
learner) applies the same ones unless it is given new ones. The instructor's own slots are
the server's: the superuser reserve when the admin is a superuser, else ``reserved_connections``
with ``pg_use_reserved_connections`` granted to the admin.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from ..errors import LabError


@dataclass(frozen=True)
class Limits:
    """What each learner role may use; the defaults are the documented ones."""

    connection_limit: int = 12
    statement_timeout: str = "2min"
    idle_in_transaction_session_timeout: str = "10min"
    temp_file_limit: str = "256MB"


SETTINGS = ("statement_timeout", "idle_in_transaction_session_timeout", "temp_file_limit")


def chosen(stored: dict | None, **given) -> Limits:
    """Return the limits to apply: each given value (not None), else the stored one, else the default."""
    known = {f.name for f in fields(Limits)}
    base = replace(Limits(), **{k: v for k, v in (stored or {}).items() if k in known})
    return replace(base, **{k: v for k, v in given.items() if v is not None})


def as_state(limits: Limits) -> dict:
    """Return the limits as the JSON the state file keeps."""
    return asdict(limits)


def _literal(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def check(conn: sa.Connection, limits: Limits) -> None:
    """Refuse, before any role is touched, a limit PostgreSQL would not accept."""
    if not isinstance(limits.connection_limit, int) or limits.connection_limit < 1:
        raise LabError(f"--connection-limit must be a whole number of 1 or more, not {limits.connection_limit!r}.",
                       "Nothing was changed.")
    for name in SETTINGS:
        value = getattr(limits, name)
        try:  # an AUTOCOMMIT connection: a local setting ends with its own statement
            conn.execute(sa.text("SELECT set_config(:n, :v, true)"), {"n": name, "v": str(value)})
        except DBAPIError as exc:
            first = str(exc.orig).strip().splitlines()[0]
            raise LabError(f"PostgreSQL does not accept {name} = {value!r}: {first}",
                           "Nothing was changed. Use a value such as 2min, 30s or 256MB.") from None


def apply(conn: sa.Connection, role: str, limits: Limits) -> None:
    """Set ``role``'s connection limit and its three settings (``role`` is a validated learner name)."""
    conn.exec_driver_sql(f'ALTER ROLE "{role}" CONNECTION LIMIT {int(limits.connection_limit)}')
    for name in SETTINGS:
        conn.exec_driver_sql(f'ALTER ROLE "{role}" SET {name} = {_literal(getattr(limits, name))}')


def describe(limits: Limits) -> str:
    """Return the limits as one line for setup's output."""
    return (f"each learner: {limits.connection_limit} connections, statement_timeout {limits.statement_timeout}, "
            f"idle_in_transaction_session_timeout {limits.idle_in_transaction_session_timeout}, "
            f"temp_file_limit {limits.temp_file_limit}")


def room_line(conn: sa.Connection, learners: int, limits: Limits) -> str:
    """Reserve slots for the instructor where possible; return a line saying what the room holds."""
    row = conn.execute(sa.text(
        "SELECT current_setting('max_connections')::int, current_setting('superuser_reserved_connections')::int,"
        " coalesce(current_setting('reserved_connections', true), '0')::int, rolsuper"
        " FROM pg_roles WHERE rolname = current_user")).one()
    total, superuser_reserve, reserve, is_superuser = row
    if is_superuser:
        instructor = f"the superuser reserve, {superuser_reserve} slots"
    elif reserve:
        try:
            conn.exec_driver_sql("GRANT pg_use_reserved_connections TO CURRENT_USER")
            instructor = f"reserved_connections, {reserve} slots (pg_use_reserved_connections granted)"
        except DBAPIError:
            instructor = "none: the admin may not be granted pg_use_reserved_connections"
    else:
        instructor = "none: ask the server's operator to set reserved_connections"
    free = total - superuser_reserve - reserve
    line = (f"room: {learners} learners x {limits.connection_limit} = {learners * limits.connection_limit} "
            f"of {free} connections; instructor: {instructor}")
    if learners * limits.connection_limit > free:
        line += ("\nwarning: if every learner held their limit, the room would run out of connections;"
                 " lower --connection-limit or raise max_connections")
    return line


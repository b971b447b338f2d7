"""Helpers for notebooks 3 and 4: rehearse a migration and roll it back, lint its SQL, time DDL.

Each helper does one visible thing the notebook narrates; none runs at import time.
"""

from __future__ import annotations

import contextlib
import io
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.exc import DBAPIError

from . import phases, runtime
from .errors import LabError

# What to do after running a cell again that only makes sense once.
RESTART = "lab_helpers.start(...) resets the database to where the notebook begins."

SCRATCH = phases.SCRATCH_PREFIX


# --------------------------------------------------------------------------- small readers

def frame(sql: str, conn: sa.Connection | None = None, **params) -> pd.DataFrame:
    """Return the rows of ``sql`` as a DataFrame, on ``conn`` or on a fresh connection."""
    with runtime.connection(conn) as use:
        return pd.read_sql(sa.text(sql), use, params=params or None)


def checksum(column: str, table: str = "users", conn: sa.Connection | None = None) -> str:
    """Return md5 of every value of ``column`` joined in id order: equal sums, equal values."""
    sql = sa.text(f"SELECT md5(string_agg(coalesce({column}, '<NULL>'), '|' ORDER BY id)) FROM {table}")
    try:
        with runtime.connection(conn) as use:
            return use.scalar(sql)
    except DBAPIError as exc:
        raise LabError(f"{short_error(exc)}\nRan this cell again after the migration? "
                       f"Start the notebook over from the top: {RESTART}") from None


def short_error(exc: BaseException) -> str:
    """Return an error as one or two lines: the driver's class name and PostgreSQL's message."""
    orig = getattr(exc, "orig", None) or exc
    lines = [ln.rstrip() for ln in str(orig).strip().splitlines() if ln.strip()]
    keep = [lines[0]] + [ln for ln in lines[1:] if ln.startswith(("HINT", "DETAIL"))]
    return f"{type(orig).__name__}: " + "\n".join(keep)


# --------------------------------------------------------------------------- rehearsals

@contextlib.contextmanager
def rehearsal(cfg: Config) -> Iterator[sa.Connection]:
    """Hand ``cfg`` a connection inside a transaction that is always rolled back; yield it.

    Migrations run in the block see and change the database as usual, but nothing they do
    survives the block. A database error ends the block early: it is printed in one line.
    """
    eng = runtime.engine()
    with eng.connect() as conn:
        trans = conn.begin()
        cfg.attributes["connection"] = conn
        try:
            yield conn
        except DBAPIError as exc:
            print(f"PostgreSQL refused: {short_error(exc)}")
        finally:
            cfg.attributes.pop("connection", None)
            trans.rollback()
            print("Rolled back: the database is as it was before the rehearsal.")


def scratch_copy(name: str, query: str = "SELECT * FROM users ORDER BY id") -> str:
    """(Re)create ``scratch_<name>`` from ``query`` (by default a copy of users); return its name."""
    table = name if name.startswith(SCRATCH) else SCRATCH + name
    with runtime.engine().begin() as conn:
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
        conn.execute(sa.text(f"CREATE TABLE {table} AS {query}"))
    return table


def run_sql(*statements: str) -> None:
    """Run SQL statements in one committed transaction."""
    with runtime.engine().begin() as conn:
        for sql in statements:
            conn.execute(sa.text(sql))


def app_connection() -> sa.Connection:
    """Return a separate autocommit connection: an application that holds no locks between queries.

    It shows in pg_stat_activity as ``notebook N app`` (N: the notebook last started in this
    kernel), so a migration that waits for it can name it. It has an engine of its own, so
    that name never sticks to the lab's pooled connections.
    """
    from . import notebook

    name = f"notebook {notebook._started[-1]} app" if notebook._started else "lab app"
    url = runtime.resolve_url()
    app = sa.create_engine(url, poolclass=sa.pool.NullPool,
                           connect_args={"connect_timeout": 5, "application_name": name})
    try:
        return app.connect().execution_options(isolation_level="AUTOCOMMIT")
    except DBAPIError as exc:
        raise runtime.explain(exc, url) from None


# --------------------------------------------------------------------------- notebook 5: your own project

# The comment on each schema project_database_url makes: only such a schema is ever dropped.
PROJECT_MARK = "made by the Database Evolution lab for notebook 5; emptied on every run"

def project_database_url(schema: str = "my_project") -> str:
    """Empty schema ``schema`` of the lab database and return a URL that works in it, password included.

    Notebook 5 hands this URL to a project of its own through an environment variable: the
    URL's ``options=-csearch_path=...`` makes every table, ``alembic_version`` included,
    land in that schema, so the project never meets the lab's own ``users`` table.
    """
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,40}", schema):
        raise LabError(f"{schema!r} is not a plain schema name: use lowercase letters, digits and _.")
    eng = runtime.engine()
    with eng.begin() as conn:
        found = conn.execute(sa.text("SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace "
                                     "WHERE nspname = :s"), {"s": schema}).first()
        if found is not None and found[0] != PROJECT_MARK and not runtime.lab_owns_database():
            raise LabError(
                f"The database {eng.url.database!r} named in DATABASE_URL already has a schema {schema!r}\n"
                "that this lab did not make, so it will not drop it. Nothing was changed. Set\n"
                "LAB_STUDENT=<name> to work in a database lab_<name> of the lab's own.")
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
        conn.execute(sa.text(f"COMMENT ON SCHEMA {schema} IS '{PROJECT_MARK}'"))
    url = eng.url.update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


# --------------------------------------------------------------------------- offline SQL and squawk

def offline_sql(cfg: Config, span: str, path: Path) -> str:
    """Write the SQL that ``command.upgrade(cfg, span, sql=True)`` prints to ``path``; return it."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        command.upgrade(cfg, span, sql=True)
    Path(path).write_text(out.getvalue())
    return out.getvalue().strip()


def squawk(path: Path) -> str:
    """Return squawk's findings for a SQL file, one per line: ``file:line:col: level: rule message``."""
    binary = shutil.which("squawk") or str(Path(sys.executable).parent / "squawk")
    if not Path(binary).exists():
        raise LabError("squawk is not installed in this environment: pip install squawk-cli")
    path = Path(path)
    result = subprocess.run([binary, "--reporter", "gcc", path.name], cwd=path.parent,
                            capture_output=True, text=True, timeout=60)
    return (result.stdout + result.stderr).strip() or "squawk found nothing to report."


def squawk_rules(report: str) -> list[str]:
    """Return the rule names in a squawk gcc-style report, in order."""
    return re.findall(r": (?:warning|error): ([a-z-]+) ", report)


# --------------------------------------------------------------------------- expand / contract

def expand_contract_steps(table: str) -> list[tuple[str, str]]:
    """Return (step, SQL) for the five expand/contract steps renaming ``name`` to ``full_name``."""
    fn = f"{table}_sync_names"
    return [
        ("1. expand",
         f"ALTER TABLE {table} ADD COLUMN full_name varchar(100);"),
        ("2. dual-write",
         f"CREATE OR REPLACE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
         "BEGIN\n"
         "  IF TG_OP = 'INSERT' THEN\n"
         "    NEW.full_name := coalesce(NEW.full_name, NEW.name);\n"
         "    NEW.name := coalesce(NEW.name, NEW.full_name);\n"
         "  ELSIF NEW.name IS DISTINCT FROM OLD.name THEN\n"
         "    NEW.full_name := NEW.name;\n"
         "  ELSIF NEW.full_name IS DISTINCT FROM OLD.full_name THEN\n"
         "    NEW.name := NEW.full_name;\n"
         "  END IF;\n"
         "  RETURN NEW;\n"
         "END $$;\n"
         f"CREATE TRIGGER {fn} BEFORE INSERT OR UPDATE ON {table}\n"
         f"  FOR EACH ROW EXECUTE FUNCTION {fn}();"),
        ("3. backfill",
         f"UPDATE {table} SET full_name = name WHERE full_name IS NULL;"),
        ("4. switch reads",
         f"ALTER TABLE {table} ALTER COLUMN full_name SET NOT NULL;"),
        ("5. contract",
         f"DROP TRIGGER {fn} ON {table};\n"
         f"DROP FUNCTION {fn}();\n"
         f"ALTER TABLE {table} DROP COLUMN name;"),
    ]


def _works(conn: sa.Connection, sql: str) -> str:
    try:
        with conn.begin_nested():
            conn.execute(sa.text(sql)).all()
        return "✓ works"
    except DBAPIError as exc:
        return "✗ " + short_error(exc).splitlines()[0].split(": ", 1)[1]


def expand_contract(table: str) -> pd.DataFrame:
    """Run the five steps on ``table``; after each, try the old app's and the new app's query.

    After step 2 the old application inserts a user writing only ``name``, to show the
    trigger filling in ``full_name``.
    """
    old_app = f"SELECT name FROM {table} ORDER BY id"
    new_app = f"SELECT full_name FROM {table} ORDER BY id"
    rows = []
    with runtime.engine().begin() as conn:
        for step, sql in expand_contract_steps(table):
            conn.execute(sa.text(sql))
            if step.startswith("2."):
                conn.execute(sa.text(
                    f"INSERT INTO {table} (id, name) VALUES (6, 'Barbara Liskov')"))
            total, missing = conn.execute(sa.text(
                f"SELECT count(*), count(*) FILTER (WHERE full_name IS NULL) FROM {table}")).one()
            rows.append({"step": step, "old app: SELECT name": _works(conn, old_app),
                         "new app: SELECT full_name": _works(conn, new_app),
                         "rows": total, "rows without full_name": missing})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- flat against linear

def _timed(conn: sa.Connection, *statements: str, repeat: int = 3) -> float:
    """Return the best of ``repeat`` runs of the statements, in ms, each undone by a savepoint."""
    best = float("inf")
    for _ in range(repeat):
        with conn.begin_nested() as savepoint:
            start = time.perf_counter()
            for sql in statements:
                conn.execute(sa.text(sql))
            best = min(best, time.perf_counter() - start)
            savepoint.rollback()
    return best * 1000


def flat_vs_linear(sizes: tuple[int, ...] = (20_000, 200_000)) -> pd.DataFrame:
    """Time a rename (catalog only) and drop+add+backfill (writes every row) on scratch tables.

    Everything runs in one transaction that is rolled back, so the scratch tables never
    outlive the call. Returns the best of three runs, in milliseconds, per table size.
    """
    rows = []
    with runtime.engine().connect() as conn, conn.begin() as trans:
        for n in sizes:
            t = f"{SCRATCH}timing_{n}"
            conn.execute(sa.text(f"CREATE TABLE {t} AS SELECT g AS id, 'user ' || g AS name "
                                 f"FROM generate_series(1, {n}) g"))
            rename = _timed(conn, f"ALTER TABLE {t} RENAME name TO full_name")
            rewrite = _timed(conn, f"ALTER TABLE {t} ADD COLUMN full_name text",
                             f"UPDATE {t} SET full_name = name",
                             f"ALTER TABLE {t} DROP COLUMN name")
            rows.append({"rows": n, "rename (ms)": round(rename, 2),
                         "drop+add+backfill (ms)": round(rewrite, 1)})
        trans.rollback()
    return pd.DataFrame(rows).set_index("rows")


def flat_vs_linear_verdict(timings: pd.DataFrame) -> str:
    """Return a fixed sentence from a generous comparison of the timings (never a number).

    Expected: the rewrite grows about 10x with 10x the rows; the rename stays near a
    millisecond. The thresholds (2x growth, 5x apart) leave room for a noisy machine, and
    the best of three runs shrugs off a single hiccup.
    """
    small, big = timings.index.min(), timings.index.max()
    rewrite, rename = timings["drop+add+backfill (ms)"], timings["rename (ms)"]
    if rewrite[big] > 2 * rewrite[small] and rename[big] * 5 < rewrite[big]:
        return (f"With {big // small}x the rows, the drop+add+backfill took several times longer; "
                "the rename did not, because it only touches the catalog.")
    return "The timings were too noisy to compare on this machine; run the cell again."


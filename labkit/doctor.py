"""``python -m lab_helpers doctor``: the preflight an instructor runs on every machine before class.

Each check returns one row: a name, whether it passed, what it found, and for a failure
the fix. Only the standard library is imported at module level, so ``python -m
labkit.doctor`` still reports on a machine where the lab's packages are broken.
Errors are shown as one short line: never a traceback, never a password.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from . import requirements, settings
from .paths import REPO
from .text import first_line, redact, url_password

MIN_PYTHON = (3, 11)
MIN_FREE_BYTES = 1 << 30  # 1 GiB: the embedded server, its data and the workspace need ~300 MB
REQUIREMENTS = REPO / "requirements.txt"
AGAIN = "run the doctor again; if it persists, see docs/instructor-guide.md"
INSTALL = "pip install -r requirements.txt   (from the repository root, in the lab's venv)"


@dataclass
class Check:
    """One row of the doctor's table."""

    name: str
    ok: bool
    detail: str
    fix: str = ""


# --------------------------------------------------------------------------- helpers

def scrub(text: str) -> str:
    """Return ``text`` with any password from DATABASE_URL, or in a URL, replaced by ***."""
    return redact(text, url_password(settings.database_url()))


def _short(exc: BaseException) -> str:
    return scrub(first_line(exc, type(exc).__name__))


# --------------------------------------------------------------------------- the checks

def check_python() -> Check:
    """Python must be 3.11 or newer."""
    found = ".".join(map(str, sys.version_info[:3]))
    ok = sys.version_info[:2] >= MIN_PYTHON
    return Check("Python", ok, found + ("" if ok else " (too old)"),
                 "" if ok else "install Python 3.11 or newer and create the venv with it")


def read_requirements(path: Path = REQUIREMENTS) -> list[requirements.Requirement]:
    """Return the requirements named in requirements.txt (options like ``-e .`` skipped)."""
    return requirements.read(path)


def check_packages(path: Path = REQUIREMENTS) -> Check:
    """Every package in requirements.txt must be installed at a version it allows."""
    from importlib.metadata import PackageNotFoundError, version

    if not path.exists():
        return Check("Packages", False, f"{path.name} not found next to labkit/",
                     "run the doctor from a clone of the lab repository")
    try:
        reqs = read_requirements(path)
    except requirements.Unreadable as exc:
        return Check("Packages", False, f"{path.name}: {exc}", "fix that line of the file")
    problems = []
    for req in reqs:
        try:
            have = version(req.name)
        except PackageNotFoundError:
            problems.append(f"{req.name} missing")
            continue
        if not _guarded_allows(req, have):
            problems.append(f"{req.name} {have} (needs {req.specifier})")
    if problems:
        return Check("Packages", False, "; ".join(problems), INSTALL)
    return Check("Packages", True, f"all {len(reqs)} in requirements.txt at allowed versions")


def check_settings() -> Check:
    """Every LAB_* and CLASSROOM_* setting in the environment must hold a value the lab can use."""
    from labkit.errors import LabError

    try:
        settings.check_all()
    except LabError as exc:
        return Check("Settings", False, exc.what, _as_fix(exc.fix))
    return Check("Settings", True, "every LAB_* and CLASSROOM_* setting that is set can be used")


def check_data_folder() -> Check:
    """The data folder (embedded server data and notebook workspace) must be writable."""
    from labkit.paths import data_root, data_root_reason
    from labkit.postgres.embedded import data_folder_problem

    root = data_root()
    problem = data_folder_problem(root)  # read-only, full, or no right to write
    if problem is not None:
        return Check("Data folder", False, problem.what, _as_fix(problem.fix))
    return Check("Data folder", True, f"{root} is writable ({data_root_reason()[0]})")


def check_disk() -> Check:
    """At least 1 GiB must be free where the data folder lives."""
    from labkit.paths import data_root

    place = data_root()
    while not place.exists() and place != place.parent:
        place = place.parent
    free = shutil.disk_usage(place).free
    text = f"{free / (1 << 30):.1f} GiB free in {place}"
    ok = free >= MIN_FREE_BYTES
    return Check("Free disk", ok, text,
                 "" if ok else "free at least 1 GiB, or set LAB_DATA_DIR to a roomier disk")


def check_database() -> tuple[Check, object]:
    """The embedded server must start, or DATABASE_URL must be reachable; return the engine too."""
    import sqlalchemy as sa

    from labkit import database
    from labkit.errors import RUN_DOCTOR, LabError
    from labkit.postgres.binaries import binaries_note

    external = settings.database_url() is not None
    name = "DATABASE_URL" if external else "Embedded server"
    fix = ("check the host, port, user and password in DATABASE_URL, or unset it to use the "
           "embedded server" if external else
           "see the server log in the data folder's pgdata/log; delete the data folder to start afresh")
    try:
        eng = database.checked_engine()
        with eng.connect() as conn:
            version = conn.scalar(sa.text("SHOW server_version"))
    except LabError as exc:
        own = exc.fix and exc.fix != RUN_DOCTOR  # the doctor's own advice beats "run the doctor"
        return Check(name, False, exc.what, _as_fix(exc.fix) if own else fix), None
    except Exception as exc:  # anything else still gets one line, not a traceback
        return Check(name, False, f"{type(exc).__name__}: {_short(exc)}", fix), None
    where = "reachable" if external else "running"
    note = None if external else binaries_note()  # as root, with the venv in a closed folder
    return Check(name, True, f"PostgreSQL {version} {where}, database {eng.url.database!r}"
                 + (f"\nbinaries: {note}" if note else "")), eng


def check_pgvector(eng) -> Check:
    """The server must offer the vector extension; report its version."""
    from labkit.database import vector_extension

    with eng.connect() as conn:
        row = vector_extension(conn)
    if row is None:
        return Check("pgvector", False, "the server has no 'vector' extension",
                     "install pgvector on the server (apt install postgresql-NN-pgvector from "
                     "apt.postgresql.org; brew install pgvector), or unset DATABASE_URL to use the embedded server")
    if row.installed_version:
        return Check("pgvector", True, f"{row.installed_version} (installed in this database)")
    return Check("pgvector", True, f"{row.default_version} (available; phase 4 installs it)")


def check_hnsw(eng) -> Check:
    """Build an HNSW index on a temporary vector(3) table, then roll everything back."""
    import sqlalchemy as sa

    conn = eng.connect()
    try:
        with conn.begin() as tx:
            conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS vector"))
            conn.execute(sa.text("CREATE TEMP TABLE doctor_probe (v vector(3)) ON COMMIT DROP"))
            conn.execute(sa.text("INSERT INTO doctor_probe VALUES ('[1,0,0]'), ('[0,1,0]'), ('[0,0,1]')"))
            conn.execute(sa.text(
                "CREATE INDEX ON doctor_probe USING hnsw (v vector_cosine_ops)"))
            tx.rollback()
    except sa.exc.DBAPIError as exc:
        text = _short(exc.orig or exc)
        if "permission denied" in text:
            fix = (f"ask the admin to run CREATE EXTENSION vector in database {eng.url.database!r}, "
                   "or to make you its owner")
        elif "is not available" in text or "control file" in text:
            fix = "install pgvector on the server first (see the pgvector line)"
        else:
            fix = "upgrade pgvector to 0.5 or newer (HNSW arrived in 0.5.0)"
        return Check("HNSW index", False, text, fix)
    finally:
        conn.close()
    return Check("HNSW index", True, "built on a vector(3) test table, then rolled back")


# --------------------------------------------------------------------------- report

def run_checks() -> list[Check]:
    """Run every check in order; a failed connection marks the database checks as not run."""
    rows = [_guarded("Python", check_python), _guarded("Packages", check_packages),
            _guarded("Settings", check_settings)]
    try:
        import labkit.database  # noqa: F401  (imported to learn whether it can be: the remaining checks need it)
    except Exception as exc:
        skipped = "not checked: the lab's packages do not import (" + _short(exc) + ")"
        return rows + [Check(n, False, skipped, INSTALL) for n in
                       ("Data folder", "Free disk", "Database", "pgvector", "HNSW index")]
    rows += [_guarded("Data folder", check_data_folder), _guarded("Free disk", check_disk)]
    try:
        db, eng = check_database()
    except Exception as exc:  # check_database catches what it expects; this is the guard of last resort
        db, eng = Check("Database", False, f"{type(exc).__name__}: {_short(exc)}", AGAIN), None
    rows.append(db)
    if eng is None:
        return rows + [Check(n, False, "not checked: no database connection",
                             "fix the database line above first") for n in ("pgvector", "HNSW index")]
    vector = _guarded("pgvector", check_pgvector, eng)
    rows.append(vector)
    if not vector.ok:
        rows.append(Check("HNSW index", False, "not checked: pgvector is not available",
                          "install pgvector first (the fix on the pgvector line above)"))
    else:
        rows.append(_guarded("HNSW index", check_hnsw, eng))
    return rows


def _guarded_allows(req: requirements.Requirement, have: str) -> bool:
    """Return whether an installed version meets the requirement; one that cannot be read does not."""
    try:
        return req.allows(have)
    except requirements.Unreadable:
        return False


def _as_fix(advice: str) -> str:
    """Return a LabError's fix as the doctor's one-line fix: lowercase start, no final full stop."""
    advice = " ".join(advice.split())
    return (advice[:1].lower() + advice[1:]).rstrip(".")


def _guarded(name: str, check, *args) -> Check:
    """Run one check; an unexpected error becomes a failed row of one line."""
    try:
        return check(*args)
    except Exception as exc:
        return Check(name, False, f"{type(exc).__name__}: {_short(exc)}", AGAIN)


def _marks() -> tuple[str, str]:
    try:
        "✓✗".encode(sys.stdout.encoding or "ascii")
        return "✓", "✗"
    except (UnicodeEncodeError, LookupError):
        return "OK", "XX"


def render(rows: list[Check]) -> str:
    """Return the table as text: one line per check, a fix line under each failure."""
    good, bad = _marks()
    width = max(len(r.name) for r in rows) + 2
    lines = ["Database Evolution lab: doctor"]
    for r in rows:
        first, *more = r.detail.splitlines() or [""]
        lines.append(f"  {good if r.ok else bad} {r.name:<{width}}{first}")
        lines.extend(f"    {'':<{width}}{line.strip()}" for line in more if line.strip())
        if not r.ok and r.fix:
            lines.append(f"    {'':<{width}}fix: {r.fix}")
    failed = sum(not r.ok for r in rows)
    lines.append(f"All {len(rows)} checks passed: this machine is ready for class." if not failed else
                 f"{failed} of {len(rows)} checks failed: apply each fix, then run the doctor again.")
    return "\n".join(scrub(line) for line in lines)


def main() -> int:
    """Print the doctor's table; return 0 when every check passed, else 1."""
    rows = run_checks()
    print(render(rows))
    return 0 if all(r.ok for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

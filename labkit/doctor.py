"""``python -m lab_helpers doctor``: the preflight an instructor runs on every machine before class.

Each check returns one row: a name, whether it passed, what it found, and for a failure
the fix. Only the standard library is imported at module level, so ``python -m
labkit.doctor`` still reports on a machine where the lab's packages are broken.
Errors are shown as one short line: never a traceback, never a password.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

MIN_PYTHON = (3, 11)
MIN_FREE_BYTES = 1 << 30  # 1 GiB: the embedded server, its data and the workspace need ~300 MB
REPO = Path(__file__).resolve().parent.parent
REQUIREMENTS = REPO / "requirements.txt"
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
    raw = os.environ.get("DATABASE_URL", "")
    match = re.search(r"://[^:/@\s]*:([^@\s]+)@", raw)
    if match:
        text = text.replace(match.group(1), "***")
    return re.sub(r"(://[^:/@\s]*:)(?!password@)[^@\s]+@", r"\1***@", text)


def _short(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return scrub(lines[0] if lines else type(exc).__name__)


def split_advice(message: str) -> tuple[str, str]:
    """Split a LabError's message into (what happened, its own advice after "To avoid it,")."""
    what, sep, advice = message.partition("To avoid it,")
    if not sep:
        return message, ""
    advice = " ".join(advice.split())
    return what.strip(), advice[:1].lower() + advice[1:]


def read_requirements(path: Path = REQUIREMENTS) -> list:
    """Return the ``packaging`` Requirements named in requirements.txt (options like ``-e .`` skipped)."""
    from packaging.requirements import Requirement

    found = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            found.append(Requirement(line))
    return found


# --------------------------------------------------------------------------- the checks

def check_python() -> Check:
    """Python must be 3.11 or newer."""
    found = ".".join(map(str, sys.version_info[:3]))
    ok = sys.version_info[:2] >= MIN_PYTHON
    return Check("Python", ok, found + ("" if ok else " (too old)"),
                 "" if ok else "install Python 3.11 or newer and create the venv with it")


def check_packages() -> Check:
    """Every package in requirements.txt must be installed at a version it allows."""
    from importlib.metadata import PackageNotFoundError, version

    if not REQUIREMENTS.exists():
        return Check("Packages", False, f"{REQUIREMENTS.name} not found next to labkit/",
                     "run the doctor from a clone of the lab repository")
    reqs = read_requirements()
    problems = []
    for req in reqs:
        try:
            have = version(req.name)
        except PackageNotFoundError:
            problems.append(f"{req.name} missing")
            continue
        if not req.specifier.contains(have, prereleases=True):
            problems.append(f"{req.name} {have} (needs {req.specifier})")
    if problems:
        return Check("Packages", False, "; ".join(problems), INSTALL)
    return Check("Packages", True, f"all {len(reqs)} in requirements.txt at allowed versions")


def check_data_folder() -> Check:
    """The data folder (embedded server data and notebook workspace) must be writable."""
    from labkit import runtime

    root = runtime.data_root()
    problem = runtime.data_folder_problem(root)  # read-only, full, or no right to write
    if problem is not None:
        what, fix = str(problem).split("\n", 1)
        return Check("Data folder", False, what, fix[:1].lower() + fix[1:].rstrip("."))
    return Check("Data folder", True, f"{root} is writable ({runtime.data_root_reason()})")


def check_disk() -> Check:
    """At least 1 GiB must be free where the data folder lives."""
    from labkit import runtime

    place = runtime.data_root()
    while not place.exists() and place != place.parent:
        place = place.parent
    free = shutil.disk_usage(place).free
    text = f"{free / (1 << 30):.1f} GiB free in {place}"
    ok = free >= MIN_FREE_BYTES
    return Check("Free disk", ok, text,
                 "" if ok else "free at least 1 GiB, or set LAB_DATA_DIR to a roomier disk")


def check_database() -> tuple[Check, object]:
    """The embedded server must start, or DATABASE_URL must be reachable; return the engine too."""
    from labkit import runtime
    from labkit.errors import LabError

    external = runtime.database_url_setting() is not None
    name = "DATABASE_URL" if external else "Embedded server"
    fix = ("check the host, port, user and password in DATABASE_URL, or unset it to use the "
           "embedded server" if external else
           "see the server log in the data folder's pgdata/log; delete the data folder to start afresh")
    try:
        eng = runtime.engine()
        runtime.check_connection(eng)
        import sqlalchemy as sa

        with eng.connect() as conn:
            version = conn.scalar(sa.text("SHOW server_version"))
    except LabError as exc:
        message, advice = split_advice(str(exc).strip())
        if advice:
            fix = advice
        elif "LAB_STUDENT" in message:
            fix = "export LAB_STUDENT=alice (a lowercase name), or unset LAB_STUDENT"
        elif "CREATEDB" in message:
            fix = "the admin grants CREATEDB or creates the database (docs/instructor-guide.md)"
        return Check(name, False, message, fix), None
    except Exception as exc:  # anything else still gets one line, not a traceback
        return Check(name, False, f"{type(exc).__name__}: {_short(exc)}", fix), None
    where = "reachable" if external else "running"
    note = None if external else runtime.binaries_note()  # as root, with the venv in a closed folder
    return Check(name, True, f"PostgreSQL {version} {where}, database {eng.url.database!r}"
                 + (f"\nbinaries: {note}" if note else "")), eng


def check_pgvector(eng) -> Check:
    """The server must offer the vector extension; report its version."""
    from labkit import runtime

    with eng.connect() as conn:
        row = runtime.vector_extension(conn)
    if row is None:
        return Check("pgvector", False, "the server has no 'vector' extension",
                     "install pgvector on the server (apt install postgresql-NN-pgvector, "
                     "brew install pgvector), or unset DATABASE_URL to use the embedded server")
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
    rows = [check_python(), check_packages()]
    try:
        import sqlalchemy  # noqa: F401  (the remaining checks need the lab's packages)
        import labkit.runtime  # noqa: F401
    except Exception as exc:
        skipped = "not checked: the lab's packages do not import (" + _short(exc) + ")"
        return rows + [Check(n, False, skipped, INSTALL) for n in
                       ("Data folder", "Free disk", "Database", "pgvector", "HNSW index")]
    rows += [_guarded("Data folder", check_data_folder), _guarded("Free disk", check_disk)]
    db, eng = check_database()
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


def _guarded(name: str, check, *args) -> Check:
    """Run one check; an unexpected error becomes a failed row of one line."""
    try:
        return check(*args)
    except Exception as exc:
        return Check(name, False, f"{type(exc).__name__}: {_short(exc)}",
                     "run the doctor again; if it persists, see docs/instructor-guide.md")


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

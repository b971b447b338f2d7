"""The four phases: Alembic configs, the reference revisions, sample data, and ``goto``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy.exc import DBAPIError

from . import database, paths
from .diagnose import explain
from .embedding import embed
from .errors import LabError
from .migration import migrating

INI = paths.REPO / "alembic.ini"
REFERENCE_VERSIONS = paths.REFERENCE_VERSIONS
REVISIONS = {
    1: "0001_create_users",
    2: "0002_add_email_and_bio",
    3: "0003_rename_name_to_full_name",
    4: "0004_settings_and_embedding",
}
# Tables the notebooks create for throwaway experiments start with this prefix; reset drops them.
SCRATCH_PREFIX = "scratch_"

SAMPLE_USERS = [
    ("Ada Lovelace", "ada@example.org", "Wrote the first program, for an engine not yet built."),
    ("Grace Hopper", "grace@example.org", "Built the first compiler and found a real bug."),
    ("Alan Turing", "alan@example.org", "Asked whether machines can think."),
    ("Katherine Johnson", "katherine@example.org", "Computed the orbits that took people to the Moon."),
    ("Edsger Dijkstra", None, None),
]
SAMPLE_SETTINGS = [
    {"theme": "dark", "language": "en"},
    {"theme": "light", "language": "en", "beta": True},
    {"theme": "dark", "language": "en-GB"},
    {"theme": "light", "language": "en", "notifications": {"email": False}},
    {},
]


def config(version_dir: Path | None = None, metadata=None, connection=None) -> Config:
    """Return an Alembic Config for the lab, optionally with its own versions folder and connection."""
    cfg = Config(str(INI))
    if version_dir is not None:
        cfg.set_main_option("version_locations", str(version_dir).replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    if metadata is not None:
        cfg.attributes["target_metadata"] = metadata
    return cfg


def _workspace_root(url: sa.URL) -> Path:
    """Return the folder holding every phase's workspace for the database at ``url``."""
    return paths.workspace() / (url.database or "default")


def workspace(phase: int) -> Path:
    """Return an empty, git-ignored versions folder holding reference revisions 1..phase-1.

    Notebook ``phase`` autogenerates its own revision into this folder, never into
    ``migrations/versions``: a second ``rev_id`` there would corrupt the history.
    """
    folder = _workspace_root(database.resolve_url()) / f"phase{phase}"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for n in range(1, phase):
        shutil.copy(REFERENCE_VERSIONS / f"{REVISIONS[n]}.py", folder)
    return folder


def forget_bytecode(version_dir: Path) -> None:
    """Delete compiled copies of revisions, so an edited script is never loaded stale."""
    shutil.rmtree(Path(version_dir) / "__pycache__", ignore_errors=True)


def _refuse_foreign_tables(conn: sa.Connection, names: list[str]) -> None:
    """Raise unless the users/alembic_version tables in a database the lab does not own are the lab's."""
    if database.lab_owns_database():
        return
    revision = current_revision(conn) if "alembic_version" in names else None
    foreign_version = revision is not None and revision not in REVISIONS.values()
    foreign_users = "users" in names and revision not in REVISIONS.values()
    if not (foreign_version or foreign_users):
        return
    what = (f"an alembic_version at {revision!r}, which is not one of this lab's revisions"
            if foreign_version else "a users table that this lab did not create")
    raise LabError(
        f"The database {conn.engine.url.database!r} named in DATABASE_URL has {what},\n"
        "so the lab will not drop it. Nothing was changed. Point DATABASE_URL at an empty database\n"
        "made for the lab, or set LAB_STUDENT=<name> to work in a database lab_<name> of its own."
    )


def _drop_lab_objects(conn: sa.Connection) -> None:
    names = conn.scalars(sa.text(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
        "AND (tablename IN ('users', 'alembic_version') OR starts_with(tablename, :p))"),
        {"p": SCRATCH_PREFIX}).all()
    _refuse_foreign_tables(conn, names)
    prep = conn.dialect.identifier_preparer
    for name in names:
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {prep.quote_identifier(name)} CASCADE"))


def seed(conn: sa.Connection, phase: int) -> None:
    """Write the sample data a learner has at the end of ``phase``."""
    if phase == 1:
        conn.execute(sa.text("INSERT INTO users (name) VALUES (:name)"),
                     [{"name": name} for name, _, _ in SAMPLE_USERS])
    elif phase == 2:
        conn.execute(sa.text("UPDATE users SET email = :email, bio = :bio WHERE name = :name"),
                     [{"name": n, "email": e, "bio": b} for n, e, b in SAMPLE_USERS])
    elif phase == 4:
        for (name, _, bio), settings in zip(SAMPLE_USERS, SAMPLE_SETTINGS, strict=True):
            conn.execute(
                sa.text("UPDATE users SET settings = CAST(:s AS jsonb), embedding = CAST(:e AS vector) "
                        "WHERE full_name = :name"),
                {"s": json.dumps(settings), "e": str(embed(f"{name}. {bio or ''}")), "name": name})


def goto(phase: int, url: sa.URL | None = None, clear_workspace: bool = True,
         watch: bool = False) -> str:
    """Bring the lab database to the end of ``phase`` (0-4) with its sample data; return a summary.

    A notebook's ``start`` passes ``clear_workspace=False``, leaving the other phases'
    workspaces alone (another kernel may be working in one), and ``watch=True``: from
    now on this process notices when another session moves the database.
    """
    if phase not in range(0, 5):
        raise LabError(f"There is no phase {phase}: choose a phase from 0 (empty) to 4.")
    eng = database.engine(url)
    try:
        with eng.connect() as conn, migrating(conn, check_drift=False, watch=watch, one_transaction=True):
            _drop_lab_objects(conn)
            for n in range(1, phase + 1):
                command.upgrade(config(connection=conn), REVISIONS[n])
                seed(conn, n)
    except DBAPIError as exc:
        raise explain(exc, eng.url) from None
    if clear_workspace:
        shutil.rmtree(_workspace_root(eng.url), ignore_errors=True)
    where = f"database {eng.url.database!r}"
    if phase == 0:
        return f"Reset {where}: no users table, no alembic_version."
    return f"{where} is at the end of phase {phase} ({REVISIONS[phase]}), with sample data."


def reset() -> str:
    """Empty the lab database: the same as ``goto(0)``."""
    return goto(0)


def current_revision(conn: sa.Connection) -> str | None:
    """Return the database's revision (Alembic's current heads, ", "-joined when there are two), or None."""
    heads = MigrationContext.configure(conn).get_current_heads()  # () when alembic_version is missing
    return ", ".join(sorted(heads)) or None

"""A phase's workspace: start a phase, autogenerate into the workspace, edit and show its scripts."""

from __future__ import annotations

import contextlib
import difflib
import io
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.exc import DBAPIError

from .. import autogen, database, phases, sessions
from ..diagnose import explain
from ..errors import LabError
from ..text import fix_create_date
from . import display
from .queries import RESTART, frame


class Phase:
    """One notebook's working state: its Alembic config and git-ignored versions folder."""

    def __init__(self, phase: int, metadata: sa.MetaData | None = None):
        self.phase = phase
        self.version_dir = phases.workspace(phase)
        self.cfg: Config = phases.config(version_dir=self.version_dir, metadata=metadata)
        self.cfg.stdout = display.RelativeStdout()  # history --verbose prints relative paths
        self.generated: dict[str, str] = {}  # each revision's text as autogenerate wrote it

    def use_model(self, metadata: sa.MetaData) -> None:
        """Make autogenerate compare the database with this model."""
        self.cfg.attributes["target_metadata"] = metadata

    def autogenerate(self, message: str, rev_id: str) -> Path:
        """Autogenerate revision ``rev_id`` into the workspace; print what Alembic said, paths made relative.

        Run again before the upgrade, it writes the script afresh. After the upgrade it stops
        with a short message: the database already has the change, so there is nothing to compare.
        """
        sessions.check_now(database.engine())
        existing = self.script(rev_id)
        if existing.exists():
            with database.engine().connect() as conn:
                at = phases.current_revision(conn)
            if at != self._parent_of(rev_id):
                raise LabError(
                    f"{rev_id} was already generated and the database is now at {at or 'base'}.",
                    f"To generate it again, start this notebook over from the top: {RESTART}")
            existing.unlink()  # never let a second file claim the same id: that corrupts the history
            phases.forget_bytecode(self.version_dir)
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            script = command.revision(self.cfg, message=message, autogenerate=True, rev_id=rev_id)
        print(display.relative(out.getvalue()).rstrip())
        phases.forget_bytecode(self.version_dir)
        self.generated[rev_id] = Path(script.path).read_text()
        return Path(script.path)

    def _parent_of(self, rev_id: str) -> str | None:
        ids = list(phases.REVISIONS.values())
        return ids[ids.index(rev_id) - 1] if rev_id in ids and ids.index(rev_id) > 0 else None

    def drop_rename_hint(self, rev_id: str) -> None:
        """Remove the RENAME? comment autogenerate wrote into a workspace revision."""
        sessions.check_now(database.engine())
        path = self.script(rev_id)
        path.write_text(autogen.strip_rename_hint(path.read_text()))
        phases.forget_bytecode(self.version_dir)

    def reference(self, rev_id: str) -> Path:
        """Return the path of the lab's reference revision ``rev_id`` in migrations/versions."""
        return phases.REFERENCE_VERSIONS / f"{rev_id}.py"

    def script(self, rev_id: str) -> Path:
        """Return the path of a revision in this workspace."""
        return self.version_dir / f"{rev_id}.py"

    def edit(self, rev_id: str, old: str, new: str) -> Path:
        """Replace the text ``old`` with ``new`` in a workspace revision; run twice, it changes nothing."""
        sessions.check_now(database.engine())
        path = self.script(rev_id)
        text = path.read_text()
        if new and new in text and (old not in text or old in new):
            print(f"Already edited: {path.name} has the new text.")
            return path
        if old not in text:
            first = old.strip().splitlines()[0] if old.strip() else repr(old)
            raise LabError(f"{path.name} has no text {first!r}...",
                           f"Check the spelling, or start this notebook over from the top: {RESTART}")
        path.write_text(text.replace(old, new))
        phases.forget_bytecode(self.version_dir)
        return path

    def append(self, rev_id: str, text: str) -> Path:
        """Add ``text`` at the end of a workspace revision; run twice, it changes nothing."""
        sessions.check_now(database.engine())
        path = self.script(rev_id)
        current = path.read_text()
        if text.strip() not in current:
            path.write_text(current.rstrip("\n") + "\n" + text)
            phases.forget_bytecode(self.version_dir)
        return path

    def diff(self, rev_id: str, since: str | None = None) -> str:
        """Return a unified diff of a workspace revision: ``since`` (default: as generated) against now."""
        path = self.script(rev_id)
        before = since if since is not None else self.generated.get(rev_id, "")
        return "".join(difflib.unified_diff(
            before.splitlines(keepends=True), path.read_text().splitlines(keepends=True),
            "as generated" if since is None else "before the edit", "edited"))


def start(phase: int, metadata: sa.MetaData | None = None, own_database: bool | None = None) -> Phase:
    """Bring the database to the start of ``phase`` (the end of phase-1) and return its workspace.

    From here on this kernel watches the database: if another notebook or the ``alembic``
    command line moves it, the next lab call says so (``labkit.sessions``). With
    ``own_database=True``, or LAB_PER_NOTEBOOK=1, the notebook works in a database of its
    own (``lab_nb3`` for notebook 3), so several notebooks can run at once.
    """
    database.use_notebook_database(f"nb{phase}" if sessions.wants_own_database(own_database) else None)
    phases.goto(phase - 1, clear_workspace=False, watch=True)
    _started.append(phase)
    return Phase(phase, metadata)


_started: list[int] = []  # the phases this kernel started, last one last (names the app connection)


def app_connection() -> sa.Connection:
    """Return a separate autocommit connection: an application that holds no locks between queries.

    It shows in pg_stat_activity as ``notebook N app`` (N: the notebook last started in this
    kernel), so a migration that waits for it can name it. It has an engine of its own, so
    that name never sticks to the lab's pooled connections.
    """
    name = f"notebook {_started[-1]} app" if _started else "lab app"
    url = database.resolve_url()
    app = sa.create_engine(url, poolclass=sa.pool.NullPool,
                           connect_args={"connect_timeout": 5, "application_name": name})
    try:
        return app.connect().execution_options(isolation_level="AUTOCOMMIT")
    except DBAPIError as exc:
        raise explain(exc, url) from None


def script_text(path: Path) -> str:
    """Return a revision's source with its volatile Create Date line fixed."""
    return fix_create_date(Path(path).read_text())


class ScriptView:
    """A revision file shown as highlighted Python; its plain-text form (what nbval compares) is the source."""

    def __init__(self, path: Path):
        self.name = display.relative(path)
        self.text = script_text(path)

    def _repr_markdown_(self) -> str:
        return f"`{self.name}`\n\n```python\n{self.text}\n```"

    def __repr__(self) -> str:
        return f"# {self.name}\n{self.text}"


def show_script(path: Path) -> None:
    """Display a revision file as highlighted Python."""
    from IPython.display import display as show

    show(ScriptView(path))


def users(columns: str = "*") -> pd.DataFrame:
    """Return the users table ordered by id, or an empty frame when it does not exist yet."""
    with database.connection() as conn:
        if not sa.inspect(conn).has_table("users"):
            return pd.DataFrame()
        return frame(f"SELECT {columns} FROM users ORDER BY id", conn)

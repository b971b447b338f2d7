"""Notebook 8: a project's database URL with pgvector in reach, and an application that keeps
reading and writing (and counts its failures) while the embedding model is swapped."""

from __future__ import annotations

import contextlib
import threading
import time

import sqlalchemy as sa

from .. import database
from ..embedding import embed
from ..errors import LabError
from ..phases import goto
from .project import project_database_url


def project_url(schema: str) -> str:
    """Empty schema ``schema`` and return its URL, with ``public`` (where pgvector lives) second on the search path.

    ``public`` may also hold the lab's own tables (notebooks 1-4): its ``alembic_version``, which
    Alembic would find through the search path (the template's conftest refuses to run beside it),
    and its ``users``, which autogenerate would see beside the project's models. So the lab
    database goes back to phase 0 first (``goto(0)``: notebooks 1-4 rebuild theirs when they
    start), which refuses, before any change, in a database of ``DATABASE_URL`` whose tables are
    not the lab's. The schema then gets an empty ``alembic_version`` of its own.
    """
    goto(0, clear_workspace=False)
    url = sa.make_url(project_database_url(schema))
    with database.engine().begin() as conn:
        conn.execute(sa.text(f"CREATE TABLE {schema}.alembic_version (version_num varchar(32) NOT NULL, "
                             "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"))
    url = url.update_query_dict({"options": f"-csearch_path={schema},public"})
    return url.render_as_string(hide_password=False)


def require_vector() -> None:
    """Install pgvector in the lab database's ``public`` schema, or raise a short LabError where the server has none."""
    eng = database.engine()
    with eng.begin() as conn:
        row = database.vector_extension(conn)
        if row is None:
            raise LabError("This server has no pgvector, so section 5 cannot run here; sections 1-4 did.",
                           "Use the lab's own server (unset DATABASE_URL) or one with the vector extension.")
        version = row.installed_version or row.default_version
        if tuple(int(part) for part in version.split(".")[:2]) < (0, 7):
            raise LabError(f"This server's pgvector is {version}; section 5 uses halfvec, new in pgvector 0.7.",
                           "Update pgvector on the server (ALTER EXTENSION vector UPDATE), or use the lab's server.")
        conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS vector"))


# What the application runs: version 1 knows only the 384-dimension column, version 2 also
# writes the 768 one, version 3 reads the 768 one and still writes both (a v2 replica, or a
# rollback to v2, still finds every row), version 4 writes only the 768 one. Each statement is
# its own transaction.
OLD_READ = "SELECT id FROM documents ORDER BY embedding <=> CAST(:q AS vector(384)) LIMIT 5"
NEW_READ = "SELECT id FROM documents ORDER BY embedding_768 <=> CAST(:q AS vector(768)) LIMIT 5"
BOTH_WRITE = "INSERT INTO documents (body, embedding, embedding_768) VALUES (:body, :e384, :e768)"
READ = {1: OLD_READ, 2: OLD_READ, 3: NEW_READ, 4: NEW_READ}
WRITE = {1: "INSERT INTO documents (body, embedding) VALUES (:body, :e384)", 2: BOTH_WRITE, 3: BOTH_WRITE,
         4: "INSERT INTO documents (body, embedding_768) VALUES (:body, :e768)"}


class App(threading.Thread):
    """The application next to the swap: a read and a write every few ms; counts each kind, and each failure."""

    def __init__(self, url: str, version: int = 1, pause: float = 0.01):
        super().__init__(daemon=True, name="app")
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args={"application_name": "notebook 8 app"})
        self.conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        self.version, self.pause = version, pause
        # A few notes, embedded once: the application's time goes to the database, not the model.
        self.notes = [(f"note {i} written during the swap", str(embed(f"note {i} written during the swap")),
                       str(embed(f"note {i} written during the swap", 768))) for i in range(20)]
        self.reads = self.writes = 0
        self.failures: list[str] = []
        self.stop = threading.Event()

    def step(self, n: int) -> None:
        """Run one read and one write as the application of ``self.version`` would."""
        version, (body, e384, e768) = self.version, self.notes[n % len(self.notes)]
        try:
            self.conn.execute(sa.text(READ[version]), {"q": e768 if version >= 3 else e384})
            self.reads += 1
            self.conn.execute(sa.text(WRITE[version]), {"body": body, "e384": e384, "e768": e768})
            self.writes += 1
        except sa.exc.DBAPIError as exc:
            self.failures.append(f"version {version}: {str(exc.orig).splitlines()[0]}")

    def run(self) -> None:
        with contextlib.closing(self.conn):
            n = 0
            while not self.stop.is_set():
                n += 1
                self.step(n)
                time.sleep(self.pause)

    def finish(self) -> str:
        """Stop the application and return what it did: reads, writes and failures."""
        self.stop.set()
        self.join(30)
        return f"reads: {self.reads}, writes: {self.writes}, failed: {len(self.failures)}"

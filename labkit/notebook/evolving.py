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
from ..phases import REVISIONS
from .project import project_database_url


def project_url(schema: str) -> str:
    """Empty schema ``schema`` and return its URL, with ``public`` (where pgvector lives) second on the search path.

    ``public`` may also hold the lab's own ``alembic_version`` (notebooks 1-4), which Alembic
    would find through the search path, and which the template's conftest refuses to run beside.
    So the schema gets an empty ``alembic_version`` of its own first, the table Alembic would
    create, and the lab's in ``public`` is dropped: the lab database then reads "phase 0" until
    ``goto N`` (notebooks 1-4 rebuild theirs when they start). It is dropped only where it is the
    lab's: a database the lab made, or a revision of the lab's; any other refuses, before a change.
    """
    with database.engine().connect() as conn:
        _refuse_a_foreign_version(conn)
    url = sa.make_url(project_database_url(schema))
    with database.engine().begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS public.alembic_version"))
        conn.execute(sa.text(f"CREATE TABLE {schema}.alembic_version (version_num varchar(32) NOT NULL, "
                             "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"))
    url = url.update_query_dict({"options": f"-csearch_path={schema},public"})
    return url.render_as_string(hide_password=False)


def _refuse_a_foreign_version(conn: sa.Connection) -> None:
    """Raise unless ``public.alembic_version`` is missing, in a database the lab made, or at the lab's revisions."""
    if database.lab_owns_database() or conn.scalar(sa.text("SELECT to_regclass('public.alembic_version')")) is None:
        return
    foreign = [v for v in conn.scalars(sa.text("SELECT version_num FROM public.alembic_version"))
               if v not in REVISIONS.values()]
    if foreign:
        raise LabError(
            f"The database {conn.engine.url.database!r} named in DATABASE_URL has a public.alembic_version\n"
            f"at {', '.join(foreign)!r}, not one of this lab's revisions, so the lab will not drop it.\n"
            "Nothing was changed.",
            "Point DATABASE_URL at an empty database made for the lab, or set LAB_STUDENT=<name>\n"
            "to work in a database lab_<name> of its own.")


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

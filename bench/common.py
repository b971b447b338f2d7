"""Small helpers shared by the bench sections: timing, subprocesses, the bench database."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from labkit.paths import REPO
from labkit.paths import is_root as is_root  # re-exported: the bench sections import it from here

PYTHON = sys.executable


def median(xs):
    """Return the median of a non-empty list, or None for an empty one."""
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def log(msg: str) -> None:
    """Progress to stderr, so stdout stays the markdown table."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run_json(code: str, env: dict | None = None, timeout: float = 300) -> dict:
    """Run ``python -c code`` from the repo root; it must print one JSON object as its last line."""
    proc = subprocess.run([PYTHON, "-c", code], cwd=REPO, env=env or dict(os.environ),
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"subprocess failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def fresh_dir(name: str) -> Path:
    """Return an empty folder /tmp/bench-<name> (short, so the socket path fits)."""
    path = Path("/tmp") / f"bench-{name}"
    remove_dir(path)
    path.mkdir(mode=0o755)
    return path


def remove_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def embedded_env(data_dir: Path) -> dict:
    """Return os.environ for a subprocess on the embedded server in ``data_dir``, default database."""
    env = dict(os.environ, LAB_DATA_DIR=str(data_dir))
    env.pop("DATABASE_URL", None)
    env.pop("LAB_STUDENT", None)
    return env


def stop_embedded(data_dir: Path) -> None:
    """Stop the embedded server whose LAB_DATA_DIR is ``data_dir`` (no-op when stopped)."""
    subprocess.run([PYTHON, "-m", "lab_helpers", "stop"], cwd=REPO, env=embedded_env(data_dir),
                   capture_output=True, text=True, timeout=120)


@contextlib.contextmanager
def timer():
    """Yield a dict whose 's' key holds the elapsed seconds after the block."""
    out = {}
    t0 = time.perf_counter()
    try:
        yield out
    finally:
        out["s"] = time.perf_counter() - t0


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


class BenchDatabase:
    """A per-run database (LAB_STUDENT=bench_<pid>) on the lab's server, dropped at the end.

    When the embedded server was not running before, it is stopped again at the end.
    """

    def __init__(self, tag: str = ""):
        self.student = f"bench_{tag}{os.getpid()}"
        self._saved = os.environ.get("LAB_STUDENT")
        self._was_running = None

    def __enter__(self):
        os.environ["LAB_STUDENT"] = self.student
        from labkit import database
        from labkit.postgres import embedded
        if not os.environ.get("DATABASE_URL"):
            self._was_running = embedded.running() is not None
        self.url = database.resolve_url()
        self.engine = database.engine(self.url)
        return self

    def raw(self):
        """Return a new psycopg2 connection to the bench database."""
        return self.engine.raw_connection().driver_connection

    def __exit__(self, *exc):
        import sqlalchemy as sa

        from labkit import database, paths
        self.engine.dispose()
        server = database.engine(self.url.set(database="postgres"))
        with server.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.url.database}" WITH (FORCE)'))
        if self._saved is None:
            os.environ.pop("LAB_STUDENT", None)
        else:
            os.environ["LAB_STUDENT"] = self._saved
        if self._was_running is False:  # in a subprocess: stopping here upsets the library's atexit
            stop_embedded(paths.data_root())
        return False

"""A real classroom server for a test module: started in a short /tmp folder, learners set up, removed after."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from support.helpers import lab, text_of


@contextlib.contextmanager
def classroom(prefix: str, learners: list[str], *setup_args: str) -> Iterator[dict]:
    """Yield the lab's environment for a running classroom server with ``learners`` set up.

    ``setup_args`` go to ``classroom setup`` (a limit, say). The server is stopped and its folder
    deleted afterwards, whatever the test did.
    """
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    folder.chmod(0o755)  # as root, PostgreSQL runs as pgserver and must reach its data
    env = {"LAB_CLASSROOM_DIR": str(folder), "DATABASE_URL": None, "LAB_STUDENT": None}
    try:
        started = lab("classroom", "server", "start", **env)
        assert started.returncode == 0, text_of(started)
        made = lab("classroom", "setup", "--users", ",".join(learners), *setup_args, **env)
        assert made.returncode == 0, text_of(made)
        yield env
    finally:
        lab("classroom", "server", "stop", **env)
        shutil.rmtree(folder, ignore_errors=True)

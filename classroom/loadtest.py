"""Load test: a room of N learners on one JupyterHub, one shared PostgreSQL, every notebook run.

    python classroom/loadtest.py --quick          # 3 learners, under 2 minutes
    python classroom/loadtest.py --learners 30    # the full room

Run as root from the repository root, in the lab's virtual environment, with
configurable-http-proxy installed (npm install -g configurable-http-proxy). It:

1. starts the classroom PostgreSQL (labkit/classroom/) in a fresh folder under /tmp, and
   creates N learners (role, fenced database lab_<name>, password in a mode-600 file);
2. starts JupyterHub with classroom/jupyterhub_config.py and a service token, and creates the
   N hub users through the Hub REST API;
3. asks the hub to start every learner's server at once (LocalProcessSpawner, real OS users
   de11<run>_NN created on first spawn);
4. in each learner's own server, runs every numbered notebook (notebooks/[0-9]*.ipynb) cell by
   cell in a fresh kernel through the Jupyter Server kernels REST and websocket API, as
   JupyterLab does, and collects errors and stderr;
5. samples the memory (PSS: shared pages counted once) of PostgreSQL and of all learners' processes, and their CPU
   seconds, with psutil; prints a table and writes JSON;
6. stops everything and removes the OS users, roles, databases and folders it made.

Its parts: sampler.py (memory and CPU), hubclient.py (the hub's REST API and a kernel's
websocket), loadreport.py (the summary and the table); this file is the orchestration. Every
setting travels in one ``Settings``; the room's PostgreSQL is driven through the lab's own
command line (``python -m lab_helpers classroom ...``) with the room's environment, so this
process never changes its own ``os.environ``.

It exits 0 only when every learner ran every notebook with no error and no stderr output
(but where the committed notebook shows stderr on purpose).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# The classroom folder's own modules, found next to this file.
import loadreport
from hubclient import Hub
from roomwatch import RoomWatch
from sampler import Sampler

from labkit import paths
from labkit.postgres import cluster

# Notebook 7's table per learner (LAB_BIG_ROWS): a room of million-row tables would measure the disk.
BIG_ROWS = "20000"

@dataclass(frozen=True)
class Settings:
    """Everything one run needs, handed to each part explicitly."""

    learners: int
    notebooks: tuple[Path, ...]
    state: Path  # a fresh folder for this run: the room's PostgreSQL, the hub's state and log
    env: dict[str, str]  # for the lab's command line and the hub: no learner's DATABASE_URL
    python: Path = Path(sys.executable)
    hub_config: Path = REPO / "classroom" / "jupyterhub_config.py"
    cell_timeout: float = 900
    sample_every: float = 0.5

    @classmethod
    def for_room(cls, learners: int, state: Path, environ: dict[str, str]) -> Settings:
        """Return the settings for ``learners`` running every numbered notebook, in ``state``."""
        env = {k: v for k, v in environ.items() if k not in ("DATABASE_URL", "LAB_STUDENT")}
        env["LAB_CLASSROOM_DIR"] = str(state / "room")
        env.setdefault("LAB_BIG_ROWS", BIG_ROWS)  # the hub passes it on to every learner (notebook 7)
        return cls(learners, tuple(paths.notebooks()), state, env)

    @property
    def classroom_dir(self) -> Path:
        return Path(self.env["LAB_CLASSROOM_DIR"])


# --------------------------------------------------------------------------- a learner

def cells_of(path: Path) -> list[tuple[str, bool, bool]]:
    """Return each code cell's source, whether it is tagged raises-exception, and whether its committed
    output writes to stderr on purpose (notebook 9 shows a logger's lines there)."""
    nb = json.loads(path.read_text())
    return [("".join(c["source"]) if isinstance(c["source"], list) else c["source"],
             "raises-exception" in c.get("metadata", {}).get("tags", []),
             any(o.get("name") == "stderr" for o in c.get("outputs", [])))
            for c in nb["cells"] if c["cell_type"] == "code"]


async def run_notebook(hub: Hub, name: str, path: Path, settings: Settings, t0: float) -> dict:
    """Run one notebook's cells in a new kernel of the learner's server; return time and problems.

    ``started`` and ``ended`` are seconds since the room started (``t0``), for comparing with
    what the progress page showed at the time.
    """
    start = time.monotonic()
    errors, stderr = [], []
    async with hub.kernel(name) as kernel:
        for index, (source, expected, writes_stderr) in enumerate(cells_of(path)):
            done = await kernel.execute(source, settings.cell_timeout)
            if not expected:
                errors += [f"cell {index}: {e}"[:500] for e in done.errors]
            elif not done.raised:
                errors.append(f"cell {index}: expected an exception, none was raised")
            if not writes_stderr:
                stderr += [f"cell {index}: {text}"[:500] for text in done.stderr]
    return {"notebook": path.name, "seconds": round(time.monotonic() - start, 2),
            "started": round(start - t0, 2), "ended": round(time.monotonic() - t0, 2),
            "errors": errors, "stderr": stderr}


async def run_learner(hub: Hub, name: str, settings: Settings, t0: float) -> dict:
    """Start a learner's server, run every notebook in it, and return the timings and problems."""
    result = {"name": name, "spawn_seconds": None, "notebooks": [], "failure": None}
    start = time.monotonic()
    try:
        await hub.start_server(name)
        result["spawn_seconds"] = round(time.monotonic() - start, 2)
        for path in settings.notebooks:
            result["notebooks"].append(await run_notebook(hub, name, path, settings, t0))
    except Exception as exc:  # recorded per learner; the room goes on
        result["failure"] = f"{type(exc).__name__}: {exc}"[:500]
    result["total_seconds"] = round(time.monotonic() - start, 2)
    return result


# --------------------------------------------------------------------------- the room

def remove_os_users(names: list[str]) -> None:
    """Kill each OS user's processes (only theirs) and remove the user with their home."""
    for name in names:
        subprocess.run(["pkill", "-KILL", "-u", name], capture_output=True)
        subprocess.run(["userdel", "--remove", name], capture_output=True)


def lab(settings: Settings, *args: str) -> None:
    """Run ``python -m lab_helpers classroom ARGS`` in the room's environment; raise with its message."""
    done = subprocess.run([str(settings.python), "-m", "lab_helpers", "classroom", *args], cwd=REPO,
                          env=settings.env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError((done.stderr or done.stdout).strip().removeprefix("error: "))


def postmaster_pid(settings: Settings) -> int | None:
    """Return the room's postmaster pid: the first line of PostgreSQL's postmaster.pid."""
    try:
        return int((settings.classroom_dir / "pgdata" / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def start_hub(settings: Settings) -> Hub:
    """Start JupyterHub with the classroom's configuration and a fresh service token."""
    port, token = cluster.free_port(), secrets.token_hex(32)
    env = dict(settings.env, CLASSROOM_PORT=str(port), CLASSROOM_API_TOKEN=token,
               CLASSROOM_PASSWORD=secrets.token_urlsafe(12), CLASSROOM_STATE=str(settings.state / "hub"))
    command = [str(settings.python.parent / "jupyterhub"), "-f", str(settings.hub_config)]
    return Hub.start(command, env, settings.state, settings.state / "hub.log", port, token)


async def room(settings: Settings) -> dict:
    """Run the room; return the JSON-ready results."""
    load_before = [round(x, 2) for x in os.getloadavg()]
    prefix = "de11" + secrets.token_hex(2) + "_"
    names = [f"{prefix}{i:02d}" for i in range(1, settings.learners + 1)]
    t0 = time.monotonic()
    lab(settings, "server", "start")
    hub = sampler = None
    try:
        lab(settings, "setup", "--users", ",".join(names))
        setup_seconds = time.monotonic() - t0
        sampler = Sampler(postmaster_pid(settings), set(names), settings.sample_every)
        sampler.start()
        hub = start_hub(settings)
        await hub.wait_up()
        await hub.add_users(names)
        room_start = time.monotonic()
        # The progress page, read as an instructor's open browser tab would (every 10 s; 2 s in the quick run).
        watch = RoomWatch(hub.url, hub.token, room_start, every=2.0 if settings.learners <= 3 else 10.0)
        watch.start()
        learners = await asyncio.gather(*(run_learner(hub, name, settings, room_start) for name in names))
        room_seconds = time.monotonic() - room_start
        progress = watch.stop()
        for name in names:
            await hub.stop_server(name)
        sampler.sample()
    finally:
        if sampler:
            sampler.stop()
        if hub:
            hub.stop()
        remove_os_users(names)
        try:
            lab(settings, "teardown", "--users", ",".join(names))
        finally:
            lab(settings, "server", "stop")
    result = loadreport.summary(
        learners, [p.name for p in settings.notebooks], sampler, room_seconds=room_seconds,
        setup_seconds=setup_seconds, load_before=load_before,
        load_after=[round(x, 2) for x in os.getloadavg()], cpus=os.cpu_count())
    result["progress"] = progress  # what the progress page showed while the room ran
    return result


def prerequisites() -> str | None:
    """Return why the load test cannot run here, or None."""
    if os.geteuid() != 0:
        return "the hub runs each learner as an OS user, which needs root"
    if shutil.which("configurable-http-proxy") is None:
        return "configurable-http-proxy is missing: npm install -g configurable-http-proxy"
    if not (Path(sys.executable).parent / "jupyterhub").exists():
        return "JupyterHub is missing: pip install -r classroom/requirements.txt"
    if shutil.which("useradd") is None:
        return "useradd is missing"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--learners", type=int, default=3, help="room size N (default 3)")
    parser.add_argument("--quick", action="store_true", help="N=3, the CI run")
    parser.add_argument("--json", type=Path, help="where to write the results (default: .lab/ or LAB_DATA_DIR)")
    args = parser.parse_args(argv)
    n = 3 if args.quick else args.learners
    why = prerequisites()
    if why:
        print(f"error: {why}", file=sys.stderr)
        return 2
    state = Path(tempfile.mkdtemp(prefix="de11-room", dir="/tmp"))
    state.chmod(0o755)
    try:
        result = asyncio.run(room(Settings.for_room(n, state, dict(os.environ))))
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        # The hub's log and the room's PostgreSQL log (a cancelled statement's text is there) outlive the room.
        for kept, what in ((state / "hub.log", "hub"), (state / "room" / "pgdata" / "server.log", "postgres")):
            if kept.exists() and paths.data_root().exists():
                shutil.copy(kept, paths.data_root() / f"classroom-loadtest-{n}-{what}.log")
        shutil.rmtree(state, ignore_errors=True)
    print(loadreport.table(result))
    out = args.json or paths.data_root() / f"classroom-loadtest-{n}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"Results: {out}")
    return 0 if result["completed"] == n else 1


if __name__ == "__main__":
    sys.exit(main())

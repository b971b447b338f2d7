"""The classroom on a live JupyterHub: the quick load test, and the guide's steps.

Both need root (each learner's server runs as an OS user of their own) and JupyterHub with
configurable-http-proxy (``pip install -r classroom/requirements.txt`` and
``npm install -g configurable-http-proxy``). Without them they are skipped with the reason;
under CI=true a missing prerequisite fails instead.
"""

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from labkit import paths
from labkit.postgres.cluster import free_port

from support.helpers import REPO, run, text_of
from support.prerequisites import skip_or_fail

sys.path.insert(0, str(REPO / "classroom"))
import loadtest

# Only the tests that start a hub carry the `hub` marker: the guide check below reads Markdown only.

GUIDE = REPO / "docs" / "classroom.md"


@pytest.fixture
def hub_prerequisites():
    why = loadtest.prerequisites() or paths.others_cannot_run()  # learners run this venv's Python
    if why:
        skip_or_fail(why)


@pytest.mark.hub
@pytest.mark.root
@pytest.mark.slow
def test_quick_load_test_runs_the_series_for_three_learners(hub_prerequisites, tmp_path):
    """Three learners at once, each running every notebook in their own server, with no error output;
    meanwhile the progress page, read through the hub every 2 s, showed each learner's phase."""
    out = tmp_path / "quick.json"
    done = run([sys.executable, "classroom/loadtest.py", "--quick", "--json", str(out)], timeout=600,
               DATABASE_URL=None, LAB_STUDENT=None)
    assert done.returncode == 0, text_of(done)
    result = json.loads(out.read_text())
    assert result["learners"] == 3, text_of(done)
    assert result["completed"] == 3, text_of(done)
    expected = sorted(p.name for p in (REPO / "notebooks").glob("[0-9]*.ipynb"))
    for learner in result["per_learner"]:
        assert [nb["notebook"] for nb in learner["notebooks"]] == expected
        assert learner["spawn_seconds"] > 0
    assert result["peak_postgres_mib"] > 0
    assert result["peak_learners_mib"] > 0
    assert result["cpu_seconds_per_learner"] > 0
    hub_log = (paths.data_root() / "classroom-loadtest-3-hub.log").read_text()  # loadtest.py keeps it there
    assert "Kernel started" in hub_log
    assert "running over TCP" not in hub_log  # Unix sockets: no port another kernel can take first
    postgres_log = (paths.data_root() / "classroom-loadtest-3-postgres.log").read_text()
    assert "database system is ready to accept connections" in postgres_log
    leftover = subprocess.run(["getent", "passwd"], capture_output=True, text=True).stdout
    assert not any(r["name"] + ":" in leftover for r in result["per_learner"]), "OS users left behind"
    check_progress_followed_the_room(result)


def phases_at(learner: dict, t: float) -> set[int]:
    """Return the lab phases a learner's database may be at ``t`` seconds into the room.

    Notebook k (1-4) starts by resetting the database to phase k-1 and ends at phase k;
    notebooks 5-7 work in schemas of their own and leave phase 4 as it is. Notebook 8's project
    drops the lab's own alembic_version (through its search path it would stand in for the
    project's), so from there on the phase reads 0.
    """
    allowed = {0}  # before notebook 1
    for nb in learner["notebooks"]:
        k = int(nb["notebook"][:2])
        if t < nb["started"]:
            break
        during = t <= nb["ended"]
        if k <= 4:
            allowed = {k - 1, k} if during else {k}
        elif k < 8:
            allowed = {4}
        else:
            allowed = {4, 0} if k == 8 and during else {0}
    return allowed


def check_progress_followed_the_room(result: dict) -> None:
    """Every reading of the progress page, taken while the room ran, shows a phase the learner was in."""
    progress = result["progress"]
    polls = len({r["begun"] for r in progress["readings"]}) + len(progress["failures"])
    # A fetch may time out (30 s) while a loaded machine starts every server at once; most must not.
    assert len(progress["failures"]) <= polls // 10, progress["failures"]
    learners = {r["name"]: r for r in result["per_learner"]}
    seen: dict[str, set[int]] = {name: set() for name in learners}
    for reading in progress["readings"]:
        learner = learners[reading["learner"]]
        if reading["phase"] == "":  # read while a migration held alembic_version: said so, not guessed
            assert "alembic_version" in reading["busy"], reading
            continue
        moments = [reading["begun"], reading["ended"]] + [
            t for nb in learner["notebooks"] for t in (nb["started"], nb["ended"])
            if reading["begun"] <= t <= reading["ended"]]
        allowed = set().union(*(phases_at(learner, t) for t in moments))
        assert int(reading["phase"]) in allowed, (reading, learner["notebooks"])
        seen[reading["learner"]].add(int(reading["phase"]))
    last = {r["learner"]: r for r in progress["readings"]}  # the reading taken after the room finished
    end = max(learners[name]["notebooks"][-1]["ended"] for name in learners) + 1
    assert {name: int(r["phase"]) for name, r in last.items()} == {
        name: min(phases_at(learner, end)) for name, learner in learners.items()}
    assert all(len(phases) >= 2 for phases in seen.values()), seen  # the page followed each learner
    # Each learner's kernels (the hub's kernel spec) noted every self-check they ran: the load test runs
    # the placeholders as given, so every exercise reads tried and none solved.
    total = sum(1 for p in (REPO / "notebooks").glob("[0-9]*.ipynb")
                for c in json.loads(p.read_text())["cells"] if "self-check" in c["metadata"].get("tags", []))
    assert {name: (r["exercises_solved"], r["exercises_tried"]) for name, r in last.items()} == {
        name: ("0", str(total)) for name in learners}


def guide_steps() -> list[str]:
    """Return the bash blocks of docs/classroom.md that follow a ``<!-- step -->`` marker, in order.

    The last one stops the classroom server after class; the test runs it after logging in.
    """
    return re.findall(r"<!-- step -->\s*```bash\n(.*?)```", GUIDE.read_text(), flags=re.S)


def test_the_guide_has_its_steps():
    """The test below runs these blocks; an edit that loses the markers must not pass silently."""
    steps = guide_steps()
    assert len(steps) >= 4
    assert any("classroom hub" in s for s in steps)


@pytest.mark.hub
@pytest.mark.root
@pytest.mark.slow
def test_the_guides_steps_bring_up_a_hub_where_three_learners_log_in(hub_prerequisites):
    """Run the guide's commands as written, then log three learners in through the hub's login page.

    Two substitutions keep the test from colliding with a real room on the same machine: the
    learner names (OS users are made) and the hub's port. Everything else runs verbatim.
    """
    import requests

    run_id = secrets.token_hex(2)
    names = [f"de11g{run_id}_{who}" for who in ("alice", "bob", "carol")]
    port = str(free_port())
    folder = Path(tempfile.mkdtemp(prefix="de11g", dir="/tmp"))
    folder.chmod(0o755)
    *before, after_class = guide_steps()
    assert "server stop" in after_class
    script = "set -e\n" + "\n".join(before)
    script = re.sub(r"\b(alice|bob|carol)\b", lambda m: f"de11g{run_id}_{m.group(1)}", script)
    script = script.replace("/srv/classroom", str(folder))
    script = script.replace("CLASSROOM_PORT=8800", f"CLASSROOM_PORT={port}")
    hub_line = re.search(r"^python -m lab_helpers classroom hub.*$", script, flags=re.M).group(0)
    script = script.replace(hub_line, f"{hub_line} > {folder}/hub.log 2>&1 &\necho $! > {folder}/hub.pid")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    env.pop("DATABASE_URL", None)
    env.pop("LAB_STUDENT", None)
    try:
        done = subprocess.run(["bash", "-c", script], cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        password = re.search(r"CLASSROOM_PASSWORD='([^']+)'", script).group(1)
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: requests.get(f"{base}/hub/api/", timeout=5).ok, folder)
        for name in names:
            s = requests.Session()
            s.get(f"{base}/hub/login", timeout=30)
            page = s.post(f"{base}/hub/login?next=", timeout=300,
                          data={"username": name, "password": password, "_xsrf": s.cookies.get("_xsrf")})
            assert page.ok, (folder / "hub.log").read_text()[-3000:]
            lab_page = wait_for(lambda s=s, name=name: ok_page(s, f"{base}/user/{name}/lab"), folder)
            assert "JupyterLab" in lab_page
            listing = s.get(f"{base}/user/{name}/api/contents/notebooks", timeout=30).json()
            assert sorted(c["name"] for c in listing["content"]) == sorted(
                p.name for p in (REPO / "notebooks").glob("[0-9]*.ipynb"))
        wrong = requests.Session()
        wrong.get(f"{base}/hub/login", timeout=30)
        denied = wrong.post(f"{base}/hub/login", timeout=30,
                            data={"username": names[0], "password": "not-the-password",
                                  "_xsrf": wrong.cookies.get("_xsrf")})
        assert "/user/" not in denied.url
        admin_password = re.search(r"instructor's password: (\S+)", done.stdout).group(1)
        admin, landed = login(base, "instructor", admin_password)
        assert landed.ok, landed.url
        assert landed.url.endswith("/hub/admin"), landed.url
        assert "/hub/login" in login(base, "instructor", password)[1].url  # the workshop password opens no admin
        assert "/hub/login" in login(base, names[0], admin_password)[1].url  # nor the admin password a learner
        failed = admin.post(f"{base}/hub/api/users/instructor/server", timeout=60,
                            headers={"X-XSRFToken": admin.cookies.get("_xsrf")})
        assert failed.status_code == 500, failed.text  # the hub's own reason, not only the status:
        assert "No classroom database for 'instructor'" in failed.json()["message"], failed.text
    finally:
        pid_file = folder / "hub.pid"
        if pid_file.exists():
            pid = int(pid_file.read_text())
            subprocess.run(["kill", str(pid)])
            for _ in range(60):
                if subprocess.run(["kill", "-0", str(pid)], capture_output=True).returncode:
                    break
                time.sleep(0.5)
        loadtest.remove_os_users(names)
        stopped = subprocess.run(["bash", "-c", after_class], cwd=REPO, capture_output=True, text=True,
                                 env=dict(env, LAB_CLASSROOM_DIR=str(folder)))
        shutil.rmtree(folder, ignore_errors=True)
    assert stopped.returncode == 0, text_of(stopped)
    assert "Stopped the classroom server." in stopped.stdout, text_of(stopped)


def login(base: str, name: str, password: str):
    """Log in through the hub's login page; return the session and the last response (where it landed)."""
    import requests

    s = requests.Session()
    s.get(f"{base}/hub/login", timeout=30)
    return s, s.post(f"{base}/hub/login?next=", timeout=300,
                     data={"username": name, "password": password, "_xsrf": s.cookies.get("_xsrf")})


def ok_page(session, url):
    r = session.get(url, timeout=60)
    return r.text if r.ok and "/user/" in r.url else None


def wait_for(probe, folder: Path, timeout: float = 300):
    """Return probe()'s first truthy result, or fail with the hub's log."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            got = probe()
            if got:
                return got
        except Exception:  # the hub or the server is still starting
            pass
        time.sleep(1)
    log = (folder / "hub.log").read_text()[-3000:] if (folder / "hub.log").exists() else ""
    pytest.fail(f"timed out; hub log:\n{log}")

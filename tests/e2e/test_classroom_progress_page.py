"""The progress page in the real hub, in Chromium: the admin sees who is behind, a learner is refused.

A classroom server with three learners, alice and bob at the end of phase 4 and carol at the
end of phase 1, and JupyterHub started from ``classroom/jupyterhub_config.py`` as the guide
starts it, with an admin. Nobody's server is spawned: the page reads the databases, so no OS
user is made. The browser logs in through the hub's own login form.
"""

from __future__ import annotations

import csv
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote

import pytest

from support.helpers import REPO, lab, text_of
from support.kernels import first_exercise, learner_kernel, run_cells
from support.prerequisites import skip_or_fail
from support.servers import free_port

sys.path.insert(0, str(REPO / "classroom"))
import loadtest

pytestmark = [pytest.mark.browser, pytest.mark.hub, pytest.mark.root]

SERVICE = "/services/classroom-progress/"
ADMIN = "de19instructor"


class Hub:
    """A running hub: its URL, the two passwords, and the room's environment."""

    def __init__(self, url: str, workshop: str, admin: str, env: dict, log: Path):
        self.url, self.workshop, self.admin, self.env, self.log = url, workshop, admin, env, log


@pytest.fixture(scope="module")
def progress_hub():
    """Start a classroom server (alice, bob at phase 4; carol at phase 1) and a hub with an admin."""
    why = loadtest.prerequisites()
    if why:
        skip_or_fail(why)
    folder = Path(tempfile.mkdtemp(prefix="de19h", dir="/tmp"))
    folder.chmod(0o755)
    room = {"LAB_CLASSROOM_DIR": str(folder), "DATABASE_URL": None, "LAB_STUDENT": None}
    proc = None
    try:
        for args in (("server", "start"), ("setup", "--users", "alice,bob,carol")):
            done = lab("classroom", *args, **room)
            assert done.returncode == 0, text_of(done)
        for name, phase in (("alice", "4"), ("bob", "4"), ("carol", "1")):
            done = as_learner(room, name, "goto", phase)
            assert done.returncode == 0, text_of(done)
        port = free_port()
        workshop, admin = secrets.token_urlsafe(12), secrets.token_urlsafe(32)
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "LAB_STUDENT")}
        # CLASSROOM_ADMIN_PASSWORD and CLASSROOM_ADMINS serve a SharedPasswordAuthenticator config;
        # --Authenticator.admin_users makes the admin under any authenticator.
        env.update(LAB_CLASSROOM_DIR=str(folder), CLASSROOM_PASSWORD=workshop, CLASSROOM_PORT=str(port),
                   CLASSROOM_STATE=str(folder / "hub"), CLASSROOM_ADMIN_PASSWORD=admin, CLASSROOM_ADMINS=ADMIN,
                   CLASSROOM_PROGRESS_REFRESH="2")
        log = folder / "hub.log"
        with open(log, "w") as out:
            proc = subprocess.Popen([str(Path(sys.executable).parent / "jupyterhub"), "-f",
                                     str(REPO / "classroom" / "jupyterhub_config.py"),
                                     f"--Authenticator.admin_users={ADMIN}"],
                                    cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        hub = Hub(f"http://127.0.0.1:{port}", workshop, admin, room, log)
        wait_until_up(hub, proc)
        yield hub
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # the hub stops its service and proxy on SIGTERM
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        lab("classroom", "server", "stop", **room)
        shutil.rmtree(folder, ignore_errors=True)


def as_learner(room: dict, name: str, *args: str):
    """Run ``python -m lab_helpers ARGS`` with the DATABASE_URL the hub gives learner ``name``."""
    s = json.loads((Path(room["LAB_CLASSROOM_DIR"]) / "secrets.json").read_text())
    url = f"postgresql://{name}:{quote(s['learners'][name], safe='')}@127.0.0.1:{s['port']}/lab_{name}"
    return lab(*args, DATABASE_URL=url, LAB_STUDENT=name, LAB_CLASSROOM_DIR=None, timeout=300)


def wait_until_up(hub: Hub, proc, timeout: float = 180) -> None:
    """Wait until the hub answers and the proxy routes the service (it answers the hub's login redirect)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            pytest.fail(f"the hub exited with {proc.returncode}:\n{hub.log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(hub.url + SERVICE, timeout=5) as r:  # redirected to the login page
                if r.status == 200 and "/hub/login" in r.url:
                    return
        except OSError:
            pass
        time.sleep(1)
    pytest.fail(f"the hub did not come up:\n{hub.log.read_text()[-3000:]}")


def log_in(page, hub: Hub, name: str, passwords: list[str]) -> None:
    """Log in through the hub's form, going to the progress page next; try each password in turn."""
    for password in passwords:
        page.goto(f"{hub.url}/hub/login?next={quote(SERVICE)}")
        page.fill("#username_input", name)
        page.fill("#password_input", password)
        page.click("#login_submit")
        page.wait_for_load_state()
        if "/hub/login" not in page.url:
            return
    pytest.fail(f"{name} could not log in:\n{hub.log.read_text()[-2000:]}")


def test_an_admin_sees_the_learner_who_is_behind_first_live_and_as_csv(progress_hub, browser):
    """Carol (phase 1 of a room at 4) is listed first, marked behind; the page follows her when she moves."""
    hub = progress_hub
    browser.clear_cookies()
    page = browser.new_page()
    page.set_default_timeout(120_000)  # a hub on a loaded 2-core machine answers in seconds, not milliseconds
    try:
        # The admin's own password where the config has one (SharedPasswordAuthenticator), else the workshop's.
        log_in(page, hub, ADMIN, [hub.admin, hub.workshop])
        page.wait_for_selector("#room tbody tr")
        assert page.url.startswith(hub.url + SERVICE)
        rows = page.locator("#room tbody tr")
        assert rows.evaluate_all("rs => rs.map(r => r.dataset.learner)") == ["carol", "alice", "bob"]
        carol = page.locator('tr[data-learner="carol"]')
        assert "behind" in carol.get_attribute("class")
        assert "phase 1 (0001_create_users)" in carol.inner_text()
        assert "behind" in carol.inner_text()
        assert "phase 4" in page.locator('tr[data-learner="alice"]').inner_text()
        with page.expect_download() as download:
            page.click("text=Download CSV")
        table = list(csv.DictReader(open(download.value.path(), encoding="utf-8")))
        assert [(r["learner"], r["status"], r["phase"]) for r in table] == [
            ("carol", "behind", "1"), ("alice", "ok", "4"), ("bob", "ok", "4")]
        moved = as_learner(hub.env, "carol", "goto", "4")
        assert moved.returncode == 0, text_of(moved)
        # No reload from here: the page refreshes itself (every 2 s in this hub).
        page.wait_for_function("() => { const r = document.querySelector('tr[data-learner=\"carol\"]');"
                               " return r && r.innerText.includes('phase 4'); }", timeout=60_000)
        assert "behind" not in page.locator('tr[data-learner="carol"]').get_attribute("class")
    finally:
        page.close()


def learner_url(hub: Hub, name: str) -> str:
    s = json.loads((Path(hub.env["LAB_CLASSROOM_DIR"]) / "secrets.json").read_text())
    return f"postgresql://{name}:{quote(s['learners'][name], safe='')}@127.0.0.1:{s['port']}/lab_{name}"


def test_an_admin_sees_each_learners_exercises_turn_solved(progress_hub, browser, tmp_path):
    """Alice runs notebook 1's first exercise as given, and stays ✗; bob solves it in a kernel from the hub's
    kernel spec, and turns ✓ on the page's next refresh; carol never ran it; the room's count says 1 of 3."""
    hub = progress_hub
    given, check, solution = first_exercise()
    browser.clear_cookies()
    page = browser.new_page()
    page.set_default_timeout(120_000)
    mark = 'document.querySelector(\'#exercises tr[data-of="{}"] td[data-exercise="1.1"]\')'
    try:
        log_in(page, hub, ADMIN, [hub.admin, hub.workshop])
        page.wait_for_selector("#exercises tbody tr")
        assert page.locator('#exercises td[data-exercise="1.1"].not-tried').count() == 3
        # No reload from here: the page's own refresh brings each mark. Each kernel stays up until its
        # mark shows: a kernel writes its verdicts from a thread once the cell is done.
        with learner_kernel(learner_url(hub, "alice"), "alice", tmp_path / "alice") as kc:
            assert "✗ Not yet" in run_cells(kc, given, check)
            page.wait_for_function(f"() => {mark.format('alice')}.innerText === '✗'", timeout=60_000)
        with learner_kernel(learner_url(hub, "bob"), "bob", tmp_path / "bob") as kc:
            assert "✗ Not yet" in run_cells(kc, given, check)
            page.wait_for_function(f"() => {mark.format('bob')}.innerText === '✗'", timeout=60_000)
            assert "✓ Right" in run_cells(kc, solution, check)
            page.wait_for_function(f"() => {mark.format('bob')}.innerText === '✓'", timeout=60_000)
        cells = {name: page.locator(f'#exercises tr[data-of="{name}"] td[data-exercise="1.1"]')
                 for name in ("alice", "bob", "carol")}
        assert {name: (c.inner_text(), c.get_attribute("class")) for name, c in cells.items()} == {
            "alice": ("✗", "not-yet"), "bob": ("✓", "solved"), "carol": ("·", "not-tried")}
        done = page.locator('#done td[data-exercise="1.1"]')
        assert done.inner_text() == "1/3"
        assert done.get_attribute("title") == "1 of 3 have done notebook 1's exercise 1 (2 tried)"
    finally:
        page.close()


def test_a_learner_is_refused_the_page(progress_hub, browser):
    """Alice logs in with the workshop password; the hub answers 403 and shows no learner's row."""
    hub = progress_hub
    browser.clear_cookies()
    page = browser.new_page()
    page.set_default_timeout(120_000)  # a hub on a loaded 2-core machine answers in seconds, not milliseconds
    try:
        log_in(page, hub, "alice", [hub.workshop])
        response = page.goto(hub.url + SERVICE)
        assert response.status == 403
        assert "You do not have permission" in page.inner_text("body")
        assert page.locator("#room").count() == 0
        assert "carol" not in page.content()
    finally:
        page.close()

"""Fixtures for the real-browser tests: a JupyterLab server on 127.0.0.1 and headless Chromium.

The server runs on a throwaway copy of ``notebooks/`` (outputs cleared), with its own
settings, a random token and a fresh lab database chosen through ``LAB_STUDENT``, so
nothing under version control and no learner's database changes. The browser is Debian's
``chromium`` driven by Playwright; Playwright's own browser downloads are never used.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from labkit import paths

from lab_paths import REPO, SCREENSHOTS, notebook_sources
from support.helpers import drop_database, lab, text_of
from support.prerequisites import skip_or_fail
from support.servers import free_port

# Where a Chromium-family browser usually lives; LAB_E2E_CHROMIUM overrides the search.
BROWSER_CANDIDATES = [
    "/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome",
    "/Applications/Chromium.app/Contents/MacOS/Chromium",
    "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
    r"C:\Program Files\Google\Chrome\Application\chrome.exe",
    r"C:\Program Files (x86)\Microsoft\Edge\Application\msedge.exe",
]


def _find_browser() -> str | None:
    configured = os.environ.get("LAB_E2E_CHROMIUM")
    if configured:
        return configured if Path(configured).is_file() else None
    return next((c for c in BROWSER_CANDIDATES if Path(c).is_file()), None)


CHROMIUM = _find_browser()
# Without these flags Chromium keeps trying to reach the network (updates, sync, field trials).
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
# JupyterLab user settings for the run: no autosave, every cell kept in the DOM, no news prompt.
LAB_SETTINGS = {
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false", "checkForUpdates": False},
}
# Server config: expose window.jupyterapp (as Galata does) and reach no network.
SERVER_CONFIG = {"LabApp": {
    "expose_app_in_browser": True,
    "news_url": None,
    "check_for_updates_class": "jupyterlab.handlers.announcements.NeverCheckForUpdate",
    "extension_manager": "readonly",
}}
INSTALL_HINT = (
    "The browser tests need Debian's Chromium at {path}.\n"
    "Install it with: sudo apt-get install -y chromium   (CI does this in .ci/run)\n"
    "or point LAB_E2E_CHROMIUM at a Chromium binary. Playwright's own browser download is not used."
)


def _copy_notebooks(dest: Path) -> None:
    """Copy the notebooks with their outputs and execution counts cleared, so all output is fresh."""
    dest.mkdir(parents=True)
    for source in notebook_sources():
        nb = nbformat.read(source, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                     "language": "python"}
        nbformat.write(nb, dest / source.name)
    # Keep paths relative to notebooks/ (../migrations, ../alembic.ini) working from the copy.
    for name in paths.BESIDE_NOTEBOOKS:
        if (REPO / name).exists():
            (dest.parent / name).symlink_to(REPO / name)


def _write_settings(root: Path) -> tuple[Path, Path]:
    settings, config = root / "user-settings", root / "jupyter-config"
    for rel, values in LAB_SETTINGS.items():
        path = settings / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    config.mkdir()
    (config / "jupyter_server_config.json").write_text(json.dumps(SERVER_CONFIG))
    return settings, config


def _drop_database(name: str) -> None:
    """Drop the run's lab database and its workspace folder (best effort, after the server is gone)."""
    try:
        drop_database(name)
    except Exception as exc:  # cleanup must not hide the tests' own result
        print(f"e2e: could not drop the test database {name}: {exc}")
    shutil.rmtree(paths.workspace() / name, ignore_errors=True)


class LabServer:
    """A running ``jupyter lab``: its base URL, token, notebook folder and log."""

    def __init__(self, url: str, token: str, root: Path, log: Path, env: dict):
        self.url, self.token, self.root, self.log, self.env = url, token, root, log, env

    def api(self, method: str, path: str):
        """Call the server's REST API with the token; return the decoded JSON (or None)."""
        request = urllib.request.Request(f"{self.url}{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self) -> None:
        """Shut down every kernel session, so the next notebook starts from a fresh kernel."""
        for session in self.api("GET", "/api/sessions"):
            self.api("DELETE", f"/api/sessions/{session['id']}")

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture(scope="session")
def lab_server(tmp_path_factory):
    """Start ``jupyter lab`` on 127.0.0.1 with a random token, on a fresh lab database; stop it after."""
    root = tmp_path_factory.mktemp("e2e-lab")
    _copy_notebooks(root / "notebooks")
    settings, config = _write_settings(root)
    port, token = free_port(), secrets.token_hex(16)
    student = "e2e_" + secrets.token_hex(4)
    env = dict(os.environ, LAB_STUDENT=student, JUPYTER_CONFIG_DIR=str(config),
               JUPYTER_RUNTIME_DIR=str(root / "runtime"), IPYTHONDIR=str(root / "ipython"),
               PYTHONDONTWRITEBYTECODE="1")
    env.pop("JUPYTER_TOKEN", None)
    reset = lab("reset", timeout=120, LAB_STUDENT=student)  # the fresh database, before the server exists
    assert reset.returncode == 0, text_of(reset)
    log = root / "jupyter.log"
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
        "--port-retries=0", f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root / 'notebooks'}", f"--LabApp.user_settings_dir={settings}",
        f"--LabApp.workspaces_dir={root / 'workspaces'}",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")  # CI and containers run as root
    with open(log, "w") as out:
        proc = subprocess.Popen(command, cwd=root / "notebooks", env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    server = LabServer(f"http://127.0.0.1:{port}", token, root / "notebooks", log, env)
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"jupyter lab exited with code {proc.returncode}:\n{server.log_tail()}")
            try:
                server.api("GET", "/api/status")
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"jupyter lab did not answer within 90 s:\n{server.log_tail()}")
                time.sleep(0.5)
        yield server
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # the server shuts its kernels down on SIGTERM
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        _drop_database(f"lab_{student}")


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    """Return a headless Chromium context (a fresh profile).

    Without a browser the tests fail when CI=true, and elsewhere are skipped with the
    install hint in the summary (pytest runs with -rs), so a laptop's `pytest` can pass.
    """
    if CHROMIUM is None:
        hint = INSTALL_HINT.format(path=os.environ.get("LAB_E2E_CHROMIUM", "/usr/bin/chromium"))
        skip_or_fail("NO BROWSER, the JupyterLab tests did not run. " + hint.replace("\n", " "))
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright's Python package is missing: pip install -r requirements.txt",
                    pytrace=False)
    SCREENSHOTS.mkdir(exist_ok=True)
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 1400, "height": 1000})
        try:
            yield context
        finally:
            context.close()

"""JupyterHub for a room of learners on one machine, each fenced into their own database.

Run it as root from the repository root, after the shared server and the learners exist:

    python -m lab_helpers classroom server start
    python -m lab_helpers classroom setup --users alice,bob,carol
    CLASSROOM_PASSWORD=... python -m lab_helpers classroom hub   # checks, then jupyterhub -f this file

What it does (see docs/classroom.md):
- binds to 127.0.0.1:$CLASSROOM_PORT (default 8800) behind configurable-http-proxy (npm);
- logs learners in with one shared workshop password ($CLASSROOM_PASSWORD, SharedPasswordAuthenticator;
  $CLASSROOM_ADMIN_PASSWORD, 32+ characters, logs in the admins, $CLASSROOM_ADMINS or instructor):
  only the names set up with ``classroom setup`` may log in. This protects nothing from a
  learner who knows the password and another learner's name; see the warning in the guide;
- runs each learner's JupyterLab as an OS user of the same name (LocalProcessSpawner),
  creating that user on first spawn, and lays the notebooks into ~/database-evolution once;
- hands each server only its own DATABASE_URL and LAB_STUDENT (a pre_spawn_hook), read from
  the classroom's secrets file (mode 600); nothing secret goes into a tracked file;
- copies the lab's code into a world-readable staging folder first on PYTHONPATH, so learners
  can import it even when the checkout sits under a folder they cannot read (such as /root).

Optional: $CLASSROOM_API_TOKEN registers a service "classroom-admin" holding that token with
admin:users, admin:servers and access:servers (what classroom/loadtest.py uses);
$CLASSROOM_STATE moves the hub's own state (sqlite, cookie secret; default <classroom>/hub).
"""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from labkit import settings
from labkit.classroom import hub, server
from labkit.errors import LabError
from labkit.postgres import cluster

c = get_config()  # noqa: F821  (JupyterHub's config loader provides it)

try:  # every CLASSROOM_* and LAB_* setting, checked in one place: a bad one is two lines, not a traceback
    settings.check_all()
    password, admin_password = settings.classroom_password(), settings.classroom_admin_password()
    admins, port, token = settings.classroom_admins(), settings.classroom_port(), settings.classroom_api_token()
except LabError as exc:
    sys.exit(str(exc))
learners = sorted(server.read_secrets().get("learners", {}))
if not learners:
    sys.exit("No learners yet: run python -m lab_helpers classroom setup --users alice,bob first.")

state = Path(settings.classroom_state() or server.folder() / "hub")
state.mkdir(parents=True, exist_ok=True, mode=0o700)
stage = hub.stage_lab(REPO, server.folder() / "stage")

c.JupyterHub.bind_url = f"http://127.0.0.1:{port}"
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = cluster.free_port()
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{cluster.free_port()}"
c.ConfigurableHTTPProxy.pid_file = str(state / "proxy.pid")
c.JupyterHub.db_url = f"sqlite:///{state / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(state / "cookie_secret")

c.JupyterHub.authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = password  # learners only: it never opens an admin name
c.Authenticator.allowed_users = set(learners)
if admin_password:
    if admins & set(learners) or len(admin_password) < 32 or admin_password == password:
        sys.exit("CLASSROOM_ADMIN_PASSWORD needs 32 characters or more, unlike the workshop password, and\n"
                 "CLASSROOM_ADMINS (default: instructor) must name no learner.")
    c.SharedPasswordAuthenticator.admin_password = admin_password
    c.Authenticator.admin_users = admins
    c.JupyterHub.default_url = hub.landing  # admins land on the admin page, learners in their lab

c.JupyterHub.spawner_class = "localprocess"
c.Spawner.cmd = [str(Path(sys.executable).parent / "jupyterhub-singleuser")]
c.Spawner.default_url = "/lab/tree/notebooks/01_create_users.ipynb"
c.Spawner.notebook_dir = "~/database-evolution"
c.Spawner.start_timeout = 600  # a room of 30 starting at once on 2 cores is slow
c.Spawner.http_timeout = 600
# Kernels talk to their server over Unix sockets in the learner's runtime folder, not TCP ports: with
# 30 servers starting kernels at once, a random free port was taken before the kernel bound it
# ("Address already in use"), and two learners lost their kernel in the room of 30.
c.Spawner.args = ["--KernelManager.transport=ipc"]
c.Spawner.pre_spawn_hook = hub.pre_spawn_hook(REPO, stage)

if token:
    c.JupyterHub.services = [{"name": "classroom-admin", "api_token": token}]
    c.JupyterHub.load_roles = [{"name": "classroom-admin",
                                "scopes": ["admin:users", "admin:servers", "access:servers"],
                                "services": ["classroom-admin"]}]

# --------------------------------------------------------------------------- the room, live (issue 19)
# The progress page, /services/classroom-progress/ (classroom/progress_service.py): a service the
# hub starts and stops. The hub's admins may open it (their role holds access:services); a learner
# is refused by the hub with 403. The load test's service (CLASSROOM_API_TOKEN) may read it too.
c.JupyterHub.services.append({
    "name": "classroom-progress",
    "url": f"http://127.0.0.1:{cluster.free_port()}",
    "command": [sys.executable, str(REPO / "classroom" / "progress_service.py")],
    "environment": {"LAB_CLASSROOM_DIR": str(server.folder()),
                    "CLASSROOM_PROGRESS_REFRESH": str(settings.progress_refresh())},
    "oauth_no_confirm": True,
})
if token:
    c.JupyterHub.load_roles.append({"name": "classroom-progress-reader",
                                    "scopes": ["access:services!service=classroom-progress"],
                                    "services": ["classroom-admin"]})

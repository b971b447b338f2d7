"""The classroom on Kubernetes: the hub's ``pre_spawn_hook`` for KubeSpawner (``classroom/k8s/config.yaml``).

On one machine the hook also makes an OS user and lays out a home (``hub.pre_spawn_hook``). On
Kubernetes each learner gets a pod from the lab's image, so only the database part remains, and
it is the same code: ``hub.learner_database``, which reads the learner's password from the
classroom's secrets file (on the hub's volume, ``LAB_CLASSROOM_DIR``) and the managed server's
address from the admin URL (``DATABASE_URL``, from a Kubernetes Secret). The learner's pod
receives only its own URL.

KubeSpawner calls the hook with the spawner before it builds the pod; the hook reads
``spawner.user.name`` and updates ``spawner.environment``, the two attributes it needs.
"""

from __future__ import annotations

from ..errors import LabError
from . import hub


def pre_spawn_hook(spawner) -> None:
    """Give a learner's pod its own DATABASE_URL and LAB_STUDENT; refuse a name with no database."""
    try:
        spawner.environment.update(hub.learner_database(spawner.user.name))
    except LabError as exc:
        exc.jupyterhub_message = str(exc)  # the hub shows it on the learner's page and in its REST API
        raise

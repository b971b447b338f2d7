"""The classroom on Kubernetes (classroom/k8s/config.yaml), checked without a cluster.

No cluster runs here, so two things are checked that can be checked honestly:
- the Helm values are valid for the pinned chart (Zero to JupyterHub 4.4.0): merged onto the
  chart's own defaults, as Helm merges them, and validated against the chart's own JSON schema,
  both vendored beside the config from the chart's source at that tag;
- the per-learner database hook the config installs works against a real classroom PostgreSQL,
  called with a stand-in for KubeSpawner that carries only what the hook reads from it.
"""

import json
import os
import re
import types
from pathlib import Path
from urllib.parse import quote

import jsonschema
import pytest
import sqlalchemy as sa
import yaml
from sqlalchemy.exc import DBAPIError
from traitlets.config import Config

from labkit import paths
from labkit.classroom import kube
from labkit.errors import LabError

from support.classroom import classroom
from support.helpers import REPO

K8S = REPO / "classroom" / "k8s"


def load(name: str):
    return yaml.safe_load((K8S / name).read_text())


def merged(defaults: dict, values: dict) -> dict:
    """Return ``values`` merged onto ``defaults`` the way Helm merges a values file into a chart's."""
    out = dict(defaults)
    for key, value in values.items():
        both = isinstance(value, dict) and isinstance(defaults.get(key), dict)
        out[key] = merged(defaults[key], value) if both else value
    return out


def validate(values: dict) -> None:
    schema = json.loads((K8S / "values.schema.json").read_text())
    jsonschema.validate(merged(load("chart-values-4.4.0.yaml"), values), schema)


def test_the_config_is_valid_for_the_pinned_chart():
    """What `helm install --version 4.4.0 --values config.yaml` checks first: the values match the schema."""
    validate(load("config.yaml"))


@pytest.mark.parametrize(("change", "complaint"), [
    ({"cull": {"timout": 3600}}, "'timout' was unexpected"),
    ({"singleuser": {"cpu": {"guarantee": "a little"}}}, "is not of type"),
    ({"hub": {"db": {"type": "sqlite"}}}, "is not one of"),
])
def test_the_check_catches_a_mistake(change, complaint):
    """The validation above can fail: a misspelt key or a wrong type is refused by the same schema."""
    with pytest.raises(jsonschema.ValidationError, match=complaint):
        validate(merged(load("config.yaml"), change))


def test_the_hub_config_installs_the_hook_and_hands_the_page_the_admin_url(monkeypatch):
    """hub.extraConfig runs last in the chart's jupyterhub_config.py, after hub.services became a list."""
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg2://admin:secret@db.example.org/postgres")
    c = Config()
    c.JupyterHub.services = [{"name": "jupyterhub-idle-culler"}, {"name": "classroom-progress"}]
    exec(load("config.yaml")["hub"]["extraConfig"]["classroom"], {"c": c})
    assert c.KubeSpawner.pre_spawn_hook is kube.pre_spawn_hook
    page = c.JupyterHub.services[1]
    assert page["environment"]["DATABASE_URL"] == os.environ["DATABASE_URL"]
    assert "environment" not in c.JupyterHub.services[0]


@pytest.fixture(scope="module")
def room():
    """A real classroom server with learners alice and bob, as `classroom setup` makes them."""
    with classroom("de25k", ["alice", "bob"]) as env:
        yield env


def spawner_for(name: str):
    """A stand-in for KubeSpawner: only ``user.name`` and ``environment``, all the hook may use."""
    return types.SimpleNamespace(user=types.SimpleNamespace(name=name), environment={})


def admin_database_url(room) -> str:
    """The admin URL the hub gets from its Kubernetes Secret: the managed server's superuser."""
    state = json.loads((Path(room["LAB_CLASSROOM_DIR"]) / "secrets.json").read_text())
    return (f"postgresql+psycopg2://postgres:{quote(state['admin_password'], safe='')}"
            f"@127.0.0.1:{state['port']}/postgres")


def test_the_hook_fences_each_learner_into_their_own_database(room, monkeypatch):
    """Alice's pod gets a URL that reaches lab_alice as alice, and cannot open bob's database."""
    monkeypatch.setenv("LAB_CLASSROOM_DIR", room["LAB_CLASSROOM_DIR"])
    monkeypatch.setenv("DATABASE_URL", admin_database_url(room))
    spawner = spawner_for("alice")
    kube.pre_spawn_hook(spawner)
    assert set(spawner.environment) == {"DATABASE_URL", "LAB_STUDENT"}
    assert spawner.environment["LAB_STUDENT"] == "alice"
    url = sa.make_url(spawner.environment["DATABASE_URL"]).set(drivername="postgresql+psycopg2")
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT current_user, current_database()")).one() == ("alice", "lab_alice")
    with pytest.raises(DBAPIError, match="permission denied"):
        sa.create_engine(url.set(database="lab_bob"), poolclass=sa.NullPool).connect().close()


def test_the_hook_refuses_a_name_with_no_database_with_the_labs_message(room, monkeypatch):
    """A name the instructor never set up gets the lab's message on the hub's page, and no URL."""
    monkeypatch.setenv("LAB_CLASSROOM_DIR", room["LAB_CLASSROOM_DIR"])
    monkeypatch.setenv("DATABASE_URL", admin_database_url(room))
    spawner = spawner_for("mallory")
    with pytest.raises(LabError) as caught:
        kube.pre_spawn_hook(spawner)
    assert "classroom setup --users mallory" in caught.value.jupyterhub_message
    assert spawner.environment == {}


def test_a_learners_pod_links_what_the_notebooks_reach_beside_them():
    """The postStart hook lays ~/database-evolution as the local hub does: the same files beside notebooks/."""
    hook = " ".join(load("config.yaml")["singleuser"]["lifecycleHooks"]["postStart"]["exec"]["command"])
    linked = re.search(r"for f in ([^;]+); do", hook)
    assert linked, hook
    assert tuple(linked.group(1).split()) == paths.BESIDE_NOTEBOOKS

"""Notebook 5: what the lab hands to your own project: a database URL, and where project-template/ is."""

from __future__ import annotations

import re
from pathlib import Path

import sqlalchemy as sa

from .. import database
from ..errors import LabError
from ..paths import REPO

# The comment on each schema project_database_url makes: only such a schema is ever dropped.
PROJECT_MARK = "made by the Database Evolution lab for notebook 5; emptied on every run"


def project_database_url(schema: str = "my_project") -> str:
    """Empty schema ``schema`` of the lab database and return a URL that works in it, password included.

    Notebook 5 hands this URL to a project of its own through an environment variable: the
    URL's ``options=-csearch_path=...`` makes every table, ``alembic_version`` included,
    land in that schema, so the project never meets the lab's own ``users`` table.
    """
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,40}", schema):
        raise LabError(f"{schema!r} is not a plain schema name: use lowercase letters, digits and _.")
    eng = database.engine()
    with eng.begin() as conn:
        found = conn.execute(sa.text("SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace "
                                     "WHERE nspname = :s"), {"s": schema}).first()
        if found is not None and found[0] != PROJECT_MARK and not database.lab_owns_database():
            raise LabError(
                f"The database {eng.url.database!r} named in DATABASE_URL already has a schema {schema!r}\n"
                "that this lab did not make, so it will not drop it. Nothing was changed.",
                "Set LAB_STUDENT=<name> to work in a database lab_<name> of the lab's own.")
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
        conn.execute(sa.text(f"COMMENT ON SCHEMA {schema} IS '{PROJECT_MARK}'"))
    url = eng.url.update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


def project_template() -> Path:
    """Return the folder a learner copies to start a project: the repository's ``project-template/``."""
    return REPO / "project-template"

"""Notebook 5: what the lab hands to your own project: a database URL, and where project-template/ is."""

from __future__ import annotations

import os
import re
import subprocess
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


# Revision 0002 as the lab writes it, for a learner who goes on without Exercise 2: the whole file.
LAB_0002 = '''"""rename name to full_name (written by the lab: notebook 5 goes on from here)"""
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    op.alter_column("users", "name", new_column_name="full_name")


def downgrade():
    op.alter_column("users", "full_name", new_column_name="name")
'''


def go_on_at_0002(revision_file: Path) -> str:
    """Leave the learner's project at 0002 with users.full_name: their own revision if it did that, else the lab's.

    Returns one line saying which. A failed ``alembic upgrade`` is shown whole, not hidden.
    """
    engine = sa.create_engine(os.environ["MY_PROJECT_DATABASE_URL"])
    try:
        columns = [c["name"] for c in sa.inspect(engine).get_columns("users")]
    finally:
        engine.dispose()
    if "full_name" in columns:
        return "Your revision 0002 is applied: the notebook goes on from it."
    revision_file.write_text(LAB_0002)
    done = subprocess.run(["alembic", "upgrade", "head"], capture_output=True, text=True)
    if done.returncode != 0:
        raise LabError(f"alembic upgrade head failed with the lab's revision 0002:\n{done.stdout}{done.stderr}",
                       "Run the notebook again from section 2 (it starts the project over).")
    return "The lab wrote its own revision 0002 in place of yours and applied it: the notebook goes on from it."

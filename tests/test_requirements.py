"""The doctor's requirement check: extras, ``~=``, pre-releases, with ``packaging`` and without it.

The doctor runs where half the environment is missing, so the same table of cases is checked
through ``packaging`` (pip's own parser) and through the standard-library fallback a bare venv
uses; both must agree with PEP 440, and neither may raise on a form pip accepts.
"""

import os
import subprocess
import sys
import venv

import pytest

from labkit import doctor, requirements

from support.helpers import REPO

CASES = [  # (line, installed version, allowed?)
    ("psycopg[binary]>=3", "3.2.1", True),
    ("psycopg[binary]>=3", "2.9.9", False),
    ("psycopg[binary,pool] >= 3, < 4", "3.0", True),
    ("sqlalchemy~=2.1", "2.1.3", True),
    ("sqlalchemy~=2.1", "2.2.0", True),
    ("sqlalchemy~=2.1", "3.0", False),
    ("sqlalchemy~=2.1.0", "2.2.0", False),
    ("sqlalchemy~=2.1.0", "2.1.7", True),
    ("sqlalchemy>=2.1", "2.1.0rc1", False),  # a pre-release does not satisfy >=2.1
    ("sqlalchemy>=2.1", "2.1.0", True),
    ("sqlalchemy>=2.1rc1", "2.1.0rc2", True),  # ... unless a bound names a pre-release
    ("sqlalchemy>=2.1,<2.2", "2.2.0", False),
    ("sqlalchemy>=2.1,<2.2", "2.1.99", True),
    ("sqlalchemy==2.1.*", "2.1.4", True),
    ("sqlalchemy==2.1.*", "2.10.0", False),
    ("sqlalchemy!=2.1.1", "2.1.1", False),
    ("pandas>=3.1,<3.2  # a comment", "3.1.0.post1", True),
    ("numpy", "2.0.0", True),
]


def _check(line: str, version: str) -> bool:
    req = requirements.parse(line)
    return req.allows(version)


@pytest.mark.parametrize(("line", "version", "allowed"), CASES)
def test_with_packaging(line, version, allowed):
    assert _check(line, version) is allowed


@pytest.mark.parametrize(("line", "version", "allowed"), CASES)
def test_with_the_standard_library_fallback(monkeypatch, line, version, allowed):
    """Without ``packaging`` (a bare venv) the same answers: the fallback is used."""
    monkeypatch.setitem(sys.modules, "packaging", None)  # import packaging.* now raises ImportError
    for name in [m for m in sys.modules if m.startswith("packaging.")]:
        monkeypatch.setitem(sys.modules, name, None)
    assert _check(line, version) is allowed


def test_options_comments_and_markers_name_no_package():
    assert requirements.parse("-e .") is None
    assert requirements.parse("# just a comment") is None
    assert requirements.parse("pywin32>=300; sys_platform == 'win32' and sys_platform == 'linux'") is None


def test_an_unreadable_line_is_one_failed_row_not_a_traceback(tmp_path):
    bad = tmp_path / "requirements.txt"
    bad.write_text("sqlalchemy>>2\n")
    row = doctor.check_packages(bad)
    assert not row.ok
    assert row.detail.startswith("requirements.txt: cannot read 'sqlalchemy>>2'")


def test_the_fallback_reads_every_form_in_a_bare_venv(tmp_path):
    """In a venv with only the standard library: extras, ~= and a pre-release, through the doctor's row."""
    venv.EnvBuilder(with_pip=False).create(tmp_path / "bare")
    python = tmp_path / "bare" / ("Scripts" if os.name == "nt" else "bin") / "python"
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("psycopg[binary]>=3\nsqlalchemy~=2.1\nalembic>=1.20rc1,<2\n-e .\n")
    probe = ("import sys; from pathlib import Path; from labkit import doctor\n"
             "assert 'packaging' not in sys.modules\n"
             f"row = doctor.check_packages(Path({str(reqs)!r})); print(row.ok, row.detail)\n"
             "print(doctor.requirements.parse('x>=2.1').allows('2.1.0rc1'))")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    done = subprocess.run([str(python), "-c", probe], cwd=tmp_path, env=dict(env, PYTHONPATH=str(REPO)),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["False psycopg missing; sqlalchemy missing; alembic missing", "False"]

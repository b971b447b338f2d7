"""Every LAB_* and CLASSROOM_* setting is checked in one place: a bad value is refused by name, with an example.

A value that used to mean something else silently (``LAB_LOCK_TIMEOUT=10min`` became 5s,
``LAB_BIG_ROWS=lots`` a million, ``CLASSROOM_PORT=x`` a traceback) must now either mean what
it says or stop with two lines naming the setting.
"""

import subprocess
import sys

import pytest
import sqlalchemy as sa

from labkit import settings
from labkit.errors import LabError

from support.helpers import REPO, assert_short_and_secret_free, lab


@pytest.mark.parametrize(("given", "meant"), [("10min", "10min"), ("10 min", "10min"), ("5s", "5s"),
                                              ("250ms", "250ms"), ("1500", "1500ms"), ("1h", "1h")])
def test_a_lock_timeout_means_what_it_says(monkeypatch, given, meant):
    """PostgreSQL's own time form is kept as written (a bare number is milliseconds, as in PostgreSQL)."""
    monkeypatch.setenv("LAB_LOCK_TIMEOUT", given)
    assert settings.lock_timeout() == meant


def test_ten_minutes_is_ten_minutes_in_postgresql(student_db, monkeypatch):
    """The value the lab hands PostgreSQL is read back by the server as 10 minutes, not 5 seconds."""
    from labkit import database, migration

    monkeypatch.setenv("LAB_LOCK_TIMEOUT", "10min")
    with database.engine().connect() as conn, migration.migrating(conn, check_drift=False):
        shown = conn.scalar(sa.text("SHOW lock_timeout"))
    assert shown == "10min"


@pytest.mark.parametrize(("name", "value", "example"), [
    ("LAB_LOCK_TIMEOUT", "s5", "10s"), ("LAB_LOCK_TIMEOUT", "5sms", "10s"), ("LAB_LOCK_TIMEOUT", "0", "10s"),
    ("LAB_LOCK_TIMEOUT", "-5s", "10s"), ("LAB_BIG_ROWS", "lots", "200_000"), ("LAB_BIG_ROWS", "0", "200_000"),
    ("LAB_PER_NOTEBOOK", "maybe", "1"), ("CLASSROOM_PORT", "x", "8800"), ("CLASSROOM_PORT", "70000", "8800"),
    ("CLASSROOM_PROGRESS_REFRESH", "soon", "10"), ("CLASSROOM_ADMINS", "Bob Smith", "instructor,ta"),
])
def test_a_bad_value_is_refused_naming_the_setting_and_a_good_example(monkeypatch, name, value, example):
    """check_all() reads every setting: the refusal names the setting, says what it takes, shows an example."""
    monkeypatch.setenv(name, value)
    with pytest.raises(LabError) as caught:
        settings.check_all()
    assert caught.value.what.startswith(f"{name} is set to a value the lab cannot use")
    assert f"export {name}={example}" in caught.value.fix


def test_unset_settings_take_their_defaults(monkeypatch):
    for name in ("LAB_LOCK_TIMEOUT", "LAB_BIG_ROWS", "LAB_PER_NOTEBOOK", "CLASSROOM_PORT",
                 "CLASSROOM_PROGRESS_REFRESH", "CLASSROOM_ADMINS"):
        monkeypatch.delenv(name, raising=False)
    settings.check_all()
    assert (settings.lock_timeout(), settings.big_rows(), settings.per_notebook()) == ("5s", None, False)
    assert (settings.classroom_port(), settings.progress_refresh(), settings.classroom_admins()) == (
        8800, 10, {"instructor"})


def test_big_rows_takes_underscores(monkeypatch):
    monkeypatch.setenv("LAB_BIG_ROWS", "200_000")
    assert settings.big_rows() == "200000"


def test_a_bad_lock_timeout_stops_the_command_line_in_two_lines():
    """Through the lab's own command line: a LabError, exit 2, no traceback."""
    done = lab("goto", "1", LAB_LOCK_TIMEOUT="5sms")
    assert done.returncode == 2, done.stdout + done.stderr
    text = assert_short_and_secret_free(done)
    assert "LAB_LOCK_TIMEOUT is set to a value the lab cannot use" in text
    assert "export LAB_LOCK_TIMEOUT=10s" in text


def test_a_bad_port_stops_the_hub_config_without_a_traceback():
    """The hub's config file refuses CLASSROOM_PORT=x in two lines (it used to be int()'s traceback)."""
    config = REPO / "classroom" / "jupyterhub_config.py"  # as JupyterHub loads it: get_config() provided
    load = f"import runpy; runpy.run_path({str(config)!r}, init_globals={{'get_config': lambda: None}})"
    env = {"PATH": "/usr/bin:/bin", "CLASSROOM_PASSWORD": "long-enough-pw", "CLASSROOM_PORT": "x"}
    done = subprocess.run([sys.executable, "-c", load], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1
    text = assert_short_and_secret_free(done)
    assert "CLASSROOM_PORT is set to a value the lab cannot use" in text
    assert "CLASSROOM_PORT=8800" in text

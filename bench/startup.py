"""1. Time to ready: the embedded server cold, warm and reused, next to bare initdb + pg_ctl start."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from .common import embedded_env, fresh_dir, is_root, log, median, remove_dir, run_json, stop_embedded

# Run in a fresh interpreter with LAB_DATA_DIR set; imports are timed apart from the start.
EMBEDDED = r"""
import json, time
t0 = time.perf_counter()
from labkit import database
import sqlalchemy as sa
t1 = time.perf_counter()
database.embedded_url()
t2 = time.perf_counter()
eng = database.engine()           # resolve_url: also creates the 'lab' database when missing
with eng.connect() as c:
    c.execute(sa.text("SELECT 1"))
t3 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "server": t2 - t1, "lab_db": t3 - t1}))
"""


def _bin_dir() -> Path:
    from labkit.postgres.binaries import postgres_bin
    return postgres_bin()


def _as_pg_user(cmd: list[str], check: bool = True) -> None:
    """Run a PostgreSQL tool, as the ``pgserver`` OS user when root (PostgreSQL refuses root)."""
    kwargs = {"user": "pgserver"} if is_root() else {}
    subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=120, **kwargs)


def bare(i: int, bindir: Path) -> dict:
    """Time initdb + pg_ctl start -w (cold), then pg_ctl start again on the same data (warm)."""
    root = fresh_dir(f"bare{i}")
    pgdata, log_file = root / "pgdata", root / "log"
    pgdata.mkdir(mode=0o700)
    if is_root():
        from labkit.postgres.binaries import pg_user
        pw = pg_user()  # a new machine has no such user yet
        for p in (root, pgdata):
            os.chown(p, pw.pw_uid, pw.pw_gid)
    initdb = [str(bindir / "initdb"), "--auth=trust", "--auth-local=trust", "--encoding=utf8",
              "-U", "postgres", "-D", str(pgdata)]
    start = [str(bindir / "pg_ctl"), "-w", "-o", f'-h "" -k {root}', "-l", str(log_file),
             "-D", str(pgdata), "start"]
    stop = [str(bindir / "pg_ctl"), "-D", str(pgdata), "-m", "fast", "-w", "stop"]
    try:
        t0 = time.perf_counter()
        _as_pg_user(initdb)
        t1 = time.perf_counter()
        _as_pg_user(start)
        t2 = time.perf_counter()
        _as_pg_user(stop)
        t3 = time.perf_counter()
        _as_pg_user(start)
        t4 = time.perf_counter()
        _as_pg_user(stop)
    finally:
        _as_pg_user(stop, check=False)
        remove_dir(root)
    return {"initdb": t1 - t0, "start": t2 - t1, "cold": t2 - t0, "warm": t4 - t3}


def embedded(i: int) -> dict:
    """Time the embedded server cold (fresh folder), warm (data, server stopped) and reused."""
    root = fresh_dir(f"emb{i}")
    env = embedded_env(root)
    try:
        cold = run_json(EMBEDDED, env)
        reuse = run_json(EMBEDDED, env)
        stop_embedded(root)
        warm = run_json(EMBEDDED, env)
    finally:
        stop_embedded(root)
        remove_dir(root)
    return {"cold": cold, "warm": warm, "reuse": reuse}


def run(quick: bool) -> dict:
    reps = 3 if quick else 7
    bindir = _bin_dir()
    rows_bare, rows_emb = [], []
    for i in range(reps):  # interleaved, so a busy spell hits both alike
        log(f"startup rep {i + 1}/{reps}")
        rows_bare.append(bare(i, bindir))
        rows_emb.append(embedded(i))
    med = lambda rows, *keys: median([_dig(r, keys) for r in rows])
    summary = {
        "bare_initdb": med(rows_bare, "initdb"),
        "bare_start": med(rows_bare, "start"),
        "bare_cold": med(rows_bare, "cold"),
        "bare_warm": med(rows_bare, "warm"),
        "embedded_cold_server": med(rows_emb, "cold", "server"),
        "embedded_cold_lab_db": med(rows_emb, "cold", "lab_db"),
        "embedded_warm_server": med(rows_emb, "warm", "server"),
        "embedded_warm_lab_db": med(rows_emb, "warm", "lab_db"),
        "embedded_reuse_server": med(rows_emb, "reuse", "server"),
        "embedded_reuse_lab_db": med(rows_emb, "reuse", "lab_db"),
        "import_labkit_database": med(rows_emb, "cold", "import"),
    }
    summary["cold_ratio"] = summary["embedded_cold_server"] / summary["bare_cold"]
    summary["cold_ratio_lab_db"] = summary["embedded_cold_lab_db"] / summary["bare_cold"]
    return {"reps": reps, "bindir": str(bindir), "summary": summary,
            "bare": rows_bare, "embedded": rows_emb}


def _dig(d, keys):
    for k in keys:
        d = d[k]
    return d


def table(res: dict) -> str:
    s = res["summary"]
    lines = [f"### 1. Time to ready (median of {res['reps']}, seconds)", "",
             "| what | server ready | `lab` database ready (SELECT 1) |", "|---|---:|---:|",
             f"| bare `initdb` + `pg_ctl start -w` (floor) | {s['bare_cold']:.2f} "
             f"(initdb {s['bare_initdb']:.2f} + start {s['bare_start']:.2f}) | |",
             f"| bare `pg_ctl start -w`, data exists | {s['bare_warm']:.2f} | |",
             f"| embedded cold (fresh data folder) | {s['embedded_cold_server']:.2f} "
             f"| {s['embedded_cold_lab_db']:.2f} |",
             f"| embedded warm (data exists, server stopped) | {s['embedded_warm_server']:.2f} "
             f"| {s['embedded_warm_lab_db']:.2f} |",
             f"| embedded reuse (already running) | {s['embedded_reuse_server']:.3f} "
             f"| {s['embedded_reuse_lab_db']:.3f} |",
             "",
             f"Embedded cold / bare cold: **{s['cold_ratio']:.2f}x** (server), "
             f"{s['cold_ratio_lab_db']:.2f}x (until the `lab` database answers). "
             f"Importing `labkit.database` + SQLAlchemy first: {s['import_labkit_database']:.2f} s "
             "(not counted above)."]
    return "\n".join(lines)

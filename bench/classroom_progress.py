"""How fast ``classroom progress`` reads a room: the goal is under 1 s for 30 learners.

    python bench/classroom_progress.py                  # 30 learners, 7 readings
    python bench/classroom_progress.py --learners 10

Starts a classroom server of its own in /tmp/bench-progress (never the instructor's), makes
N learners with ``classroom setup``, brings learner i to phase i mod 5 with the lab's own
``goto`` over their own URL, has learner i note a verdict for their first i exercises (what
their kernels write, ``verdicts.record``), and keeps one idle connection open per learner (a kernel's).
Then it times ``progress.snapshot()`` (what the page and the command run) in this process,
and the whole command ``python -m lab_helpers classroom progress`` (interpreter start and
imports included). Prints a markdown table and whether the goal held; the server and its
folder are removed at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import PYTHON, REPO, fresh_dir, log, remove_dir

GOAL_SECONDS = 1.0


def lab(env: dict, *args: str) -> str:
    done = subprocess.run([PYTHON, "-m", "lab_helpers", "classroom", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    if done.returncode:
        raise RuntimeError(done.stdout + done.stderr)
    return done.stdout


def populate(names: list[str]) -> list:
    """Bring learner i to phase i mod 5 as that learner; return one open connection each."""
    import psycopg2

    from labkit import database, phases
    from labkit.classroom import learners, verdicts

    held, checks = [], verdicts.catalogue()
    for i, name in enumerate(names):
        url = learners.learner_url(name)
        phases.goto(i % 5, database.parse_database_url(url), clear_workspace=True)
        database.engine(database.parse_database_url(url)).dispose()
        for k, check in enumerate(checks[:i]):
            assert verdicts.record(check.label, verdicts.SOLVED if k % 2 else verdicts.NOT_YET, url)
        held.append(psycopg2.connect(url, application_name="lab: notebook"))
    return held


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--learners", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)
    folder = fresh_dir("progress")
    os.environ["LAB_CLASSROOM_DIR"] = str(folder)  # this script's own room, for in-process calls
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("LAB_STUDENT", None)
    env = dict(os.environ)
    names = [f"bench{i:02d}" for i in range(1, args.learners + 1)]
    load_before = os.getloadavg()[0]
    try:
        log(lab(env, "server", "start").strip())
        lab(env, "setup", "--users", ",".join(names))
        log(f"setup done; moving {len(names)} learners to their phases")
        held = populate(names)
        from labkit.classroom import progress, verdicts

        progress.snapshot()  # warm: imports, the first connections
        inner = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            seen = progress.snapshot()
            inner.append(time.perf_counter() - t)
        assert [s.phase for s in seen] == [i % 5 for i in range(len(names))], seen
        assert [len(s.exercises) for s in seen] == [min(i, len(verdicts.catalogue())) for i in range(len(names))]
        outer = []
        for _ in range(3):
            t = time.perf_counter()
            lines = lab(env, "progress").splitlines()
            outer.append(time.perf_counter() - t)
        assert len(lines) == 2 * (len(names) + 1) + 3, lines  # the room, a blank line, the exercise grid
        for conn in held:
            conn.close()
    finally:
        try:
            lab(env, "server", "stop")
        finally:
            remove_dir(folder)
    load_after = os.getloadavg()[0]
    median = statistics.median(inner)
    print(f"| learners | snapshot median s | min s | max s | command median s (with Python start) "
          f"| load average before → after |\n| ---: | ---: | ---: | ---: | ---: | --- |\n"
          f"| {len(names)} | {median:.3f} | {min(inner):.3f} | {max(inner):.3f} | "
          f"{statistics.median(outer):.2f} | {load_before:.2f} → {load_after:.2f} |")
    verdict = "met" if median < GOAL_SECONDS else "NOT met"
    print(f"\nGoal: the room read in under {GOAL_SECONDS:.0f} s for {len(names)} learners: {verdict} "
          f"(median {median:.3f} s of {args.repeat}; {os.cpu_count()} CPUs).")
    return 0 if median < GOAL_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())

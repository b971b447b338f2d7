"""The load test's results: the JSON-ready summary (read by classroom/plot.py) and the printed table."""

from __future__ import annotations

import statistics

from sampler import Sampler


def ok(learner: dict) -> bool:
    """Return whether a learner ran every notebook with no failure, no error and no stderr output."""
    return learner["failure"] is None and all(not nb["errors"] and not nb["stderr"]
                                              for nb in learner["notebooks"])


def percentile(values: list[float], p: float) -> float:
    """Return the p-th percentile by linear interpolation (numpy's default)."""
    s = sorted(values)
    k = (len(s) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def summary(learners: list[dict], notebooks: list[str], sampler: Sampler, *, room_seconds: float,
            setup_seconds: float, load_before: list[float], load_after: list[float], cpus: int | None) -> dict:
    """Return the room's results, in the JSON form docs/classroom.md and classroom/plot.py read."""
    n = len(learners)
    totals = [r["total_seconds"] for r in learners if ok(r)]
    cpu_pg, cpu_learners = sampler.cpu_seconds("postgres"), sampler.cpu_seconds("learners")
    return {
        "learners": n,
        "notebooks": notebooks,
        "completed": sum(ok(r) for r in learners),
        "median_seconds": round(statistics.median(totals), 1) if totals else None,
        "p95_seconds": round(percentile(totals, 95), 1) if totals else None,
        "room_seconds": round(room_seconds, 1),
        "setup_seconds": round(setup_seconds, 1),
        "peak_postgres_mib": round(sampler.peak_pg / 2**20),
        "peak_learners_mib": round(sampler.peak_learners / 2**20),
        "peak_postgres_processes": sampler.peak_pg_processes,  # backends + about 6 of its own
        "cpu_seconds_postgres": round(cpu_pg, 1),
        "cpu_seconds_learners": round(cpu_learners, 1),
        "cpu_seconds_per_learner": round((cpu_pg + cpu_learners) / n, 1),
        "load_average_before": load_before,
        "load_average_after": load_after,
        "cpus": cpus,
        "per_learner": learners,
    }


def table(result: dict) -> str:
    """Return one line per learner (spawn, each notebook, total, problems) and the room's totals."""
    names = [p.removesuffix(".ipynb")[:14] for p in result["notebooks"]]
    head = f"{'learner':<14}{'spawn s':>8}" + "".join(f"{n[:2]:>7}" for n in names) + f"{'total s':>9}  problems"
    lines = [head]
    for r in result["per_learner"]:
        times = "".join(f"{nb['seconds']:>7.1f}" for nb in r["notebooks"])
        times += " " * 7 * (len(names) - len(r["notebooks"]))
        problems = r["failure"] or "; ".join(e for nb in r["notebooks"] for e in nb["errors"] + nb["stderr"])
        spawn = f"{r['spawn_seconds']:>8.1f}" if r["spawn_seconds"] is not None else f"{'-':>8}"
        lines.append(f"{r['name']:<14}{spawn}{times}{r['total_seconds']:>9.1f}  {problems[:120] or 'none'}")
    lines.append(
        f"\n{result['completed']}/{result['learners']} learners completed all {len(names)} notebooks "
        f"with no error output. Per learner: median {result['median_seconds']} s, "
        f"p95 {result['p95_seconds']} s.\n"
        f"Peak memory (PSS): PostgreSQL {result['peak_postgres_mib']} MiB, learners' servers and kernels "
        f"{result['peak_learners_mib']} MiB; PostgreSQL processes {result['peak_postgres_processes']}. "
        f"CPU seconds: PostgreSQL {result['cpu_seconds_postgres']}, "
        f"learners {result['cpu_seconds_learners']} ({result['cpu_seconds_per_learner']} per learner).\n"
        f"Load average before {result['load_average_before']}, after {result['load_average_after']} "
        f"on {result['cpus']} CPUs.")
    return "\n".join(lines)

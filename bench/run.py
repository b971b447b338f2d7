"""Benchmark the lab: time to ready, series time, migration cost by table size, vectors.

    python bench/run.py --quick      # CI-sized: a few minutes on 2 cores
    python bench/run.py              # the full set published in docs/performance.md

Prints markdown tables on stdout (progress on stderr) and writes the raw numbers to
bench/results/<full|quick>-<timestamp>.json (git-ignored). The full run also redraws
docs/migration-cost.png; a quick run draws bench/results/migration-cost-quick.png.

The migration and vector sections use a database of their own (LAB_STUDENT=bench_<pid>)
on the lab's server (LAB_DATA_DIR or DATABASE_URL as usual) and drop it at the end; the
time-to-ready and notebook sections use fresh folders /tmp/bench-* and stop their servers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common, migrations, series, startup, vectors

SECTIONS = ["startup", "series", "migrations", "vectors"]


def environment() -> dict:
    import alembic
    import sqlalchemy as sa

    from labkit import database
    with database.engine().connect() as conn:
        pg = conn.scalar(sa.text("SHOW server_version"))
        vec = conn.scalar(sa.text("SELECT default_version FROM pg_available_extensions WHERE name='vector'"))
    return {"python": platform.python_version(), "cpus": os.cpu_count(), "postgresql": pg,
            "pgvector": vec, "sqlalchemy": sa.__version__, "alembic": alembic.__version__,
            "machine": platform.platform(), "date": time.strftime("%Y-%m-%d %H:%M %Z")}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="CI-sized run (smaller tables, fewer repeats)")
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated sections to run (default: all of {','.join(SECTIONS)})")
    parser.add_argument("--plot", type=Path, help="where to save the migration-cost PNG")
    parser.add_argument("--notebooks", default="",
                        help="the series section on these notebooks only, by number (e.g. 08,09); default: all")
    args = parser.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(only) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")

    results_dir = common.REPO / "bench" / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    plot = args.plot or (results_dir / "migration-cost-quick.png" if args.quick
                         else common.REPO / "docs" / "migration-cost.png")
    t0 = time.perf_counter()
    res: dict = {"mode": "quick" if args.quick else "full", "load_before": common.load_average()}
    tables = []
    if "startup" in only:
        res["startup"] = startup.run(args.quick)
        tables.append(startup.table(res["startup"]))
    if "series" in only:
        res["series"] = series.run(args.quick, [n.strip() for n in args.notebooks.split(",") if n.strip()])
        tables.append(series.table(res["series"]))
    if "migrations" in only or "vectors" in only:
        with common.BenchDatabase() as db:
            res["environment"] = environment()
            if "migrations" in only:
                res["migrations"] = migrations.run(db, args.quick)
                tables.append(migrations.table(res["migrations"]))
                migrations.plot(res["migrations"], plot)
                res["plot"] = str(plot)
            if "vectors" in only:
                res["vectors"] = vectors.run(db, args.quick)
                tables.append(vectors.table(res["vectors"]))
    res["wall_seconds"] = time.perf_counter() - t0
    res["load_after"] = common.load_average()

    out = results_dir / f"{res['mode']}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(res, indent=1, default=str))
    env = res.get("environment", {})
    print(f"## Bench ({res['mode']} run, {res['wall_seconds']:.0f} s wall)\n")
    if env:
        print(f"PostgreSQL {env['postgresql']}, pgvector {env['pgvector']}, SQLAlchemy {env['sqlalchemy']}, "
              f"Alembic {env['alembic']}, Python {env['python']}, {env['cpus']} CPUs; "
              f"load average before {res['load_before']}, after {res['load_after']}.\n")
    print("\n\n".join(tables))
    print(f"\nRaw numbers: {out.relative_to(common.REPO)}" +
          (f"; plot: {plot}" if "plot" in res else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())

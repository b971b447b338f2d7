"""Draw docs/classroom-load.png from load-test JSON files, and print their table in Markdown.

    python classroom/plot.py n1.json n10.json n30.json
"""

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

OUT = Path(__file__).resolve().parent.parent / "docs" / "classroom-load.png"


def main(paths: list[str]) -> int:
    runs = sorted((json.loads(Path(p).read_text()) for p in paths), key=lambda r: r["learners"])
    ns = [r["learners"] for r in runs]
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    for r in runs:
        times = [x["total_seconds"] for x in r["per_learner"]]
        ax.scatter([r["learners"]] * len(times), times, s=12, alpha=0.35, color="tab:blue")
    ax.plot(ns, [r["median_seconds"] for r in runs], "o-", color="tab:blue", label="median")
    ax.plot(ns, [r["p95_seconds"] for r in runs], "s--", color="tab:red", label="p95")
    alone = runs[0]["median_seconds"]
    ax.plot(ns, [alone * n / runs[0]["learners"] / 2 for n in ns], ":", color="gray",
            label="N/2 × one learner alone (2 cores)")
    ax.set_xlabel("learners at once (N)")
    ax.set_ylabel("seconds per learner: spawn + every notebook")
    ax.set_title("One hub, one PostgreSQL, 2 cores")
    ax.set_xticks(ns)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(OUT)
    print(f"wrote {OUT}\n")
    alone = runs[0]["median_seconds"]
    print("| N | completed | median s | p95 s | p95 / alone | peak PostgreSQL MiB | peak learners MiB "
          "| CPU s per learner | load average before → after |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for r in runs:
        ratio = f"{r['p95_seconds'] / alone:.1f}×" if r["p95_seconds"] else "-"
        print(f"| {r['learners']} | {r['completed']}/{r['learners']} | {r['median_seconds']} | "
              f"{r['p95_seconds']} | {ratio} | {r['peak_postgres_mib']} | {r['peak_learners_mib']} | "
              f"{r['cpu_seconds_per_learner']} | {r['load_average_before'][0]} → {r['load_average_after'][0]} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

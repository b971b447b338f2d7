"""3. Migration cost against table size: each reference revision's upgrade at 10k..1M rows."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command

from labkit import phases

from .common import log, median, timer

STEPS = ["0002 add email, bio (nullable)", "0003 rename name -> full_name",
         "0004 JSONB default + vector + HNSW (empty)", "alt: add full_name + UPDATE + drop name"]
FILL_NAMES = "INSERT INTO users (name) SELECT 'User ' || g FROM generate_series(1, :n) g"
FILL_PHASE2 = ("UPDATE users SET email = 'user' || id || '@example.org', "
               "bio = repeat('Likes databases and long walks. ', 1 + id % 4)")
# The alternative to the rename that autogenerate would lead to, done so it keeps the data.
ALT_RENAME = ["ALTER TABLE users ADD COLUMN full_name varchar(100)",
              "UPDATE users SET full_name = name",
              "ALTER TABLE users ALTER COLUMN full_name SET NOT NULL",
              "ALTER TABLE users DROP COLUMN name"]
# Revision 0004 statement by statement (each timed alone, rolled back), to see what grows.
PARTS_0004 = {
    "ADD settings jsonb NOT NULL DEFAULT '{}'":
        ["ALTER TABLE users ADD COLUMN settings jsonb NOT NULL DEFAULT '{}'::jsonb"],
    "ADD settings jsonb DEFAULT '{}' (nullable)":
        ["ALTER TABLE users ADD COLUMN settings jsonb DEFAULT '{}'::jsonb"],
    "ADD embedding vector(384) (nullable)": ["ALTER TABLE users ADD COLUMN embedding vector(384)"],
    "CREATE INDEX hnsw on the all-NULL column": [
        "ALTER TABLE users ADD COLUMN embedding vector(384)",
        "CREATE INDEX ix_users_embedding ON users USING hnsw (embedding vector_cosine_ops) "
        "WITH (m = 16, ef_construction = 64)"],
    "seq scan: SELECT count(*)": ["SELECT count(*) FROM users"],
}
FINGERPRINT = "SELECT count(*), count({col}), coalesce(sum(hashtext({col})::bigint), 0) FROM users"


def _upgrade(eng: sa.Engine, rev: str) -> float:
    with timer() as t:
        with eng.begin() as conn:
            command.upgrade(phases.config(connection=conn), rev)
    return t["s"]


def _vacuum(eng: sa.Engine) -> None:
    with eng.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM (ANALYZE) users"))


def _fingerprint(eng, col):
    with eng.connect() as conn:
        return tuple(conn.execute(sa.text(FINGERPRINT.format(col=col))).one())


def _fill_phase1(eng: sa.Engine, n: int) -> None:
    """Start from an empty database at revision 0001 with n named users."""
    phases.goto(0, eng.url)
    _upgrade(eng, phases.REVISIONS[1])
    with eng.begin() as conn:
        conn.execute(sa.text(FILL_NAMES), {"n": n})


def per_step(eng: sa.Engine, n: int) -> dict:
    """Fill n rows at phase 1 (names) and 2 (email, bio); time each upgrade and the alternative."""
    _fill_phase1(eng, n)
    t2 = _upgrade(eng, phases.REVISIONS[2])
    with eng.begin() as conn:
        conn.execute(sa.text(FILL_PHASE2))
    _vacuum(eng)
    before = _fingerprint(eng, "name")
    with timer() as alt:  # timed, then rolled back so the real history goes on from phase 2
        with eng.connect() as conn:
            tx = conn.begin()
            for stmt in ALT_RENAME:
                conn.execute(sa.text(stmt))
            tx.rollback()
    _vacuum(eng)  # the rolled-back UPDATE left a dead copy of every row; clear it
    t3 = _upgrade(eng, phases.REVISIONS[3])
    with eng.begin() as conn:
        conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS vector"))
    parts = {}
    for label, stmts in PARTS_0004.items():
        with eng.connect() as conn:
            tx = conn.begin()
            for stmt in stmts[:-1]:
                conn.execute(sa.text(stmt))
            with timer() as t:
                conn.execute(sa.text(stmts[-1]))
            tx.rollback()
        parts[label] = t["s"]
    t4 = _upgrade(eng, phases.REVISIONS[4])
    with eng.connect() as conn:
        mb = conn.scalar(sa.text("SELECT pg_table_size('users')")) / 1e6
    after = _fingerprint(eng, "full_name")
    return {STEPS[0]: t2, STEPS[1]: t3, STEPS[2]: t4, STEPS[3]: alt["s"], "parts_0004": parts, "table_mb": mb,
            "rows_kept": before == after and after[0] == n and after[1] == n}


def phase1_to_head(eng: sa.Engine, n: int) -> dict:
    """Fill n rows at phase 1, then time one ``upgrade head`` (0002..0004); check every row kept."""
    _fill_phase1(eng, n)
    _vacuum(eng)
    before = _fingerprint(eng, "name")
    t = _upgrade(eng, "head")
    after = _fingerprint(eng, "full_name")
    with eng.connect() as conn:  # the one statement that reads the table: rebuild it alone, roll back
        tx = conn.begin()
        conn.execute(sa.text("DROP INDEX ix_users_embedding"))
        with timer() as build:
            conn.execute(sa.text(PARTS_0004["CREATE INDEX hnsw on the all-NULL column"][-1]))
        tx.rollback()
    return {"seconds": t, "hnsw_s": build["s"], "rows_kept": before == after and after[0] == n}


def run(db, quick: bool) -> dict:
    sizes = [10_000, 100_000] if quick else [10_000, 100_000, 1_000_000]
    reps = 2 if quick else 3
    eng = db.engine
    steps, head = {}, {}
    for n in sizes:
        runs = []
        for r in range(reps):
            log(f"migrations: {n} rows, rep {r + 1}/{reps}")
            runs.append(per_step(eng, n))
        steps[n] = {k: median([x[k] for x in runs]) for k in STEPS}
        steps[n]["rows_kept"] = all(x["rows_kept"] for x in runs)
        steps[n]["table_mb"] = median([x["table_mb"] for x in runs])
        steps[n]["parts_0004"] = {k: median([x["parts_0004"][k] for x in runs]) for k in PARTS_0004}
        hr = [phase1_to_head(eng, n) for _ in range(reps + 2)]
        head[n] = {"seconds": median([x["seconds"] for x in hr]),
                   "hnsw_s": median([x["hnsw_s"] for x in hr]),
                   "all": [x["seconds"] for x in hr],
                   "rows_kept": all(x["rows_kept"] for x in hr)}
    phases.goto(0, eng.url)
    big, small = max(sizes), min(sizes)
    without = {n: max(head[n]["seconds"] - head[n]["hnsw_s"], 1e-9) for n in sizes}
    return {"sizes": sizes, "reps": reps, "steps": steps, "phase1_to_head": head,
            "head_ratio": head[big]["seconds"] / head[small]["seconds"],
            "head_ratio_without_hnsw": without[big] / without[small]}


def plot(res: dict, path) -> None:
    """Draw seconds against rows for each step, log-log, into ``path`` (PNG)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = res["sizes"]
    fig, ax = plt.subplots(figsize=(7.5, 4.6), dpi=110)
    styles = ["o-", "s-", "^-", "x--"]
    for step, style in zip(STEPS, styles, strict=True):
        ax.plot(sizes, [res["steps"][n][step] * 1000 for n in sizes], style, label=step)
    hnsw = "CREATE INDEX hnsw on the all-NULL column"
    ax.plot(sizes, [max(res["steps"][n]["parts_0004"][hnsw], 1e-4) * 1000 for n in sizes], "v:",
            color="tab:green", alpha=0.6, label="  of which: HNSW build over empty column (a scan)")
    ax.plot(sizes, [res["phase1_to_head"][n]["seconds"] * 1000 for n in sizes], "d:",
            color="grey", label="phase 1 -> head, one upgrade")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("rows in users")
    ax.set_ylabel("milliseconds (median, incl. Alembic overhead)")
    ax.set_title("Migration cost against table size (PostgreSQL 18, pgvector 0.8)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _ms(seconds: float) -> str:
    ms = seconds * 1000
    return f"{ms:.1f}" if ms < 10 else f"{ms:.0f}"


def table(res: dict) -> str:
    sizes = res["sizes"]
    head = "| step | " + " | ".join(f"{n:,} rows" for n in sizes) + " |"
    lines = [f"### 3. Migration cost against table size (median of {res['reps']}, ms)", "",
             head, "|---|" + "---:|" * len(sizes)]
    for step in STEPS:
        lines.append(f"| {step} | " + " | ".join(_ms(res['steps'][n][step]) for n in sizes) + " |")
    lines.append("| **phase 1 -> head, one `upgrade head`** | " + " | ".join(
        f"**{_ms(res['phase1_to_head'][n]['seconds'])}**" for n in sizes) + " |")
    lines.append("| of which the HNSW build over the empty column (rebuilt alone) | " + " | ".join(
        _ms(res['phase1_to_head'][n]['hnsw_s']) for n in sizes) + " |")
    lines.append("| every row kept (count and checksum of names) | " + " | ".join(
        "yes" if res["steps"][n]["rows_kept"] and res["phase1_to_head"][n]["rows_kept"] else "**NO**"
        for n in sizes) + " |")
    lines.append("| table size after phase 2 fill (MB) | " + " | ".join(
        f"{res['steps'][n]['table_mb']:.0f}" for n in sizes) + " |")
    lines += ["", "Revision 0004 statement by statement (each alone, rolled back, ms):", "",
              "| statement | " + " | ".join(f"{n:,}" for n in sizes) + " |", "|---|" + "---:|" * len(sizes)]
    for label in PARTS_0004:
        lines.append(f"| {label} | " + " | ".join(
            _ms(res['steps'][n]['parts_0004'][label]) for n in sizes) + " |")
    lines += ["", f"Phase 1 -> head at {max(sizes):,} rows / at {min(sizes):,} rows: "
              f"**{res['head_ratio']:.2f}x** "
              f"({res['head_ratio_without_hnsw']:.2f}x without the HNSW build; phase 1 -> head: "
              f"median of {res['reps'] + 2}, rows filled at phase 1 only)."]
    return "\n".join(lines)

"""4. Vectors: bytes per row against the 4*d + 8 floor, and exact against HNSW search."""

from __future__ import annotations

import io
import struct
import time

import numpy as np

from .common import log, median

SEED = 6


def dataset(kind: str, n: int, d: int, rng) -> np.ndarray:
    """Return n unit vectors: 'clustered' (topics, like text embeddings) or 'isotropic' (hardest)."""
    if kind == "clustered":
        centers = rng.normal(size=(max(16, n // 500), d))
        x = centers[rng.integers(len(centers), size=n)] + rng.normal(scale=0.8, size=(n, d))
    else:
        x = rng.normal(size=(n, d))
    x = x.astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def copy_binary(cur, table: str, vecs: np.ndarray, half: bool = False) -> None:
    """Load (id, vector) rows with COPY ... FORMAT binary, built by numpy (pgvector's wire format)."""
    n, d = vecs.shape
    ftype = ">f2" if half else ">f4"
    width = 2 if half else 4
    rec = np.dtype([("nf", ">i2"), ("l1", ">i4"), ("id", ">i4"), ("l2", ">i4"),
                    ("dim", ">i2"), ("unused", ">i2"), ("v", ftype, (d,))])
    a = np.zeros(n, dtype=rec)
    a["nf"], a["l1"], a["id"], a["l2"] = 2, 4, np.arange(1, n + 1), 4 + width * d
    a["dim"], a["v"] = d, vecs
    buf = io.BytesIO()
    buf.write(b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0))
    buf.write(a.tobytes())
    buf.write(struct.pack(">h", -1))
    buf.seek(0)
    cur.copy_expert(f"COPY {table} (id, embedding) FROM STDIN WITH (FORMAT binary)", buf)


def storage(conn, d: int, n: int, rng) -> list[dict]:
    """Bytes per row of vector(d) and halfvec(d): one value, and the whole heap divided by rows."""
    out = []
    vecs = dataset("isotropic", n, d, rng)
    with conn.cursor() as cur:
        for typ, floor in (("vector", 4 * d + 8), ("halfvec", 2 * d + 8)):
            table = f"bench_store_{typ}"
            cur.execute(f"DROP TABLE IF EXISTS {table}")
            cur.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, embedding {typ}({d}))")
            copy_binary(cur, table, vecs, half=typ == "halfvec")
            cur.execute(f"VACUUM ANALYZE {table}")
            cur.execute(f"SELECT avg(pg_column_size(embedding)), pg_relation_size('{table}'), "
                        f"pg_table_size('{table}') FROM {table}")
            col, heap, total = cur.fetchone()
            out.append({"type": f"{typ}({d})", "floor": floor, "value": float(col),
                        "heap_per_row": heap / n, "table_per_row": total / n, "rows": n})
            cur.execute(f"DROP TABLE {table}")
    return out


def _topk(cur, table: str, q: str, k: int = 10) -> tuple[list[int], float]:
    t0 = time.perf_counter()
    cur.execute(f"SELECT id FROM {table} ORDER BY embedding <=> %s::vector LIMIT {k}", (q,))
    ids = [r[0] for r in cur.fetchall()]
    return ids, time.perf_counter() - t0


def search(conn, kind: str, n: int, d: int, nq: int, rng) -> dict:
    """Build HNSW (m=16, ef_construction=64, cosine, as in revision 0004) and compare with exact."""
    table = "bench_search"
    both = dataset(kind, n + nq, d, rng)  # queries: held-out points of the same distribution
    vecs, queries = both[:n], both[n:]
    with conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {table}")
        cur.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, embedding vector({d}))")
        t0 = time.perf_counter()
        copy_binary(cur, table, vecs)
        load = time.perf_counter() - t0
        cur.execute(f"VACUUM ANALYZE {table}")
        cur.execute("SET maintenance_work_mem = '1GB'")
        t0 = time.perf_counter()
        cur.execute(f"CREATE INDEX bench_search_hnsw ON {table} USING hnsw (embedding vector_cosine_ops) "
                    "WITH (m = 16, ef_construction = 64)")
        build = time.perf_counter() - t0
        cur.execute("SELECT pg_relation_size('bench_search_hnsw')")
        index_bytes = cur.fetchone()[0]
        qs = ["[" + ",".join(f"{v:.6f}" for v in q) + "]" for q in queries]
        cur.execute("SET enable_indexscan = off")
        exact = [_topk(cur, table, q) for q in qs]
        cur.execute("RESET enable_indexscan")
        cur.execute(f"EXPLAIN SELECT id FROM {table} ORDER BY embedding <=> %s::vector LIMIT 10", (qs[0],))
        uses_index = "bench_search_hnsw" in "\n".join(r[0] for r in cur.fetchall())
        res = {"kind": kind, "rows": n, "dim": d, "queries": nq, "load_s": load, "build_s": build,
               "index_bytes_per_row": index_bytes / n, "uses_index": uses_index,
               "exact_ms": median([t for _, t in exact]) * 1000, "hnsw": []}
        for ef in (40, 100):
            cur.execute(f"SET hnsw.ef_search = {ef}")
            _topk(cur, table, qs[0])  # warm the index pages once
            got = [_topk(cur, table, q) for q in qs]
            recall = np.mean([len(set(g) & set(e)) / 10 for (g, _), (e, _) in zip(got, exact, strict=True)])
            ms = median([t for _, t in got]) * 1000
            res["hnsw"].append({"ef_search": ef, "ms": ms, "recall": float(recall),
                                "speedup": res["exact_ms"] / ms})
        cur.execute("RESET hnsw.ef_search")
        cur.execute(f"DROP TABLE {table}")
    return res


def run(db, quick: bool) -> dict:
    rng = np.random.default_rng(SEED)
    conn = db.raw()
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE EXTENSION IF NOT EXISTS vector")
        log("vectors: storage")
        store = storage(conn, 384, 10_000, rng)
        if not quick:
            store += storage(conn, 1536, 10_000, rng)
        n, nq = (20_000, 50) if quick else (100_000, 200)
        results = []
        for kind in ("clustered", "isotropic"):
            log(f"vectors: {kind} {n} x 384, {nq} queries")
            results.append(search(conn, kind, n, 384, nq, rng))
    finally:
        conn.close()
    return {"storage": store, "search": results}


def table(res: dict) -> str:
    lines = ["### 4a. Bytes per row", "",
             "| type | floor 4·d+8 (halfvec 2·d+8) | pg_column_size | heap / rows | table incl. TOAST / rows |",
             "|---|---:|---:|---:|---:|"]
    for s in res["storage"]:
        lines.append(f"| {s['type']} | {s['floor']} | {s['value']:.0f} | {s['heap_per_row']:.0f} | "
                     f"{s['table_per_row']:.0f} |")
    s0 = res["search"][0]
    lines += ["", f"### 4b. Exact against HNSW at {s0['rows']:,} x {s0['dim']} "
              f"(cosine, m=16, ef_construction=64, {s0['queries']} queries, median latency)", "",
              "| data | exact ms | HNSW build s | ef_search | HNSW ms | speed-up | recall@10 |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for s in res["search"]:
        for h in s["hnsw"]:
            lines.append(f"| {s['kind']} | {s['exact_ms']:.1f} | {s['build_s']:.1f} | {h['ef_search']} | "
                         f"{h['ms']:.2f} | {h['speedup']:.0f}x | {h['recall']:.3f} |")
    return "\n".join(lines)

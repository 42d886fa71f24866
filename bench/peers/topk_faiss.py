"""Peer for bench_topk: exact top-K inner-product search with faiss-cpu (IndexFlatIP).

Run by build/current/bench/bench_topk with the bench-only virtual environment bench/.venv; by hand:

    bench/.venv/bin/python bench/peers/topk_faiss.py --dir bench/out/topk --k 10 --threads 2 --single 2000

DIR holds items.npy (n_items x dim float32) and queries.npy (n_queries x dim float32), written by bench_topk.
faiss.IndexFlatIP is exhaustive (exact up to float32 rounding: it scores with BLAS sgemm for batches of 20
queries or more, with its own SIMD dot products below that). Threads: faiss.omp_set_num_threads(THREADS);
the caller also sets OMP_NUM_THREADS and OPENBLAS_NUM_THREADS.

  batched: index.search(all queries, K), best of --repeats runs after one warm-up run (wall clock), with the
           process CPU time of that run (all threads).
  single:  the first --single queries one at a time, index.search(q[i:i+1], K), each call timed with
           time.perf_counter (so the figure includes the Python call, as a Python caller would see it; the
           p50 of the same calls on a one-item index is reported as call_overhead_ms).

Writes DIR/faiss_ids.npy (n_queries x K int64, the batched result) and prints one JSON line on stdout:
{"ok": true, "version", "batch_qps", "batch_seconds", "batch_cpu_seconds", "single_p50_ms", "single_p99_ms", "call_overhead_ms"},
or {"ok": false, "reason"} when faiss cannot be imported or run."""
import argparse
import json
import os
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--single", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    out = {"ok": False, "peer": "faiss IndexFlatIP"}
    try:
        import numpy as np
        import faiss
    except Exception as e:  # the bench reports the reason and goes on without the peer
        out["reason"] = f"cannot import: {type(e).__name__}: {e}"
        print(json.dumps(out))
        return 0
    out["version"] = faiss.__version__
    faiss.omp_set_num_threads(a.threads)
    items = np.load(os.path.join(a.dir, "items.npy"))
    queries = np.load(os.path.join(a.dir, "queries.npy"))
    index = faiss.IndexFlatIP(items.shape[1])
    index.add(items)

    index.search(queries, a.k)  # warm-up
    best = float("inf")
    for _ in range(a.repeats):
        t, c = time.perf_counter(), time.process_time()
        _, ids = index.search(queries, a.k)
        t, c = time.perf_counter() - t, time.process_time() - c
        if t < best:
            best, best_cpu = t, c
    np.save(os.path.join(a.dir, "faiss_ids.npy"), ids.astype(np.int64))
    out["batch_seconds"] = best
    out["batch_qps"] = queries.shape[0] / best
    out["batch_cpu_seconds"] = best_cpu

    n = min(a.single, queries.shape[0])
    for i in range(min(n, 50)):  # warm-up
        index.search(queries[i : i + 1], a.k)
    lat = np.empty(n)
    for i in range(n):
        q = queries[i : i + 1]
        t = time.perf_counter()
        index.search(q, a.k)
        lat[i] = time.perf_counter() - t
    tiny = faiss.IndexFlatIP(items.shape[1])  # the fixed cost of a call: a search over one item
    tiny.add(items[:1])
    empty = np.empty(n)
    for i in range(n):
        q = queries[i : i + 1]
        t = time.perf_counter()
        tiny.search(q, 1)
        empty[i] = time.perf_counter() - t
    out["single_p50_ms"] = float(np.percentile(lat, 50)) * 1e3
    out["single_p99_ms"] = float(np.percentile(lat, 99)) * 1e3
    out["call_overhead_ms"] = float(np.percentile(empty, 50)) * 1e3
    out["blas_threshold"] = int(faiss.cvar.distance_compute_blas_threshold)
    out["ok"] = True
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())

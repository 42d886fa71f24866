"""bert_torch.py — bench_bert's peer: all-MiniLM-L6-v2 through sentence-transformers on PyTorch (CPU).

Reads the same titles as bench_bert (the "title" column of a tab-separated items file with a header, first N
lines), loads the model from the folder `make models` extracted (models/minilm-src, the files crossrec converts),
encodes a few titles once to warm up, then times model.encode over all of them with batch 64 on T threads, best
of R runs. Prints one JSON line: {"threads", "n", "seconds", "texts_per_sec", "cpu_seconds"} (cpu_seconds: the
process's CPU time in the best run, all threads; on a shared machine it says more than the wall time).

usage: bert_torch.py --items FILE --model DIR --n N --threads T [--batch 64] [--reps 1]
"""
import argparse
import json
import time


def read_titles(path, n):
    titles = []
    with open(path, encoding="utf-8", newline="") as f:
        header = f.readline().rstrip("\r\n").split("\t")
        col = header.index("title")
        for line in f:
            if len(titles) >= n:
                break
            fields = line.rstrip("\r\n").split("\t")
            if len(fields) > col:
                titles.append(fields[col])
    return titles


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--reps", type=int, default=1)
    a = ap.parse_args()

    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    titles = read_titles(a.items, a.n)
    model = SentenceTransformer(a.model, device="cpu")
    model.encode(titles[:64], batch_size=a.batch)
    best, cpu = float("inf"), 0.0
    with torch.inference_mode():
        for _ in range(a.reps):
            t0, c0 = time.perf_counter(), time.process_time()
            model.encode(titles, batch_size=a.batch, convert_to_numpy=True)
            if time.perf_counter() - t0 < best:
                best, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(json.dumps({"threads": a.threads, "n": len(titles), "seconds": best, "texts_per_sec": len(titles) / best,
                      "cpu_seconds": cpu}))


if __name__ == "__main__":
    main()
